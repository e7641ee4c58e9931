// Langevin engine against exact results (VERIFICATION.md): OU mean/covariance, the
// Euler–Maruyama variance bias, the double-well Gibbs density, BAOAB stationary variances,
// the mean-field variance recursion, and bit-identical results for any rank count.
// Statistical checks use 4 standard errors computed from the stated sample sizes.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <functional>

#include "kinflow/engines/langevin/langevin_engine.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "support.hpp"

using namespace kinflow;
using langevin::Params;

namespace {

Params base_params(int dim, std::int64_t n) {
    Params p;
    p.dim = dim;
    p.particles = n;
    p.init_std = {1.0, 1.0, 1.0};
    return p;
}

/// Run `steps` steps; `at(step, particles, engine)` is called after init and after every step.
void simulate(const comm::Communicator& comm, const Params& p, std::uint64_t seed, double dt, int steps,
              const std::function<void(int, ParticleSet&, langevin::LangevinEngine&)>& at,
              const std::function<void(ParticleSet&)>& after_init = nullptr) {
    langevin::LangevinEngine engine(comm, p, seed);
    ParticleSet particles;
    engine.init(particles);
    if (after_init) after_init(particles);
    at(0, particles, engine);
    for (int s = 0; s < steps; ++s) {
        engine.step(particles, s, dt);
        at(s + 1, particles, engine);
    }
}

double diag(const Diagnostics& d, const std::string& name) {
    for (const auto& kv : d) {
        if (kv.first == name) return kv.second;
    }
    ADD_FAILURE() << "no diagnostic " << name;
    return NAN;
}

} // namespace

// dX = -θ(X - c) dt + sqrt(2D) dW from N(μ0, Σ0): E X_t = c + e^{-θt}(μ0 - c),
// Cov X_t = e^{-2θt} Σ0 + (D/θ)(1 - e^{-2θt}) I. dt is small enough that the O(dt) scheme bias is
// below 0.3 standard errors.
TEST(Langevin, OrnsteinUhlenbeckMeanAndCovarianceMatchClosedForm) {
    const auto self = comm::Communicator::self();
    const int n = 20000;
    Params p = base_params(3, n);
    p.stiffness = 1.5;
    p.temperature = 0.7;
    p.center = {1.0, -1.0, 0.5};
    p.init_mean = {3.0, 0.0, -1.0};
    p.init_std = {0.5, 1.0, 0.2};
    const double dt = 0.002;
    int checked = 0;
    simulate(self, p, 11, dt, 1500, [&](int step, ParticleSet& ps, langevin::LangevinEngine&) {
        if (step != 125 && step != 500 && step != 1500) return;
        ++checked;
        const double t = step * dt;
        const auto m = test::moments(test::gather_rows(self, ps.position), 3);
        const double e1 = std::exp(-p.stiffness * t), e2 = e1 * e1;
        for (int a = 0; a < 3; ++a) {
            const double var = e2 * p.init_std[a] * p.init_std[a] + p.temperature / p.stiffness * (1 - e2);
            const double mean = p.center[a] + e1 * (p.init_mean[a] - p.center[a]);
            EXPECT_NEAR(m.mean[a], mean, 4 * std::sqrt(var / n)) << "t=" << t << " axis " << a;
            EXPECT_NEAR(m.cov[a][a], var, 4 * var * std::sqrt(2.0 / n)) << "t=" << t << " axis " << a;
            for (int b = 0; b < a; ++b) {
                const double varb = e2 * p.init_std[b] * p.init_std[b] + p.temperature / p.stiffness * (1 - e2);
                EXPECT_NEAR(m.cov[a][b], 0.0, 4 * std::sqrt(var * varb / n)) << "t=" << t;
            }
        }
    });
    EXPECT_EQ(checked, 3);
}

// Euler–Maruyama's stationary OU variance is D/(θ(1 - θdt/2)), not D/θ: at θdt = 1/2 the bias
// (a third) is many standard errors, and the scheme must show exactly that bias.
TEST(Langevin, EulerMaruyamaStationaryVarianceBias) {
    const auto self = comm::Communicator::self();
    const int n = 40000;
    Params p = base_params(1, n);
    p.stiffness = 1.0;
    p.temperature = 1.0;
    const double dt = 0.5;
    double var = 0;
    simulate(self, p, 12, dt, 60, [&](int step, ParticleSet& ps, langevin::LangevinEngine& e) {
        if (step == 60) var = diag(e.diagnostics(ps), "variance_0");
    });
    const double exact_em = p.temperature / (p.stiffness * (1 - p.stiffness * dt / 2));
    const double se = exact_em * std::sqrt(2.0 / n);
    EXPECT_NEAR(var, exact_em, 4 * se);
    EXPECT_GT(std::fabs(var - p.temperature / p.stiffness), 20 * se); // the bias is really there
}

