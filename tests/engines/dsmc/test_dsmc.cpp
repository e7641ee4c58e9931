// DSMC engine against exact results (VERIFICATION.md, "Boltzmann, spatially homogeneous"):
// exact BKW sampling, BKW m4(t)/m6(t) for both schemes (and Nanbu–Babovsky's known first-order
// dt error), conservation to round-off, anisotropic relaxation of two beams at rate nu/2,
// two-species temperature relaxation at 1/tau = 2 (n1+n2) kappa m1 m2/(m1+m2)^2, relaxation of
// hard spheres / VHS / VSS to a Maxwellian, collision frequencies against Bird's formula, VSS
// angle statistics; and (Mpi* suites, 1/2/4 ranks) statistical agreement of 1 and P ranks,
// shuffles, snapshots and init = file. Statistical checks: 4 standard errors computed from the
// samples unless stated otherwise.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kinflow/comm/decomposition.hpp"
#include "kinflow/comm/migrate.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/engines/dsmc/bkw.hpp"
#include "kinflow/engines/dsmc/collision.hpp"
#include "kinflow/engines/dsmc/dsmc_engine.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "support.hpp"

using namespace kinflow;

namespace {

using AtFn = std::function<void(int, ParticleSet&, dsmc::DsmcEngine&)>;

/// Run `steps` steps; `at(step, particles, engine)` after init and after every step.
void simulate(const comm::Communicator& comm, const dsmc::Params& p, std::uint64_t seed, double dt, int steps,
              const AtFn& at) {
    dsmc::DsmcEngine engine(comm, p, seed);
    ParticleSet particles;
    engine.init(particles);
    at(0, particles, engine);
    for (int s = 0; s < steps; ++s) {
        engine.step(particles, s, dt);
        at(s + 1, particles, engine);
    }
}

double diag(const Diagnostics& d, const std::string& name) {
    for (const auto& kv : d)
        if (kv.first == name)
            return kv.second;
    ADD_FAILURE() << "no diagnostic " << name;
    return NAN;
}

dsmc::Options bkw_options(std::int64_t n, const std::string& scheme) {
    dsmc::Options o;
    o.scheme = scheme;
    o.kernel = "maxwell";
    o.init = "bkw";
    o.particles = n;
    return o;
}

/// Mean and standard error of x_i.
struct Est {
    double mean = 0, se = 0;
};
Est estimate(const std::vector<double>& x) {
    Est e;
    const double n = static_cast<double>(x.size());
    for (double v : x)
        e.mean += v / n;
    double var = 0;
    for (double v : x)
        var += (v - e.mean) * (v - e.mean) / (n - 1);
    e.se = std::sqrt(var / n);
    return e;
}

/// Velocity rows of one species, gathered on rank 0 (all species if s < 0).
std::vector<double> velocities(const comm::Communicator& comm, const ParticleSet& p, int s = -1) {
    const auto v = test::gather_rows(comm, p.velocity);
    auto sp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.species);
    std::vector<double> spd(sp.data(), sp.data() + sp.size());
    std::vector<double> local(spd.begin(), spd.end());
    const auto all_sp = comm.gatherv(local, 0);
    std::vector<double> out;
    for (std::size_t i = 0; i < all_sp.size(); ++i)
        if (s < 0 || static_cast<int>(all_sp[i]) == s)
            out.insert(out.end(), v.begin() + 3 * i, v.begin() + 3 * i + 3);
    return out;
}

/// Normalized moments <|c|^4>/th^2 and <|c|^6>/th^3 (c = v - mean, th = <|c|^2>/3) with standard
/// errors of the per-particle terms (conservative: the normalisation's own noise is left out).
struct NormMoments {
    Est m4, m6, aniso; ///< aniso: <c_x^2 - (c_y^2 + c_z^2)/2> (= (T_x - T_perp)/m)
};
NormMoments norm_moments(const std::vector<double>& v) {
    const std::size_t n = v.size() / 3;
    double u[3] = {0, 0, 0}, th = 0;
    for (std::size_t i = 0; i < n; ++i)
        for (int k = 0; k < 3; ++k)
            u[k] += v[3 * i + k] / static_cast<double>(n);
    std::vector<double> c2(n), a(n);
    for (std::size_t i = 0; i < n; ++i) {
        double c[3];
        for (int k = 0; k < 3; ++k)
            c[k] = v[3 * i + k] - u[k];
        c2[i] = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
        a[i] = c[0] * c[0] - 0.5 * (c[1] * c[1] + c[2] * c[2]);
        th += c2[i] / (3.0 * static_cast<double>(n));
    }
    std::vector<double> x4(n), x6(n);
    for (std::size_t i = 0; i < n; ++i) {
        x4[i] = c2[i] * c2[i] / (th * th);
        x6[i] = c2[i] * c2[i] * c2[i] / (th * th * th);
    }
    return {estimate(x4), estimate(x6), estimate(a)};
}

