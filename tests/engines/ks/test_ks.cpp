// Keller–Segel blob-particle engine against exact results (VERIFICATION.md): the discrete virial
// identity (deterministic with mu = 0, in expectation with noise), the 2D virial law
// d m2/dt = 4 mu M (1 - chi M/(8 pi mu)) below and above the critical mass, collapse before the
// Gaussian blow-up bound, conservation of mass and centre of mass, divergence-free flows and the
// invariance of the uniform density under cellular flow, the direct sum against a brute-force
// loop, bad decks, and bit-identical results for any rank count and either exchange.
// Statistical checks use 4 standard errors computed from the sample.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/engines/ks/flows.hpp"
#include "kinflow/engines/ks/ks_engine.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "ks_support.hpp"
#include "support.hpp"

using namespace kinflow;
using ks::Params;
using namespace kinflow::ks_test;

// ---- options ----------------------------------------------------------------------------------

TEST(KsOptions, DefaultsAreValid) {
    const auto p = ks::validate(ks::Options{}, 1e-3);
    EXPECT_EQ(p.dim, 2);
    EXPECT_EQ(p.flow, ks::Flow::None);
    EXPECT_EQ(p.exchange, ks::Exchange::Allgather);
    EXPECT_FALSE(p.adaptive_dt);
}

TEST(KsOptions, BadValuesNameKeyAndValue) {
    auto with = [](const std::function<void(ks::Options&)>& f) {
        ks::Options o;
        f(o);
        return o;
    };
    expect_option_error(with([](auto& o) { o.dim = 4; }), 1e-3, "ks.dim", {"'4'", "2 or 3"});
    expect_option_error(with([](auto& o) { o.dim = 1; }), 1e-3, "ks.dim", {"'1'"});
    expect_option_error(with([](auto& o) { o.delta = 0.0; }), 1e-3, "ks.delta", {"'0'"});
    expect_option_error(with([](auto& o) { o.delta = -0.1; }), 1e-3, "ks.delta", {"'-0.1'"});
    expect_option_error(with([](auto& o) { o.mass = 0.0; }), 1e-3, "ks.mass");
    expect_option_error(with([](auto& o) { o.chi = -1.0; }), 1e-3, "ks.chi");
    expect_option_error(with([](auto& o) { o.mu = -1.0; }), 1e-3, "ks.mu");
    expect_option_error(with([](auto& o) { o.init_std = 0.0; }), 1e-3, "ks.init_std");
    expect_option_error(with([](auto& o) { o.particles = 0; }), 1e-3, "ks.particles", {"'0'"});
    expect_option_error(with([](auto& o) { o.init = "ring"; }), 1e-3, "ks.init", {"'ring'", "uniform_ball"});
    expect_option_error(with([](auto& o) { o.init = "file"; }), 1e-3, "ks.init_file", {"required"});
    expect_option_error(with([](auto& o) {
                            o.dim = 3;
                            o.flow = "cellular";
                        }),
                        1e-3, "ks.flow", {"'cellular'", "dim = 2"});
    expect_option_error(with([](auto& o) { o.flow = "kolmogorov"; }), 1e-3, "ks.flow", {"'kolmogorov'", "dim = 3"});
    expect_option_error(with([](auto& o) { o.flow = "abc"; }), 1e-3, "ks.flow", {"'abc'", "dim = 3"});
    expect_option_error(with([](auto& o) { o.flow = "vortex"; }), 1e-3, "ks.flow", {"'vortex'"});
    expect_option_error(with([](auto& o) { o.flow_amplitude = 1e7; }), 1e-3, "ks.flow_amplitude");
    expect_option_error(with([](auto& o) { o.solver = "fmm"; }), 1e-3, "ks.solver", {"'fmm'", "direct", "mesh"});
    expect_option_error(with([](auto& o) { o.exchange = "p2p"; }), 1e-3, "ks.exchange", {"'p2p'"});
    expect_option_error(with([](auto& o) { o.blowup_fraction = 1.5; }), 1e-3, "ks.blowup_fraction", {"'1.5'"});
    expect_option_error(with([](auto& o) { o.blowup_fraction = -0.1; }), 1e-3, "ks.blowup_fraction");
    expect_option_error(with([](auto& o) { o.blowup_check_every = 0; }), 1e-3, "ks.blowup_check_every");
    EXPECT_NO_THROW(ks::validate(with([](auto& o) { o.blowup_fraction = 0.0; }), 1e-3));
    EXPECT_NO_THROW(ks::validate(with([](auto& o) {
                                     o.dim = 3;
                                     o.flow = "abc";
                                 }),
                                 1e-4));
}