// dX = -V'(X) dt + sqrt(2D) dW with V = s (x^2 - 1)^2 has stationary density ∝ exp(-V/D). Bins of the
// histogram vs quadrature of the Gibbs density, each within 4 standard errors, plus a chi-square bound.
TEST(Langevin, DoubleWellHistogramMatchesGibbsDensity) {
    const auto self = comm::Communicator::self();
    const int n = 20000;
    Params p = base_params(1, n);
    p.potential = langevin::Potential::DoubleWell;
    p.stiffness = 1.0;
    p.temperature = 0.5;
    const double dt = 1e-3;
    std::vector<double> x;
    simulate(self, p, 13, dt, 3000, [&](int step, ParticleSet& ps, langevin::LangevinEngine&) {
        if (step == 3000) x = test::gather_rows(self, ps.position);
    });
    // Gibbs weights by composite Simpson's rule on [-4, 4].
    auto w = [&](double y) { return std::exp(-p.stiffness * (y * y - 1) * (y * y - 1) / p.temperature); };
    auto simpson = [&](double a, double b, int m) {
        const double h = (b - a) / m;
        double s = w(a) + w(b);
        for (int i = 1; i < m; ++i) s += (i % 2 ? 4 : 2) * w(a + i * h);
        return s * h / 3;
    };
    const double z = simpson(-4, 4, 8000);
    const int bins = 20;
    const double lo = -2, width = 0.2;
    std::vector<int> count(bins, 0);
    for (double v : x) {
        const int b = static_cast<int>(std::floor((v - lo) / width));
        if (b >= 0 && b < bins) ++count[b];
    }
    double chi2 = 0;
    for (int b = 0; b < bins; ++b) {
        const double prob = simpson(lo + b * width, lo + (b + 1) * width, 200) / z;
        const double se = std::sqrt(prob * (1 - prob) / n);
        EXPECT_NEAR(static_cast<double>(count[b]) / n, prob, 4 * se) << "bin " << b;
        chi2 += std::pow(count[b] - n * prob, 2) / (n * prob);
    }
    // chi-square with ~20 degrees of freedom: mean 20, sd 6.3; 50 is ~4.7 sd.
    EXPECT_LT(chi2, 50.0);
}

// BAOAB with no force: the O step is the exact OU velocity update, so the stationary velocity
// variance is T exactly for any dt (from zero initial velocities).
TEST(Langevin, BaoabFreeParticleVelocityVarianceIsExact) {
    const auto self = comm::Communicator::self();
    const int n = 20000;
    Params p = base_params(3, n);
    p.dynamics = langevin::Dynamics::Underdamped;
    p.potential = langevin::Potential::None;
    p.temperature = 0.8;
    p.friction = 2.0;
    Diagnostics d;
    simulate(
        self, p, 14, 0.3, 40, [&](int step, ParticleSet& ps, langevin::LangevinEngine& e) { if (step == 40) d = e.diagnostics(ps); },
        [](ParticleSet& ps) { Kokkos::deep_copy(ps.velocity, 0.0); });
    for (int k = 0; k < 3; ++k) {
        EXPECT_NEAR(diag(d, "velocity_variance_" + std::to_string(k)), p.temperature, 4 * p.temperature * std::sqrt(2.0 / n));
    }
    EXPECT_NEAR(diag(d, "kinetic_energy"), 1.5 * p.temperature, 4 * 0.5 * p.temperature * std::sqrt(6.0 / n));
}