/// Standard error of the temperature estimate m <|c|^2>/3 from one species' velocity rows.
double temperature_se(const std::vector<double>& v, double m) {
    const std::size_t n = v.size() / 3;
    double u[3] = {0, 0, 0};
    for (std::size_t i = 0; i < n; ++i)
        for (int k = 0; k < 3; ++k)
            u[k] += v[3 * i + k] / static_cast<double>(n);
    std::vector<double> x(n);
    for (std::size_t i = 0; i < n; ++i) {
        double c2 = 0;
        for (int k = 0; k < 3; ++k)
            c2 += (v[3 * i + k] - u[k]) * (v[3 * i + k] - u[k]);
        x[i] = m * c2 / 3;
    }
    return estimate(x).se;
}

/// Maxwell-molecule moment equations for an isotropic gas at temperature 1 (derived from the BKW
/// family, which fixes them: the moment system is closed and linear): dm4/dt = 5 - m4/3,
/// dm6/dt = 3.5 m4 - m6/2 (collision rate 1).
void moment_ode_exact(double t, double m4_0, double m6_0, double& m4, double& m6) {
    const double x0 = m4_0 - 15, y0 = m6_0 - 105;
    m4 = 15 + x0 * std::exp(-t / 3);
    m6 = 105 + 21 * x0 * std::exp(-t / 3) + (y0 - 21 * x0) * std::exp(-t / 2);
}
/// Nanbu–Babovsky's expectation: one forward-Euler step of the same equations per time step.
void moment_ode_euler(double dt, int steps, double m4_0, double m6_0, double& m4, double& m6) {
    m4 = m4_0;
    m6 = m6_0;
    for (int k = 0; k < steps; ++k) {
        const double d4 = 5 - m4 / 3, d6 = 3.5 * m4 - m6 / 2;
        m4 += dt * d4;
        m6 += dt * d6;
    }
}

} // namespace

// Exact sampling of the BKW density: M_{2k} = (2k+1)!! K^{k-1}(k - (k-1)K) for k = 1..4 at two
// BKW times (raw moments about 0, i.i.d. standard errors).
TEST(Dsmc, BkwSamplingMatchesExactMoments) {
    const auto self = comm::Communicator::self();
    for (double t0 : {dsmc::kBkwMinTime, 6 * std::log(5.0)}) { // K = 3/5 and K = 4/5
        auto o = bkw_options(200000, "ntc");
        o.bkw_t0 = t0;
        const double K = dsmc::bkw::K_of_time(t0);
        simulate(self, dsmc::validate(o, 0.1), 3, 0.1, 0, [&](int, ParticleSet& ps, dsmc::DsmcEngine& e) {
            const auto v = velocities(self, ps);
            const std::size_t n = v.size() / 3;
            for (int k = 1; k <= 4; ++k) {
                std::vector<double> x(n);
                for (std::size_t i = 0; i < n; ++i)
                    x[i] = std::pow(v[3 * i] * v[3 * i] + v[3 * i + 1] * v[3 * i + 1] + v[3 * i + 2] * v[3 * i + 2], k);
                const auto est = estimate(x);
                EXPECT_NEAR(est.mean, dsmc::bkw::moment(k, K), 4 * est.se) << "K=" << K << " k=" << k;
            }
            EXPECT_NEAR(dsmc::bkw::moment(2, K), dsmc::bkw::m4(K), 1e-12);
            EXPECT_NEAR(dsmc::bkw::moment(3, K), dsmc::bkw::m6(K), 1e-10);
            // The diagnostics' normalized moments agree with the formulas too.
            const auto d = e.diagnostics(ps);
            const auto nm = norm_moments(v);
            EXPECT_NEAR(diag(d, "m4"), dsmc::bkw::m4(K), 4 * nm.m4.se);
            EXPECT_NEAR(diag(d, "m6"), dsmc::bkw::m6(K), 4 * nm.m6.se);
            EXPECT_NEAR(diag(d, "temperature_gas"), 1.0, 4 * std::sqrt(2.0 / (3.0 * n)) * 1.5);
        });
    }
}