// A time step beyond the kernel bound is a deck error that states the bound; adaptive_dt lifts it.
TEST(KsOptions, KernelBoundOnTimeStep) {
    ks::Options o;
    o.mass = 10 * kPi;
    o.delta = 0.01;
    ks::Params p = ks::validate(o, 1e-6);
    const double bound = ks::max_stable_dt(p);
    // chi M max|grad K| dt <= delta/4 with max|grad K| = 1/(4 pi delta): dt <= pi delta^2 / (chi M)
    EXPECT_NEAR(bound, kPi * o.delta * o.delta / (o.chi * o.mass), 1e-15);
    EXPECT_NO_THROW(ks::validate(o, bound));
    expect_option_error(o, 2 * bound, "run.dt",
                        {format_number(bound), "delta/4", "adaptive_dt", format_number(1 / (4 * kPi * o.delta))});
    o.dim = 3;
    expect_option_error(o, 1.0, "run.dt", {"0.0306/delta^2"});
    o.adaptive_dt = true;
    EXPECT_NO_THROW(ks::validate(o, 1.0));
}

// max_x |grad K_delta(x)| = 1/(4 pi delta) (2D), ~0.0306/delta^2 (3D), by brute-force search.
TEST(Ks, KernelGradientBound) {
    for (double delta : {0.01, 0.3, 2.0}) {
        double m2 = 0, m3 = 0;
        for (int i = 1; i <= 200000; ++i) {
            const double r = 3.0 * delta * i / 200000.0;
            m2 = std::max(m2, r / (2 * kPi * (r * r + delta * delta)));
            m3 = std::max(m3, r / (4 * kPi * std::pow(r * r + delta * delta, 1.5)));
        }
        EXPECT_NEAR(ks::kernel_gradient_bound(2, delta), m2, 1e-9 * m2);
        EXPECT_NEAR(ks::kernel_gradient_bound(3, delta), m3, 1e-9 * m3);
        EXPECT_NEAR(ks::kernel_gradient_bound(3, delta) * delta * delta, 0.0306, 1e-4);
    }
}

// ---- the direct sum ---------------------------------------------------------------------------