// BAOAB for a harmonic oscillator samples the position variance T/θ exactly for any stable dt
// (Leimkuhler & Matthews, AMRX 2013); the velocity variance is compared with the stationary
// covariance of the linear BAOAB map, solved here independently (discrete Lyapunov iteration).
TEST(Langevin, BaoabHarmonicStationaryVariances) {
    const auto self = comm::Communicator::self();
    const int n = 20000;
    Params p = base_params(3, n);
    p.dynamics = langevin::Dynamics::Underdamped;
    p.potential = langevin::Potential::Harmonic;
    p.stiffness = 2.0;
    p.temperature = 0.8;
    p.friction = 1.0;
    p.init_std = {2.0, 2.0, 2.0};
    const double dt = 0.4, h = dt / 2;
    Diagnostics d;
    simulate(self, p, 15, dt, 150, [&](int step, ParticleSet& ps, langevin::LangevinEngine& e) {
        if (step == 150) d = e.diagnostics(ps);
    });
    // Linear map y' = M y + g ξ for y = (x, v): M = B A O A B, g = B A (0, c2).
    using Mat = std::array<std::array<double, 2>, 2>;
    auto mul = [](const Mat& a, const Mat& b) {
        Mat c{};
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) c[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j];
        return c;
    };
    const double c1 = std::exp(-p.friction * dt), c2 = std::sqrt((1 - c1 * c1) * p.temperature);
    const Mat B{{{1, 0}, {-h * p.stiffness, 1}}}, A{{{1, h}, {0, 1}}}, O{{{1, 0}, {0, c1}}};
    const Mat BA = mul(B, A);
    const Mat M = mul(mul(mul(BA, O), A), B);
    const std::array<double, 2> g{BA[0][1] * c2, BA[1][1] * c2};
    Mat S{};
    for (int it = 0; it < 20000; ++it) {
        Mat MS = mul(M, S), N{};
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) N[i][j] = MS[i][0] * M[j][0] + MS[i][1] * M[j][1] + g[i] * g[j];
        S = N;
    }
    EXPECT_NEAR(S[0][0], p.temperature / p.stiffness, 1e-12); // the known exactness, independently
    for (int k = 0; k < 3; ++k) {
        const std::string ks = std::to_string(k);
        EXPECT_NEAR(diag(d, "variance_" + ks), p.temperature / p.stiffness, 4 * S[0][0] * std::sqrt(2.0 / n));
        EXPECT_NEAR(diag(d, "velocity_variance_" + ks), S[1][1], 4 * S[1][1] * std::sqrt(2.0 / n));
    }
    // The full-step velocity variance differs from T by more than the noise at this dt.
    EXPECT_GT(std::fabs(S[1][1] - p.temperature), 8 * S[1][1] * std::sqrt(2.0 / n));
}

// Mean field W = κ|x|²/2 with V = θ|x - c|²/2, Euler–Maruyama, any N. With a = 1 - (θ+κ)dt,
// b = 1 - θ dt, σ² = 2D dt, conditionally on the initial state:
//   E m_n = c + bⁿ (m_0 - c),  Var m_n = (σ²/N) Σ_{j<n} b^{2j},
//   E S_n = a^{2n} S_0 + σ² (1 - 1/N) Σ_{j<n} a^{2j}   (S = empirical variance per component).
TEST(Langevin, MeanFieldMomentsFollowExactRecursion) {
    const auto self = comm::Communicator::self();
    const int n = 4000;
    Params p = base_params(2, n);
    p.stiffness = 0.5;
    p.kappa = 1.5;
    p.temperature = 1.0;
    p.center = {0.5, 0.0};
    p.init_mean = {2.0, -1.0};
    p.init_std = {1.5, 0.5};
    const double dt = 0.01;
    const int steps = 200;
    Diagnostics d0, d1;
    simulate(self, p, 16, dt, steps, [&](int step, ParticleSet& ps, langevin::LangevinEngine& e) {
        if (step == 0) d0 = e.diagnostics(ps);
        if (step == steps) d1 = e.diagnostics(ps);
    });
    const double a = 1 - (p.stiffness + p.kappa) * dt, b = 1 - p.stiffness * dt, s2 = 2 * p.temperature * dt;
    double sa = 0, sb = 0;
    for (int j = 0; j < steps; ++j) {
        sa += std::pow(a, 2 * j);
        sb += std::pow(b, 2 * j);
    }
    for (int k = 0; k < 2; ++k) {
        const std::string ks = std::to_string(k);
        const double m_exp = p.center[k] + std::pow(b, steps) * (diag(d0, "mean_" + ks) - p.center[k]);
        EXPECT_NEAR(diag(d1, "mean_" + ks), m_exp, 4 * std::sqrt(s2 * sb / n));
        const double s_exp = std::pow(a, 2 * steps) * diag(d0, "variance_" + ks) + s2 * (1 - 1.0 / n) * sa;
        EXPECT_NEAR(diag(d1, "variance_" + ks), s_exp, 4 * s_exp * std::sqrt(2.0 / n));
    }
}