// BKW: m4(t) = 30K - 15K^2 and m6(t) = 315K^2 - 210K^3 with K = 1 - exp(-(t0 + t)/6). NTC has no
// dt bias for Maxwell molecules (dt = 0.25); Nanbu–Babovsky at dt = 0.05, where its first-order
// error is below 0.1 standard errors.
TEST(Dsmc, BkwMomentsFollowExactSolution) {
    const auto self = comm::Communicator::self();
    struct Case {
        const char* scheme;
        double dt;
        int every;
    };
    for (const Case c : {Case{"ntc", 0.25, 4}, Case{"nanbu_babovsky", 0.05, 20}}) {
        const auto p = dsmc::validate(bkw_options(100000, c.scheme), c.dt);
        int checked = 0;
        simulate(self, p, 21, c.dt, 6 * c.every, [&](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
            if (step == 0 || step % (2 * c.every) != 0)
                return;
            const double t = step * c.dt;
            const double K = dsmc::bkw::K_of_time(p.bkw_t0 + t);
            const auto d = e.diagnostics(ps);
            const auto nm = norm_moments(velocities(self, ps));
            EXPECT_NEAR(diag(d, "m4"), dsmc::bkw::m4(K), 4 * nm.m4.se) << c.scheme << " t=" << t;
            EXPECT_NEAR(diag(d, "m6"), dsmc::bkw::m6(K), 4 * nm.m6.se) << c.scheme << " t=" << t;
            ++checked;
        });
        EXPECT_EQ(checked, 3);
    }
}

// Nanbu–Babovsky's known first-order error (VERIFICATION.md): its expected moments follow one
// forward-Euler step of the moment equations per time step — m4 - 15 contracts by (1 - dt/3)
// instead of e^{-dt/3}. At dt = 1 (every pair collides) after 3 steps the scheme must match the
// Euler recursion and miss the exact solution (both started from the sampled initial moments).
TEST(Dsmc, NanbuBabovskyHasFirstOrderTimeStepError) {
    const auto self = comm::Communicator::self();
    const double dt = 1.0;
    const auto p = dsmc::validate(bkw_options(1000000, "nanbu_babovsky"), dt);
    double m4_0 = 0, m6_0 = 0;
    simulate(self, p, 22, dt, 3, [&](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
        const auto d = e.diagnostics(ps);
        if (step == 0) {
            m4_0 = diag(d, "m4");
            m6_0 = diag(d, "m6");
            return;
        }
        if (step != 3)
            return;
        double m4e, m6e, m4x, m6x;
        moment_ode_euler(dt, step, m4_0, m6_0, m4e, m6e);
        moment_ode_exact(step * dt, m4_0, m6_0, m4x, m6x);
        const auto nm = norm_moments(velocities(self, ps));
        EXPECT_NEAR(diag(d, "m4"), m4e, 4 * nm.m4.se);
        EXPECT_NEAR(diag(d, "m6"), m6e, 4 * nm.m6.se);
        EXPECT_GT(std::fabs(diag(d, "m4") - m4x), 4 * nm.m4.se) << "the dt error must be visible";
        EXPECT_GT(std::fabs(diag(d, "m6") - m6x), 4 * nm.m6.se) << "the dt error must be visible";
        EXPECT_EQ(diag(d, "collisions"), 3.0 * 500000); // P = 1: every pair collides
    });
    // The moment equations themselves reproduce the BKW solution.
    const double K0 = dsmc::bkw::K_of_time(p.bkw_t0), K1 = dsmc::bkw::K_of_time(p.bkw_t0 + 2.5);
    double m4, m6;
    moment_ode_exact(2.5, dsmc::bkw::m4(K0), dsmc::bkw::m6(K0), m4, m6);
    EXPECT_NEAR(m4, dsmc::bkw::m4(K1), 1e-12);
    EXPECT_NEAR(m6, dsmc::bkw::m6(K1), 1e-10);
}