// Drift, virial sum, densest-particle count and nearest distance against a brute-force double
// loop; the drift with and without the snapshot extras is the same to the bit. N is not a
// multiple of the lane count (padding).
TEST(Ks, DirectSumMatchesBruteForce) {
    const auto self = comm::Communicator::self();
    for (int dim : {2, 3}) {
        Params p = base_params(dim, 301);
        p.flow = dim == 2 ? ks::Flow::Shear : ks::Flow::Kolmogorov;
        p.flow_amplitude = 0.7;
        p.delta = 0.2;
        p.init_std = 0.5;
        ks::KsEngine engine(self, p, 3);
        ParticleSet ps;
        engine.init(ps);
        const auto x = host_positions(ps);
        auto plain = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), engine.drift(ps, false));
        auto extra = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), engine.drift(ps, true));
        EXPECT_EQ(std::memcmp(plain.data(), extra.data(), plain.size() * sizeof(double)), 0) << "dim " << dim;
        const int n = static_cast<int>(p.particles);
        const double d2 = p.delta * p.delta, m = p.mass / n;
        const double cd = dim == 2 ? 1 / (2 * kPi) : 1 / (4 * kPi);
        double max_err = 0, max_a = 0, vir = 0, xv = 0, cmax = 0, nn2 = std::numeric_limits<double>::infinity();
        for (int i = 0; i < n; ++i) {
            double a[3] = {0, 0, 0}, xi[3], v[3];
            int cnt = 0;
            for (int k = 0; k < dim; ++k)
                xi[k] = x[i * dim + k];
            for (int j = 0; j < n; ++j) {
                double dx[3], r2 = 0;
                for (int k = 0; k < dim; ++k) {
                    dx[k] = xi[k] - x[j * dim + k];
                    r2 += dx[k] * dx[k];
                }
                const double s = r2 + d2;
                const double g = dim == 2 ? 1 / s : 1 / (s * std::sqrt(s));
                for (int k = 0; k < dim; ++k)
                    a[k] -= p.chi * m * cd * dx[k] * g;
                if (j > i)
                    vir += r2 * g;
                cnt += r2 < d2 ? 1 : 0;
                if (j != i)
                    nn2 = std::min(nn2, r2);
            }
            cmax = std::max(cmax, static_cast<double>(cnt));
            if (dim == 2)
                ks::ShearFlow{0.7}.velocity<2>(xi, v);
            else
                ks::KolmogorovFlow{0.7}.velocity<3>(xi, v);
            for (int k = 0; k < dim; ++k) {
                xv += xi[k] * v[k];
                max_err = std::max(max_err, std::fabs(plain(i, k) - (a[k] + v[k])));
                max_a = std::max(max_a, std::fabs(a[k]));
            }
        }
        EXPECT_LT(max_err, 1e-12 * max_a) << "dim " << dim;
        const auto d = engine.diagnostics(ps, 1e-3);
        const double rate = 2 * dim * p.mu * p.mass - 2 * p.chi * m * m * cd * vir + 2 * m * xv;
        EXPECT_NEAR(diag(d, "virial_rate"), rate, 1e-12 * (2 * dim * p.mu * p.mass));
        EXPECT_EQ(diag(d, "core_fraction"), cmax / n);
        EXPECT_NEAR(diag(d, "max_density"), m * cmax / (dim == 2 ? kPi * d2 : 4.0 / 3.0 * kPi * d2 * p.delta),
                    1e-12 * m * cmax / d2);
        EXPECT_EQ(diag(d, "min_pair_distance"), std::sqrt(nn2));
    }
}

// ---- the discrete virial identity (VERIFICATION.md) -------------------------------------------

// With mu = 0 the Euler–Maruyama increment of m2 equals the predicted one to round-off:
// m2' - m2 = dt [-(c chi M^2/N^2) sum_{i<j} r^2 g(r) + 2 m sum X.v] + dt^2 m sum |a|^2.
TEST(Ks, DiscreteVirialIdentityNoiseFree) {
    const auto self = comm::Communicator::self();
    struct Case {
        int dim;
        ks::Flow flow;
    };
    for (const Case c :
         {Case{2, ks::Flow::None}, Case{3, ks::Flow::None}, Case{2, ks::Flow::Shear}, Case{3, ks::Flow::Abc}}) {
        Params p = base_params(c.dim, 400);
        p.mu = 0.0;
        p.flow = c.flow;
        p.mass = 10 * kPi;
        p.delta = 0.1;
        const double dt = 2e-3;
        ks::KsEngine engine(self, p, 21);
        ParticleSet ps;
        engine.init(ps);
        double worst = 0;
        for (int s = 0; s < 10; ++s) {
            const auto d = engine.diagnostics(ps, dt);
            const double m2 = diag(d, "second_moment"), pred = diag(d, "virial_increment");
            EXPECT_NEAR(m2, host_m2(host_positions(ps), p.mass, c.dim), 1e-13 * m2);
            engine.step(ps, s, dt);
            const double m2n = host_m2(host_positions(ps), p.mass, c.dim);
            const double err = std::fabs((m2n - m2) - pred);
            worst = std::max(worst, err / std::fabs(pred));
            // round-off of m2 itself (N terms) bounds what can be resolved
            EXPECT_LT(err, 1e-10 * std::fabs(pred) + 64 * 2.2e-16 * m2) << "dim " << c.dim << " step " << s;
        }
        std::printf("  [virial mu=0] dim %d flow %d: worst relative error %.2e\n", c.dim, static_cast<int>(c.flow),
                    worst);
    }
}