// Without noise and confinement the mean is conserved to round-off and the variance contracts
// deterministically by (1 - κ dt)² per step.
TEST(Langevin, MeanFieldNoiseFreeConservesMeanExactly) {
    const auto self = comm::Communicator::self();
    Params p = base_params(3, 3000);
    p.potential = langevin::Potential::None;
    p.kappa = 2.0;
    p.temperature = 0.0;
    p.init_mean = {1.0, 2.0, 3.0};
    const double dt = 0.05;
    Diagnostics d0, d1;
    simulate(self, p, 17, dt, 100, [&](int step, ParticleSet& ps, langevin::LangevinEngine& e) {
        if (step == 0) d0 = e.diagnostics(ps);
        if (step == 100) d1 = e.diagnostics(ps);
    });
    for (int k = 0; k < 3; ++k) {
        const std::string ks = std::to_string(k);
        EXPECT_NEAR(diag(d1, "mean_" + ks), diag(d0, "mean_" + ks), 1e-13 * 4);
        EXPECT_NEAR(diag(d1, "variance_" + ks) / diag(d0, "variance_" + ks), std::pow(1 - p.kappa * dt, 200), 1e-12);
    }
}

// The same deck gives bit-identical particles for any rank count: the distributed result is
// gathered and compared with a one-rank run of the whole problem (MPI_COMM_SELF) on rank 0.
TEST(MpiLangevin, BitIdenticalForAnyRankCount) {
    const auto world = comm::Communicator::world();
    for (int variant = 0; variant < 2; ++variant) {
        Params p = base_params(3, 999);
        p.kappa = 0.7;
        p.init_mean = {0.3, -0.2, 0.1};
        if (variant == 0) {
            p.potential = langevin::Potential::Harmonic;
            p.stiffness = 1.3;
        } else {
            p.dynamics = langevin::Dynamics::Underdamped;
            p.potential = langevin::Potential::DoubleWell;
            p.friction = 0.5;
        }
        std::vector<double> xd, vd, xs, vs;
        Diagnostics dd, ds;
        auto record = [](std::vector<double>& x, std::vector<double>& v, Diagnostics& d, const comm::Communicator& c) {
            return [&x, &v, &d, c](int step, ParticleSet& ps, langevin::LangevinEngine& e) {
                if (step != 25) return;
                x = test::gather_rows(c, ps.position);
                if (ps.has_velocity()) v = test::gather_rows(c, ps.velocity);
                d = e.diagnostics(ps);
            };
        };
        simulate(world, p, 99, 0.01, 25, record(xd, vd, dd, world));
        if (world.is_root()) {
            simulate(comm::Communicator::self(), p, 99, 0.01, 25, record(xs, vs, ds, comm::Communicator::self()));
            ASSERT_EQ(xd.size(), xs.size());
            EXPECT_EQ(std::memcmp(xd.data(), xs.data(), xd.size() * sizeof(double)), 0) << "variant " << variant;
            ASSERT_EQ(vd.size(), vs.size());
            EXPECT_EQ(std::memcmp(vd.data(), vs.data(), vd.size() * sizeof(double)), 0) << "variant " << variant;
            ASSERT_EQ(dd.size(), ds.size());
            for (std::size_t k = 0; k < dd.size(); ++k) EXPECT_EQ(dd[k].second, ds[k].second) << dd[k].first;
        }
    }
}

// init = file: the engine starts from a written snapshot (any rank split) and, for
// underdamped dynamics, draws Maxwellian velocities when the file has none.
TEST(MpiLangevin, InitialConditionFromFile) {
    const auto world = comm::Communicator::world();
    std::string path = ::testing::TempDir() + "kinflow_init_" + std::to_string(world.size()) + "/init.h5";
    world.broadcast(path);
    Params p = base_params(2, 500);
    std::vector<double> written;
    {
        langevin::LangevinEngine engine(world, p, 5);
        ParticleSet ps;
        engine.init(ps);
        io::SnapshotWriter w(world, path, io::FileInfo{"langevin", "", 5, 2});
        w.write(ps, 0.0, 0, engine.diagnostics(ps));
        w.finish();
        written = test::gather_rows(world, ps.position);
    }
    Params q = p;
    q.init = langevin::Init::File;
    q.dynamics = langevin::Dynamics::Underdamped;
    q.temperature = 2.0;
    io::SnapshotReader reader(world, path);
    q.particles = reader.n_global(-1);
    langevin::LangevinEngine engine(world, q, 6);
    auto ps = reader.read(-1, engine.decomposition().begin, engine.decomposition().end);
    engine.init(ps);
    EXPECT_EQ(ps.vdim, 3);
    const auto again = test::gather_rows(world, ps.position);
    if (world.is_root()) {
        EXPECT_EQ(again, written);
    }
    const auto d = engine.diagnostics(ps);
    EXPECT_NEAR(diag(d, "velocity_variance_0"), 2.0, 4 * 2.0 * std::sqrt(2.0 / 500));
}