// One binary collision conserves momentum and energy to round-off, for any mass ratio and both
// scattering laws; VSS deflections have <1 - cos chi> = 2/(1+alpha) and
// <sin^2 chi> = 4 alpha/((alpha+1)(alpha+2)) (VERIFICATION.md).
TEST(Dsmc, BinaryCollisionConservesAndVssAnglesAreRight) {
    const CounterRng rng(5, RngPurpose::User);
    const double alpha = 1.4;
    dsmc::VssScattering vss;
    vss.inv_alpha.set(0, 1, 1.0 / alpha);
    const int n = 200000;
    std::vector<double> one_minus_cos(n), sin2(n);
    for (int i = 0; i < n; ++i) {
        double z[4], u[4];
        rng.normal4(0, static_cast<std::uint64_t>(i), 0, z);
        rng.uniform4(0, static_cast<std::uint64_t>(i), 1, u);
        const double m1 = 1.0, m2 = i % 2 ? 100.0 : 1.7;
        double v1[3] = {z[0], z[1], z[2]}, v2[3] = {z[3], -0.3 * z[1], 2.0};
        const double g0[3] = {v1[0] - v2[0], v1[1] - v2[1], v1[2] - v2[2]};
        const double p0[3] = {m1 * v1[0] + m2 * v2[0], m1 * v1[1] + m2 * v2[1], m1 * v1[2] + m2 * v2[2]};
        const double e0 = 0.5 * m1 * (v1[0] * v1[0] + v1[1] * v1[1] + v1[2] * v1[2]) +
                          0.5 * m2 * (v2[0] * v2[0] + v2[1] * v2[1] + v2[2] * v2[2]);
        if (i % 3 == 0)
            dsmc::collide_pair(dsmc::IsotropicScattering{}, 0, 1, m1, m2, v1, v2, u[0], u[1]);
        else
            dsmc::collide_pair(vss, 0, 1, m1, m2, v1, v2, u[0], u[1]);
        const double e1 = 0.5 * m1 * (v1[0] * v1[0] + v1[1] * v1[1] + v1[2] * v1[2]) +
                          0.5 * m2 * (v2[0] * v2[0] + v2[1] * v2[1] + v2[2] * v2[2]);
        const double pscale = std::sqrt(2 * e0 * (m1 + m2));
        for (int k = 0; k < 3; ++k)
            ASSERT_NEAR(m1 * v1[k] + m2 * v2[k], p0[k], 1e-14 * pscale);
        ASSERT_NEAR(e1, e0, 1e-14 * e0);
        const double g1[3] = {v1[0] - v2[0], v1[1] - v2[1], v1[2] - v2[2]};
        const double gg0 = std::sqrt(g0[0] * g0[0] + g0[1] * g0[1] + g0[2] * g0[2]);
        const double gg1 = std::sqrt(g1[0] * g1[0] + g1[1] * g1[1] + g1[2] * g1[2]);
        const double cchi = (g0[0] * g1[0] + g0[1] * g1[1] + g0[2] * g1[2]) / (gg0 * gg1);
        one_minus_cos[i] = 1 - cchi;
        sin2[i] = 1 - cchi * cchi;
    }
    std::vector<double> a_iso, a_vss, s_vss;
    for (int i = 0; i < n; ++i) {
        if (i % 3 == 0)
            a_iso.push_back(one_minus_cos[i]);
        else {
            a_vss.push_back(one_minus_cos[i]);
            s_vss.push_back(sin2[i]);
        }
    }
    auto e = estimate(a_iso);
    EXPECT_NEAR(e.mean, 1.0, 4 * e.se);
    e = estimate(a_vss);
    EXPECT_NEAR(e.mean, 2 / (1 + alpha), 4 * e.se);
    e = estimate(s_vss);
    EXPECT_NEAR(e.mean, 4 * alpha / ((alpha + 1) * (alpha + 2)), 4 * e.se);
}