// With noise the identity holds in expectation given X^n: many independent one-step trials from
// the same state (noise streams of different step indices), mean increment within 4 standard errors.
TEST(Ks, DiscreteVirialIdentityWithNoise) {
    const auto self = comm::Communicator::self();
    for (int dim : {2, 3}) {
        Params p = base_params(dim, 1000);
        p.mass = 10 * kPi;
        p.delta = 0.1;
        const double dt = 0.01;
        const int trials = 1500;
        ks::KsEngine engine(self, p, 22);
        ParticleSet ps;
        engine.init(ps);
        const auto x0 = host_positions(ps);
        const auto d = engine.diagnostics(ps, dt);
        const double m2 = diag(d, "second_moment"), pred = diag(d, "virial_increment");
        double s1 = 0, s2 = 0;
        for (int t = 0; t < trials; ++t) {
            set_positions(ps, x0);
            engine.step(ps, 1000 + t, dt);
            const double inc = host_m2(host_positions(ps), p.mass, dim) - m2;
            s1 += inc;
            s2 += inc * inc;
        }
        const double mean = s1 / trials, var = (s2 - trials * mean * mean) / (trials - 1), se = std::sqrt(var / trials);
        EXPECT_NEAR(mean, pred, 4 * se) << "dim " << dim;
        EXPECT_LT(4 * se, 0.25 * std::fabs(pred)) << "the test resolves the increment";
        // the interaction matters at this resolution: the free-diffusion value 2 d mu M dt is excluded
        EXPECT_GT(std::fabs(mean - 2 * dim * p.mu * p.mass * dt), 4 * se) << "dim " << dim;
    }
}

// ---- 2D virial law, blow-up, conservation -----------------------------------------------------

// d m2/dt = 4 mu M (1 - chi M/(8 pi mu)) in 2D for any t before blow-up, below and above the
// critical mass 8 pi mu/chi. Slope (m2(T) - m2(0))/T against it within 4 standard errors of the
// martingale part: Var = 8 mu (M/N) int m2 dt. The blob bias is O((delta/sigma)^2 log), here
// < 0.2 standard errors. adaptive_dt on (the simulated time is summed from the steps taken).
TEST(Ks, SecondMomentSlope2D) {
    for (double mass : {4 * kPi, 12 * kPi}) {
        Params p = base_params(2, mass < 8 * kPi ? 2000 : 6000);
        p.mass = mass;
        p.delta = 0.03;
        p.adaptive_dt = true;
        const double T = mass < 8 * kPi ? 1.0 : 0.3, dt = 2.5e-3;
        expect_second_moment_slope_2d(p, T, dt, "m2 slope");
    }
}

// Supercritical Gaussian data blow up no later than 4 pi sigma^2 / (chi M - 8 pi mu):
// rho0 = 1000 exp(-100 |x|^2) (M = 10 pi, sigma^2 = 1/200), chi = mu = 1 collapses before t = 0.01.
// The particle system reports the collapse to the blob scale before that time, and stops there
// with finite positions.
TEST(Ks, CollapseBeforeGaussianBlowupBound2D) {
    const auto self = comm::Communicator::self();
    Params p = base_params(2, 1024);
    p.mass = 10 * kPi;
    p.init_std = std::sqrt(1.0 / 200.0);
    p.delta = 0.002;
    p.adaptive_dt = true;
    p.blowup_fraction = 0.1; // 25x the initial fraction; a 2D aggregate holds ~0.15 within delta
    p.blowup_check_every = 5;
    const double bound = 4 * kPi * p.init_std * p.init_std / (p.chi * p.mass - 8 * kPi * p.mu);
    EXPECT_NEAR(bound, 0.01, 1e-15);
    ks::KsEngine engine(self, p, 41);
    ParticleSet ps;
    engine.init(ps);
    double t = 0;
    bool collapsed = false;
    ks::StepResult r;
    for (int s = 0; s < 20000 && t < 1.5 * bound; ++s) {
        const auto before = host_positions(ps);
        r = engine.step(ps, s, 1e-4);
        if (!r.advanced) {
            collapsed = true;
            EXPECT_EQ(host_positions(ps), before) << "a collapsed state is not advanced";
            break;
        }
        t += r.dt;
    }
    std::printf("  [collapse] t = %.5g (Gaussian bound %.3g), core fraction %.3g\n", t, bound, r.core_fraction);
    ASSERT_TRUE(collapsed);
    EXPECT_LT(t, bound);
    EXPECT_GE(r.core_fraction, p.blowup_fraction);
    for (double v : host_positions(ps))
        ASSERT_TRUE(std::isfinite(v));
    const auto d = engine.diagnostics(ps, 1e-4);
    EXPECT_GE(diag(d, "core_fraction"), p.blowup_fraction);
    EXPECT_LT(diag(d, "min_pair_distance"), p.delta);
}

// Without flow the interaction conserves the centre of mass (pairwise antisymmetric): with
// mu = 0 to round-off, with noise within 4 standard errors sqrt(2 mu t / N) per axis. Mass is M.
TEST(Ks, MassAndCentreOfMassConserved) {
    const auto self = comm::Communicator::self();
    for (int dim : {2, 3}) {
        for (double mu : {0.0, 1.0}) {
            Params p = base_params(dim, 800);
            p.mu = mu;
            p.mass = 10 * kPi;
            p.init = ks::Init::TwoBumps;
            p.init_separation = 2.0;
            const double dt = 2e-3;
            const int steps = 100;
            ks::KsEngine engine(self, p, 51);
            ParticleSet ps;
            engine.init(ps);
            const auto d0 = engine.diagnostics(ps, dt);
            for (int s = 0; s < steps; ++s)
                engine.step(ps, s, dt);
            const auto d1 = engine.diagnostics(ps, dt);
            EXPECT_DOUBLE_EQ(diag(d0, "mass"), p.mass);
            EXPECT_DOUBLE_EQ(diag(d1, "mass"), p.mass);
            const double tol = mu == 0 ? 1e-13 : 4 * std::sqrt(2 * mu * steps * dt / p.particles);
            for (int k = 0; k < dim; ++k) {
                const std::string name = "com_" + std::to_string(k);
                EXPECT_NEAR(diag(d1, name), diag(d0, name), tol) << name << " dim " << dim << " mu " << mu;
            }
            // the bumps did move (towards each other)
            EXPECT_LT(diag(d1, "second_moment"),
                      diag(d0, "second_moment") + (mu > 0 ? 2 * dim * mu * p.mass * steps * dt : 0));
        }
    }
}

// ---- flows ------------------------------------------------------------------------------------