// Momentum and energy are conserved to round-off over a run: both schemes, every kernel, a
// two-species mixture (mass ratio 3) from drifting beams.
TEST(Dsmc, MomentumAndEnergyConservedToRoundOff) {
    const auto self = comm::Communicator::self();
    for (const char* scheme : {"nanbu_babovsky", "ntc"}) {
        for (const char* kernel : {"maxwell", "hard_sphere", "vhs", "vss"}) {
            dsmc::Options o;
            o.scheme = scheme;
            o.kernel = kernel;
            o.species = "a, b";
            o.mass = "1, 3";
            o.fraction = "0.4, 0.6";
            o.init = "two_beams, bimaxwellian";
            o.temperature = "0.5, 1";
            o.temperature_x = "0.5, 2";
            o.beam_speed = "1.5";
            o.drift = "0.3, -0.2, 0.1, 1, 0, 0";
            o.d_ref = "0.3, 0.35";
            o.omega = "0.75, 0.8";
            o.alpha = "1.4, 1.6";
            o.particles = 4000;
            const double dt = 0.1;
            Diagnostics d0, d1;
            simulate(self, dsmc::validate(o, dt), 31, dt, 30, [&](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
                if (step == 0)
                    d0 = e.diagnostics(ps);
                if (step == 30)
                    d1 = e.diagnostics(ps);
            });
            const std::string what = std::string(scheme) + "/" + kernel;
            const double E = diag(d0, "energy");
            const double M = 4000 * (0.4 * 1 + 0.6 * 3);
            EXPECT_GT(diag(d1, "collisions"), 2000) << what;
            EXPECT_NEAR(diag(d1, "energy"), E, 1e-12 * E) << what;
            for (const char* k : {"momentum_x", "momentum_y", "momentum_z"})
                EXPECT_NEAR(diag(d1, k), diag(d0, k), 1e-12 * std::sqrt(2 * E * M)) << what << " " << k;
            // Not trivially: the species exchanged momentum and energy.
            EXPECT_GT(std::fabs(diag(d1, "mean_velocity_b_x") - diag(d0, "mean_velocity_b_x")), 0.01) << what;
        }
    }
}

// Two counter-streaming beams of Maxwell molecules (per-particle rate nu = 1):
// T_x - T_perp decays as e^{-nu t/2} (NTC, no dt bias) and by (1 - nu dt/2) per step
// (Nanbu–Babovsky).
TEST(Dsmc, CounterStreamingBeamsRelaxAtHalfTheCollisionRate) {
    const auto self = comm::Communicator::self();
    for (const char* scheme : {"ntc", "nanbu_babovsky"}) {
        const bool ntc = std::string(scheme) == "ntc";
        dsmc::Options o;
        o.scheme = scheme;
        o.init = "two_beams";
        o.beam_speed = "2";
        o.temperature = "0.5";
        o.particles = 100000;
        const double dt = ntc ? 0.25 : 0.2;
        double a0 = 0;
        int checked = 0;
        simulate(self, dsmc::validate(o, dt), 41, dt, 20, [&](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
            const auto d = e.diagnostics(ps);
            const double a =
                diag(d, "temperature_gas_x") - 0.5 * (diag(d, "temperature_gas_y") + diag(d, "temperature_gas_z"));
            if (step == 0) {
                a0 = a;
                EXPECT_NEAR(a0, 4.0, 0.1);
                return;
            }
            if (step % 4 != 0)
                return;
            const double expect = ntc ? a0 * std::exp(-0.5 * step * dt) : a0 * std::pow(1 - 0.5 * dt, step);
            const auto nm = norm_moments(velocities(self, ps));
            EXPECT_NEAR(a, expect, 4 * nm.aniso.se) << scheme << " step " << step;
            ++checked;
        });
        EXPECT_EQ(checked, 5);
    }
}

// Two species of Maxwell molecules, no drift: d(T1 - T2)/dt = -(T1 - T2)/tau with
// 1/tau = 2 (n1 + n2) kappa m1 m2/(m1 + m2)^2, kappa = sigma_T g <1 - cos chi> (VERIFICATION.md).
// The rate fitted to ln(T1 - T2) over 4 units of time must be within 3%: the normalized Maxwell
// kernel (kappa = collision_rate/n) and VSS with omega = 1 (kappa = c_12 2/(1 + alpha)).
TEST(Dsmc, TwoSpeciesTemperatureRelaxationRate) {
    const auto self = comm::Communicator::self();
    for (const char* kernel : {"maxwell", "vss"}) {
        dsmc::Options o;
        o.kernel = kernel;
        o.species = "light, heavy";
        o.mass = "1, 4";
        o.fraction = "0.5, 0.5";
        o.temperature = "2, 0.5";
        o.particles = 400000;
        o.omega = "1";
        o.alpha = "1.4";
        o.d_ref = "0.4";
        const double dt = 0.25;
        const auto p = dsmc::validate(o, dt);
        const double m1 = 1, m2 = 4, mr = m1 * m2 / (m1 + m2);
        const double kappa = std::string(kernel) == "maxwell"
                                 ? p.collision_rate / p.number_density
                                 : kPi * 0.16 * std::sqrt(2 * p.T_ref / mr) / std::tgamma(1.5) * 2 / (1 + 1.4);
        const double rate = 2 * p.number_density * kappa * m1 * m2 / ((m1 + m2) * (m1 + m2));
        double y0 = 0, stt = 0, sty = 0;
        simulate(self, p, 51, dt, 16, [&](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
            const auto d = e.diagnostics(ps);
            const double y = diag(d, "temperature_light") - diag(d, "temperature_heavy");
            if (step == 0)
                y0 = y;
            const double t = step * dt;
            stt += t * t;
            sty += t * std::log(y / y0);
        });
        const double fitted = -sty / stt;
        EXPECT_NEAR(fitted, rate, 0.03 * rate) << kernel;
    }
}