TEST(Ks, FlowsAreDivergenceFree) {
    std::mt19937_64 gen(7);
    std::uniform_real_distribution<double> u(-5.0, 5.0);
    const double h = 1e-5;
    auto check = [&](auto flow, auto dim_tag, const char* name) {
        constexpr int D = decltype(dim_tag)::value;
        double worst = 0, vmax = 0;
        for (int trial = 0; trial < 200; ++trial) {
            double x[D], v[D];
            for (int k = 0; k < D; ++k)
                x[k] = u(gen);
            flow.template velocity<D>(x, v);
            for (int k = 0; k < D; ++k)
                vmax = std::max(vmax, std::fabs(v[k]));
            double div = 0;
            for (int k = 0; k < D; ++k) {
                double xp[D], xm[D], vp[D], vm[D];
                for (int q = 0; q < D; ++q)
                    xp[q] = xm[q] = x[q];
                xp[k] += h;
                xm[k] -= h;
                flow.template velocity<D>(xp, vp);
                flow.template velocity<D>(xm, vm);
                div += (vp[k] - vm[k]) / (2 * h);
            }
            worst = std::max(worst, std::fabs(div));
        }
        EXPECT_LT(worst, 1e-8) << name;
        EXPECT_GT(vmax, 0.5) << name;
    };
    using D2 = std::integral_constant<int, 2>;
    using D3 = std::integral_constant<int, 3>;
    check(ks::ShearFlow{1.3}, D2{}, "shear 2D");
    check(ks::ShearFlow{1.3}, D3{}, "shear 3D");
    check(ks::CellularFlow{1.3}, D2{}, "cellular");
    check(ks::KolmogorovFlow{1.3}, D3{}, "kolmogorov");
    check(ks::AbcFlow{1.3}, D3{}, "abc");
    // cellular: no flux through the cell edges x = 0, pi and y = 0, pi
    for (double s : {0.1, 1.0, 2.5}) {
        double v[2];
        const double a[2] = {0.0, s}, b[2] = {kPi, s}, c[2] = {s, 0.0}, e[2] = {s, kPi};
        ks::CellularFlow{1.0}.velocity<2>(a, v);
        EXPECT_NEAR(v[0], 0, 1e-15);
        ks::CellularFlow{1.0}.velocity<2>(b, v);
        EXPECT_NEAR(v[0], 0, 1e-15);
        ks::CellularFlow{1.0}.velocity<2>(c, v);
        EXPECT_NEAR(v[1], 0, 1e-15);
        ks::CellularFlow{1.0}.velocity<2>(e, v);
        EXPECT_NEAR(v[1], 0, 1e-15);
    }
}

// chi = 0: particles uniform on the torus [0, 2 pi)^2 stay uniform (mod 2 pi) under cellular flow
// and diffusion (the flow is divergence-free and 2 pi-periodic). 4 x 4 cell counts within 4
// binomial standard errors, chi-square below its mean + 5.5 sd; the flow does move particles.
TEST(Ks, CellularFlowKeepsUniformDensity) {
    const auto self = comm::Communicator::self();
    const int n = 20000;
    Params p = base_params(2, n);
    p.chi = 0.0;
    p.mu = 0.05;
    p.flow = ks::Flow::Cellular;
    p.flow_amplitude = 1.0;
    ks::KsEngine engine(self, p, 61);
    ParticleSet ps;
    engine.init(ps);
    std::mt19937_64 gen(11);
    std::uniform_real_distribution<double> u(0.0, 2 * kPi);
    std::vector<double> x0(2 * n);
    for (double& v : x0)
        v = u(gen);
    set_positions(ps, x0);
    const double dt = 0.005;
    for (int s = 0; s < 400; ++s)
        engine.step(ps, s, dt);
    const auto x = host_positions(ps);
    const int bins = 4;
    std::vector<int> count(bins * bins, 0);
    double moved = 0;
    for (int i = 0; i < n; ++i) {
        int b[2];
        for (int k = 0; k < 2; ++k) {
            const double y = x[2 * i + k] - 2 * kPi * std::floor(x[2 * i + k] / (2 * kPi));
            b[k] = std::min(bins - 1, static_cast<int>(y / (2 * kPi) * bins));
        }
        ++count[b[0] * bins + b[1]];
        moved += std::hypot(x[2 * i] - x0[2 * i], x[2 * i + 1] - x0[2 * i + 1]) / n;
    }
    const double prob = 1.0 / (bins * bins), se = std::sqrt(n * prob * (1 - prob));
    double chi2 = 0;
    for (int c : count) {
        EXPECT_NEAR(c, n * prob, 4 * se);
        chi2 += (c - n * prob) * (c - n * prob) / (n * prob);
    }
    EXPECT_LT(chi2, 15 + 5.5 * std::sqrt(30.0));
    EXPECT_GT(moved, 0.8); // diffusion alone: sqrt(pi mu t) ~ 0.56
}

// ---- initial conditions, adaptive steps, collapse ----------------------------------------------

TEST(Ks, InitialConditions) {
    const auto self = comm::Communicator::self();
    for (int dim : {2, 3}) {
        for (auto init : {ks::Init::Gaussian, ks::Init::UniformBall, ks::Init::TwoBumps}) {
            Params p = base_params(dim, 6000);
            p.init = init;
            p.init_std = 0.7;
            p.init_separation = 3.0;
            ks::KsEngine engine(self, p, 71);
            ParticleSet ps;
            engine.init(ps);
            const auto x = host_positions(ps);
            const int n = static_cast<int>(p.particles);
            double s = 0, s2 = 0, rmax = 0, sx = 0;
            for (int i = 0; i < n; ++i) {
                double r2 = 0;
                for (int k = 0; k < dim; ++k)
                    r2 += x[i * dim + k] * x[i * dim + k];
                s += r2;
                s2 += r2 * r2;
                sx += x[i * dim];
                rmax = std::max(rmax, std::sqrt(r2));
            }
            const double mean = s / n, se = std::sqrt((s2 / n - mean * mean) / n);
            const double shift = init == ks::Init::TwoBumps ? 0.25 * p.init_separation * p.init_separation : 0.0;
            EXPECT_NEAR(mean, dim * p.init_std * p.init_std + shift, 4 * se)
                << "dim " << dim << " init " << static_cast<int>(init);
            EXPECT_NEAR(sx / n, 0.0, 4 * std::sqrt((p.init_std * p.init_std) / n));
            if (init == ks::Init::UniformBall) {
                EXPECT_LE(rmax, p.init_std * std::sqrt(dim + 2.0) * (1 + 1e-15));
            }
        }
    }
}

// adaptive_dt: the step taken is min(dt, delta / (4 max |interaction drift|)), which keeps the
// interaction displacement within a quarter blob radius.
TEST(Ks, AdaptiveTimeStep) {
    const auto self = comm::Communicator::self();
    Params p = base_params(2, 500);
    p.mass = 10 * kPi;
    p.init_std = 0.05;
    p.delta = 0.01;
    p.adaptive_dt = true;
    ks::KsEngine engine(self, p, 81);
    ParticleSet ps;
    engine.init(ps);
    const double dt = 1e-3;
    const auto d = engine.diagnostics(ps, dt);
    const double expect = std::min(dt, 0.25 * p.delta / diag(d, "max_drift"));
    EXPECT_LT(expect, dt);
    EXPECT_EQ(diag(d, "dt_next"), expect);
    const auto r = engine.step(ps, 0, dt);
    EXPECT_EQ(r.dt, expect);
    EXPECT_EQ(r.core_fraction, -1.0); // no check (blowup_fraction = 0)
}

// A state with every particle within delta of one point is reported as collapsed and not moved.
TEST(Ks, CollapsedStateIsNotAdvanced) {
    const auto self = comm::Communicator::self();
    Params p = base_params(3, 64);
    p.mu = 0.0;
    p.blowup_fraction = 0.9;
    p.blowup_check_every = 3;
    p.init_std = 0.001;
    p.delta = 0.1;
    ks::KsEngine engine(self, p, 91);
    ParticleSet ps;
    engine.init(ps);
    const auto before = host_positions(ps);
    const auto r1 = engine.step(ps, 1, 1e-3); // not a check step
    EXPECT_TRUE(r1.advanced);
    const auto mid = host_positions(ps);
    EXPECT_NE(mid, before);
    const auto r3 = engine.step(ps, 3, 1e-3);
    EXPECT_FALSE(r3.advanced);
    EXPECT_EQ(r3.core_fraction, 1.0);
    EXPECT_EQ(host_positions(ps), mid);
}

// ---- MPI ----------------------------------------------------------------------------------------