// Hard spheres (Nanbu–Babovsky), VHS and VSS (NTC) relax an anisotropic (bi-Maxwellian) gas to a
// Maxwellian: after ~12 collision times the per-axis temperatures agree and the normalized
// moments are 15 and 105.
TEST(Dsmc, HardSphereAndVhsRelaxToMaxwellian) {
    const auto self = comm::Communicator::self();
    struct Case {
        const char* scheme;
        const char* kernel;
        double dt;
        int steps;
    };
    for (const Case c : {Case{"nanbu_babovsky", "hard_sphere", 0.1, 120}, Case{"ntc", "vhs", 0.25, 48},
                         Case{"ntc", "vss", 0.25, 48}}) {
        dsmc::Options o;
        o.scheme = c.scheme;
        o.kernel = c.kernel;
        o.init = "bimaxwellian";
        o.temperature = "1";
        o.temperature_x = "3";
        o.d_ref = "0.34"; // nu ~ 1 at T = 5/3
        o.omega = "0.75";
        o.alpha = "1.5";
        o.particles = 50000;
        simulate(self, dsmc::validate(o, c.dt), 61, c.dt, c.steps, [&](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
            if (step != 0 && step != c.steps)
                return;
            const auto d = e.diagnostics(ps);
            const auto nm = norm_moments(velocities(self, ps));
            const double a =
                diag(d, "temperature_gas_x") - 0.5 * (diag(d, "temperature_gas_y") + diag(d, "temperature_gas_z"));
            if (step == 0) {
                EXPECT_GT(a, 1.9); // really anisotropic at the start
                EXPECT_GT(diag(d, "m4") - 15, 10 * nm.m4.se);
                return;
            }
            EXPECT_NEAR(a, 0.0, 4 * nm.aniso.se) << c.kernel;
            EXPECT_NEAR(diag(d, "temperature_gas_y"), diag(d, "temperature_gas_z"),
                        4 * std::sqrt(2.0 * 2.0 / 50000) * 5.0 / 3.0)
                << c.kernel;
            EXPECT_NEAR(diag(d, "m4"), 15.0, 4 * nm.m4.se) << c.kernel;
            EXPECT_NEAR(diag(d, "m6"), 105.0, 4 * nm.m6.se) << c.kernel;
        });
    }
}

// The collision frequency per particle in equilibrium equals Bird's VHS formula
// nu = 4 d_ref^2 n sqrt(pi k T_ref/m) (T/T_ref)^(1 - omega) (Bird 1994, ch. 4; HS: omega = 1/2), in SI
// units (argon), for both schemes. Collision counts are Poisson-like: se = sqrt(C).
TEST(Dsmc, CollisionFrequencyMatchesBirdFormula) {
    const auto self = comm::Communicator::self();
    struct Case {
        const char* scheme;
        const char* kernel;
        double omega;
    };
    for (const Case c :
         {Case{"ntc", "vhs", 0.81}, Case{"nanbu_babovsky", "hard_sphere", 0.5}, Case{"ntc", "hard_sphere", 0.5}}) {
        dsmc::Options o;
        o.units = "si";
        o.scheme = c.scheme;
        o.kernel = c.kernel;
        o.species = "argon";
        o.mass = "6.63e-26";
        o.d_ref = "4.17e-10";
        o.omega = std::to_string(c.omega);
        o.T_ref = 273.15;
        o.temperature = "300";
        o.number_density = 1e20;
        o.particles = 50000;
        const double kB = dsmc::kBoltzmannSi, m = 6.63e-26, d = 4.17e-10;
        const double nu = 4 * d * d * 1e20 * std::sqrt(kPi * kB * 273.15 / m) * std::pow(300 / 273.15, 1 - c.omega);
        const double dt = 0.05 / nu;
        const int steps = 40;
        simulate(self, dsmc::validate(o, dt), 71, dt, steps, [&](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
            if (step != steps)
                return;
            const auto dg = e.diagnostics(ps);
            const double C = diag(dg, "collisions");
            const double T = diag(dg, "temperature_argon");
            const double expect =
                4 * d * d * 1e20 * std::sqrt(kPi * kB * 273.15 / m) * std::pow(T / 273.15, 1 - c.omega);
            const double measured = 2 * C / (50000 * steps * dt);
            EXPECT_NEAR(measured, expect, 4 * expect / std::sqrt(C)) << c.scheme << "/" << c.kernel;
            EXPECT_NEAR(T, 300, 4 * 300 * std::sqrt(2.0 / (3 * 50000)));
        });
    }
}