// The same problem gives bit-identical particles and diagnostics for any rank count and either
// exchange: the distributed result is gathered and compared with one-rank runs (MPI_COMM_SELF).
TEST(MpiKs, BitIdenticalForAnyRankCount) {
    const auto world = comm::Communicator::world();
    struct Case {
        int dim;
        ks::Flow flow;
        ks::Exchange exchange;
        bool adaptive;
    };
    const Case cases[] = {{2, ks::Flow::None, ks::Exchange::Allgather, false},
                          {2, ks::Flow::Cellular, ks::Exchange::Ring, true},
                          {3, ks::Flow::Kolmogorov, ks::Exchange::Allgather, true},
                          {3, ks::Flow::Abc, ks::Exchange::Ring, false}};
    for (const auto& c : cases) {
        for (const std::int64_t n : {333, 20}) { // 20: at 4 ranks some ranks own no particle
            Params p = base_params(c.dim, n);
            p.flow = c.flow;
            p.exchange = c.exchange;
            p.adaptive_dt = c.adaptive;
            p.mass = 10 * kPi;
            p.init = ks::Init::TwoBumps;
            p.init_std = 0.3;
            p.blowup_fraction = 0.95; // checked every 4 steps (the extras pass), never met
            p.blowup_check_every = 4;
            auto run = [&](const comm::Communicator& comm, const Params& q, std::vector<double>& x, Diagnostics& d,
                           double& t) {
                ks::KsEngine engine(comm, q, 99);
                ParticleSet ps;
                engine.init(ps);
                t = 0;
                for (int s = 0; s < 13; ++s)
                    t += engine.step(ps, s, 2e-3).dt;
                x = test::gather_rows(comm, ps.position);
                d = engine.diagnostics(ps, 2e-3);
            };
            std::vector<double> xd, xs, xo;
            Diagnostics dd, ds, dother;
            double td = 0, ts = 0, to = 0;
            run(world, p, xd, dd, td);
            if (world.is_root()) {
                const auto self = comm::Communicator::self();
                run(self, p, xs, ds, ts);
                Params q = p;
                q.exchange = c.exchange == ks::Exchange::Ring ? ks::Exchange::Allgather : ks::Exchange::Ring;
                run(self, q, xo, dother, to);
                ASSERT_EQ(xd.size(), xs.size());
                EXPECT_EQ(std::memcmp(xd.data(), xs.data(), xd.size() * sizeof(double)), 0) << "dim " << c.dim;
                EXPECT_EQ(std::memcmp(xo.data(), xs.data(), xd.size() * sizeof(double)), 0)
                    << "exchange, dim " << c.dim;
                EXPECT_EQ(td, ts);
                ASSERT_EQ(dd.size(), ds.size());
                for (std::size_t k = 0; k < dd.size(); ++k) {
                    EXPECT_EQ(dd[k].second, ds[k].second) << dd[k].first;
                    EXPECT_EQ(dother[k].second, ds[k].second) << dd[k].first;
                }
            }
        }
    }
}

// init = file: the engine starts from a written snapshot, any rank split.
TEST(MpiKs, InitialConditionFromFile) {
    const auto world = comm::Communicator::world();
    std::string path = ::testing::TempDir() + "kinflow_ks_init_" + std::to_string(world.size()) + "/init.h5";
    world.broadcast(path);
    Params p = base_params(3, 250);
    std::vector<double> written;
    {
        ks::KsEngine engine(world, p, 5);
        ParticleSet ps;
        engine.init(ps);
        io::SnapshotWriter w(world, path, io::FileInfo{"ks", "", 5, 3});
        w.write(ps, 0.0, 0, engine.diagnostics(ps, 1e-3));
        w.finish();
        written = test::gather_rows(world, ps.position);
    }
    Params q = p;
    q.init = ks::Init::File;
    io::SnapshotReader reader(world, path);
    q.particles = reader.n_global(-1);
    ks::KsEngine engine(world, q, 6);
    auto ps = reader.read(-1, engine.decomposition().begin, engine.decomposition().end);
    engine.init(ps);
    const auto again = test::gather_rows(world, ps.position);
    if (world.is_root()) {
        EXPECT_EQ(again, written);
    }
    EXPECT_TRUE(engine.step(ps, 0, 1e-3).advanced);
    EXPECT_DOUBLE_EQ(diag(engine.diagnostics(ps, 1e-3), "mass"), p.mass);
}