// Nanbu–Babovsky with a kernel whose probability depends on g: a too large dt is an error that
// names run.dt and the bound.
TEST(Dsmc, NanbuBabovskyRejectsProbabilityAboveOne) {
    const auto self = comm::Communicator::self();
    dsmc::Options o;
    o.scheme = "nanbu_babovsky";
    o.kernel = "hard_sphere";
    o.d_ref = "1";
    o.particles = 2000;
    const double dt = 0.5;
    try {
        simulate(self, dsmc::validate(o, dt), 1, dt, 2, [](int, ParticleSet&, dsmc::DsmcEngine&) {});
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("run.dt = 0.5"), std::string::npos) << msg;
        EXPECT_NE(msg.find("needs dt <"), std::string::npos) << msg;
    }
}

// ---- several ranks ------------------------------------------------------------------------

// 1 rank and P ranks (sub-ensembles reshuffled every 2 steps) agree within the combined
// statistical error: BKW m4, m6 (NTC) and the two-species temperature gap (Nanbu–Babovsky); energy
// is conserved identically.
TEST(MpiDsmc, OneAndManyRanksAgreeStatistically) {
    const auto world = comm::Communicator::world();
    struct Out {
        double m4 = 0, m6 = 0, gap = 0, energy0 = 0, energy = 0, se4 = 0, se6 = 0, se_gap = 0;
    };
    for (const bool mixture : {false, true}) {
        dsmc::Options o = bkw_options(40000, "ntc");
        double dt = 0.25;
        if (mixture) {
            o = dsmc::Options{};
            o.scheme = "nanbu_babovsky";
            o.species = "light, heavy";
            o.mass = "1, 4";
            o.fraction = "0.5, 0.5";
            o.temperature = "2, 0.5";
            o.particles = 40000;
            dt = 0.1;
        }
        o.shuffle_every = 2;
        const int steps = mixture ? 20 : 12;
        const auto p = dsmc::validate(o, dt);
        auto record = [steps, mixture](Out& out, const comm::Communicator& c) -> AtFn {
            return [&out, c, steps, mixture](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
                if (step != 0 && step != steps)
                    return;
                const auto d = e.diagnostics(ps);
                if (step == 0) {
                    out.energy0 = diag(d, "energy");
                    return;
                }
                out.energy = diag(d, "energy");
                if (!mixture) {
                    out.m4 = diag(d, "m4");
                    out.m6 = diag(d, "m6");
                    const auto v = velocities(c, ps);
                    if (c.is_root()) {
                        const auto nm = norm_moments(v);
                        out.se4 = nm.m4.se;
                        out.se6 = nm.m6.se;
                    }
                } else {
                    out.gap = diag(d, "temperature_light") - diag(d, "temperature_heavy");
                    const auto v0 = velocities(c, ps, 0), v1 = velocities(c, ps, 1);
                    if (c.is_root())
                        out.se_gap = std::hypot(temperature_se(v0, 1.0), temperature_se(v1, 4.0));
                }
            };
        };
        Out many, one;
        simulate(world, p, 81, dt, steps, record(many, world));
        if (world.is_root()) {
            const auto self = comm::Communicator::self();
            simulate(self, p, 81, dt, steps, record(one, self));
            EXPECT_EQ(many.energy0, one.energy0); // the same initial state, summed the same way
            EXPECT_NEAR(many.energy, many.energy0, 1e-12 * many.energy0);
            if (!mixture) {
                EXPECT_NEAR(many.m4, one.m4, 4 * std::hypot(many.se4, one.se4));
                EXPECT_NEAR(many.m6, one.m6, 4 * std::hypot(many.se6, one.se6));
                const double K = dsmc::bkw::K_of_time(p.bkw_t0 + steps * dt);
                EXPECT_NEAR(many.m4, dsmc::bkw::m4(K), 4 * many.se4);
            } else {
                EXPECT_NEAR(many.gap, one.gap, 4 * std::hypot(many.se_gap, one.se_gap));
                EXPECT_LT(many.gap, 0.8 * 1.5); // it did relax
            }
        }
    }
}

// The same run on the same ranks is bit-for-bit reproducible (shuffles included).
TEST(MpiDsmc, ReproducibleForAGivenRankCount) {
    const auto world = comm::Communicator::world();
    auto o = bkw_options(5000, "ntc");
    o.shuffle_every = 1;
    const auto p = dsmc::validate(o, 0.3);
    std::vector<double> a, b;
    for (auto* out : {&a, &b}) {
        simulate(world, p, 91, 0.3, 6, [&](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
            if (step != 6)
                return;
            e.to_blocks(ps);
            *out = test::gather_rows(world, ps.velocity);
        });
    }
    if (world.is_root()) {
        ASSERT_EQ(a.size(), b.size());
        EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)), 0);
    }
}

// Shuffles keep every rank at its block size and mix species that start on separate ranks;
// to_blocks brings back block order with every particle's species intact.
TEST(MpiDsmc, ShuffleMixesSpeciesAndKeepsBlockSizes) {
    const auto world = comm::Communicator::world();
    dsmc::Options o;
    o.species = "a, b";
    o.mass = "1, 2";
    o.fraction = "0.5, 0.5";
    o.particles = 4000;
    o.shuffle_every = 1;
    const auto p = dsmc::validate(o, 0.1);
    simulate(world, p, 101, 0.1, 3, [&](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
        const auto dec = comm::BlockDecomposition::make(4000, world.size(), world.rank());
        EXPECT_EQ(static_cast<std::int64_t>(ps.size()), dec.n_local());
        EXPECT_EQ(ps.position.data(), ps.velocity.data());
        if (step == 0)
            return;
        auto sp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ps.species);
        std::int64_t na = 0;
        for (std::size_t i = 0; i < ps.size(); ++i)
            na += sp(i) == 0;
        const double fa = static_cast<double>(na) / static_cast<double>(ps.size());
        EXPECT_NEAR(fa, 0.5, 0.1) << "rank " << world.rank() << " step " << step;
        if (step == 3) {
            e.to_blocks(ps);
            EXPECT_TRUE(comm::in_block_order(world, ps));
            auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ps.id);
            sp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ps.species);
            for (std::size_t i = 0; i < ps.size(); ++i)
                EXPECT_EQ(sp(i), id(i) < 2000 ? 0 : 1);
        }
    });
}

// A snapshot written after to_blocks reads back as an initial condition (init = file): the same
// velocities and species on any rank count.
TEST(MpiDsmc, SnapshotRoundTripAsInitialCondition) {
    const auto world = comm::Communicator::world();
    std::string path = ::testing::TempDir() + "kinflow_dsmc_" + std::to_string(world.size()) + "/init.h5";
    world.broadcast(path);
    dsmc::Options o;
    o.species = "a, b";
    o.mass = "1, 2";
    o.fraction = "0.3, 0.7";
    o.init = "two_beams, maxwellian";
    o.particles = 999;
    const auto p = dsmc::validate(o, 0.2);
    std::vector<double> written;
    simulate(world, p, 111, 0.2, 3, [&](int step, ParticleSet& ps, dsmc::DsmcEngine& e) {
        if (step != 3)
            return;
        e.to_blocks(ps);
        io::SnapshotWriter w(world, path, io::FileInfo{"dsmc", "", 111, 3});
        w.write(ps, 0.6, 3, e.diagnostics(ps));
        w.finish();
        written = test::gather_rows(world, ps.velocity);
    });
    dsmc::Options f = o;
    f.init = "file";
    f.init_file = path;
    auto q = dsmc::validate(f, 0.2);
    io::SnapshotReader reader(world, path);
    q.particles = reader.n_global(-1);
    EXPECT_TRUE(reader.has_dataset(0, "species"));
    dsmc::DsmcEngine engine(world, q, 112);
    auto ps = reader.read(-1, engine.decomposition().begin, engine.decomposition().end);
    engine.init(ps);
    EXPECT_EQ(ps.position.data(), ps.velocity.data());
    EXPECT_EQ(engine.params().count[0], 300);
    EXPECT_EQ(engine.params().count[1], 699);
    const auto again = test::gather_rows(world, ps.velocity);
    if (world.is_root()) {
        EXPECT_EQ(again, written);
    }
    engine.step(ps, 0, 0.2); // and it runs
}
