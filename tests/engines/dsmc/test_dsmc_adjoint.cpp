// Adjoint DSMC (engines/dsmc/adjoint.hpp) against exact results:
// - Maxwell molecules: for fixed random numbers J is homogeneous of degree 4 in the initial
//   velocities (acceptance and scattering do not depend on them), so sum_i gamma_i(0).v_i(0) = 4J
//   and dJ/dT = 2J/T per replica, to round-off (both schemes; at P ranks it also checks that the
//   adjoints travel back through the redistributions);
// - Maxwell molecules: J is a smooth function of the initial state for fixed random numbers, so a
//   central difference with common random numbers equals the adjoint to O(h^2) per replica
//   (anisotropic init with temperature_x, a two-species mixture with unequal masses);
// - BKW (VERIFICATION.md): E<|v|^4> = T^2 m4(K(t)), m4 = 30K - 15K^2, K(t) = 1 - (1-K0) e^{-t/6}
//   (NTC) or 1 - (1-K0)(1 - dt/3)^{n/2} (Nanbu–Babovsky's first-order error), so
//   dJ/dT = 2T m4 and dJ/dK0 = T^2 (30 - 30K)(1-K)/(1-K0): adjoint within 3 standard errors;
// - the [adjoint] keys' one-line errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kinflow/core/error.hpp"
#include "kinflow/engines/dsmc/adjoint.hpp"
#include "kinflow/engines/dsmc/bkw.hpp"
#include "kinflow/engines/dsmc/options.hpp"

using namespace kinflow;

namespace {

dsmc::Options bkw(std::int64_t n, const std::string& scheme, double T, double t0) {
    dsmc::Options o;
    o.scheme = scheme;
    o.kernel = "maxwell";
    o.init = "bkw";
    o.temperature = std::to_string(T);
    o.bkw_t0 = t0;
    o.particles = n;
    return o;
}

dsmc::AdjointParams adjoint(const dsmc::Params& p, const std::string& objective, const std::string& parameters,
                            std::int64_t replicas) {
    dsmc::AdjointOptions a;
    a.objective = objective;
    a.parameters = parameters;
    a.replicas = replicas;
    return dsmc::validate(a, p);
}

/// K after `steps` steps of dt from K0 for the scheme (see the file comment).
double bkw_K(double K0, const std::string& scheme, int steps, double dt) {
    if (scheme == "ntc")
        return 1.0 - (1.0 - K0) * std::exp(-steps * dt / 6.0);
    return 1.0 - (1.0 - K0) * std::pow(1.0 - dt / 3.0, 0.5 * steps);
}

} // namespace

TEST(DsmcAdjoint, MaxwellTemperatureGradientIsExactPerReplica) {
    const auto self = comm::Communicator::self();
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        const auto p = dsmc::validate(bkw(4000, scheme, 1.5, 7.0), 0.25);
        const auto a = adjoint(p, "moment:4", "temperature", 1);
        const auto r = dsmc::adjoint_replica(self, p, a, 11, 0, 6, 0.25);
        EXPECT_NEAR(r.pathwise[0], 2.0 * r.J / 1.5, 1e-11 * r.J) << scheme;
        EXPECT_EQ(r.score[0], 0.0);
    }
}

TEST(DsmcAdjoint, MatchesCommonRandomNumberDifferencesForMaxwellMolecules) {
    const auto self = comm::Communicator::self();
    const double h = 1e-4;
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        // anisotropic initial state, J = <sum_k v_k^4>, both temperatures
        dsmc::Options o;
        o.scheme = scheme;
        o.init = "bimaxwellian";
        o.temperature = "1";
        o.temperature_x = "2";
        o.particles = 3000;
        auto p = dsmc::validate(o, 0.2);
        const auto a = adjoint(p, "component4", "temperature_x,temperature", 1);
        const auto r = dsmc::adjoint_replica(self, p, a, 5, 0, 8, 0.2);
        auto J_at = [&](const std::string& key, double value) {
            dsmc::Options q = o;
            (key == "x" ? q.temperature_x : q.temperature) = std::to_string(value);
            return dsmc::adjoint_replica(self, dsmc::validate(q, 0.2), a, 5, 0, 8, 0.2).J;
        };
        const double fx = (J_at("x", 2.0 + h) - J_at("x", 2.0 - h)) / (2 * h);
        const double fp = (J_at("p", 1.0 + h) - J_at("p", 1.0 - h)) / (2 * h);
        EXPECT_NEAR(r.pathwise[0], fx, 1e-6 * std::abs(fx)) << scheme;
        EXPECT_NEAR(r.pathwise[1], fp, 1e-6 * std::abs(fp)) << scheme;

        // two species of masses 1 and 4 (the unequal-mass Jacobian), J = energy of the light one
        dsmc::Options m;
        m.scheme = scheme;
        m.species = "light, heavy";
        m.mass = "1, 4";
        m.fraction = "0.5, 0.5";
        m.temperature = "2, 0.5";
        m.particles = 3000;
        p = dsmc::validate(m, 0.2);
        const auto am = adjoint(p, "energy_species:light", "temperature", 1);
        const auto rm = dsmc::adjoint_replica(self, p, am, 6, 0, 8, 0.2);
        auto Jm = [&](double d) {
            dsmc::Options q = m;
            q.temperature = std::to_string(2.0 + d) + ", " + std::to_string(0.5 + d);
            return dsmc::adjoint_replica(self, dsmc::validate(q, 0.2), am, 6, 0, 8, 0.2).J;
        };
        const double fm = (Jm(h) - Jm(-h)) / (2 * h);
        EXPECT_NEAR(rm.pathwise[0], fm, 1e-6 * std::abs(fm)) << scheme;
    }
}

TEST(DsmcAdjoint, BkwFourthMomentGradientsMatchExactSolution) {
    const auto self = comm::Communicator::self();
    const double T = 1.5, t0 = 7.0, dt = 0.25;
    const int steps = 8;
    const double K0 = dsmc::bkw::K_of_time(t0);
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        const auto p = dsmc::validate(bkw(20000, scheme, T, t0), dt);
        const auto a = adjoint(p, "moment:4", "temperature,bkw_K0,bkw_t0", 6);
        const auto r = dsmc::run_adjoint(self, p, a, 3, steps, dt);
        const double K = bkw_K(K0, scheme, steps, dt);
        const double m4 = dsmc::bkw::m4(K);
        const double dK0 = T * T * (30.0 - 30.0 * K) * (1.0 - K) / (1.0 - K0);
        EXPECT_NEAR(r.J, T * T * m4, 3 * r.J_se) << scheme;
        EXPECT_NEAR(r.gradient[0], 2 * T * m4, 3 * r.gradient_se[0]) << scheme;
        EXPECT_NEAR(r.gradient[1], dK0, 3 * r.gradient_se[1]) << scheme;
        EXPECT_NEAR(r.gradient[2], dK0 * (1.0 - K0) / 6.0, 3 * r.gradient_se[2]) << scheme;
        EXPECT_LT(r.gradient_se[0], 0.01 * 2 * T * m4); // and the check has teeth
        EXPECT_LT(r.gradient_se[1], 0.05 * dK0);
    }
}

TEST(DsmcAdjoint, RejectsUnsupportedCombinations) {
    const auto p = dsmc::validate(bkw(100, "ntc", 1.0, 7.0), 0.1);
    auto key_of = [](const dsmc::Params& q, const std::string& obj, const std::string& par, std::int64_t rep) {
        try {
            adjoint(q, obj, par, rep);
        } catch (const OptionError& e) {
            return e.key();
        }
        return std::string("none");
    };
    EXPECT_EQ(key_of(p, "moment:x", "temperature", 2), "adjoint.objective");
    EXPECT_EQ(key_of(p, "pressure", "temperature", 2), "adjoint.objective");
    EXPECT_EQ(key_of(p, "energy_species:argon", "temperature", 2), "adjoint.objective");
    EXPECT_EQ(key_of(p, "moment:4", "temperature_y", 2), "adjoint.parameters"); // init = bkw has none
    EXPECT_EQ(key_of(p, "moment:4", "temperature_x", 2), "adjoint.parameters"); // init = bkw has none
    EXPECT_EQ(key_of(p, "moment:4", "density", 2), "adjoint.parameters");
    EXPECT_EQ(key_of(p, "moment:4", "temperature,temperature", 2), "adjoint.parameters");
    EXPECT_EQ(key_of(p, "moment:4", "temperature", 0), "adjoint.replicas");
    EXPECT_EQ(key_of(p, "moment:4", "bkw_K0", 1), "none");
    dsmc::Options hs = bkw(100, "ntc", 1.0, 7.0);
    hs.kernel = "hard_sphere";
    EXPECT_EQ(key_of(dsmc::validate(hs, 0.1), "moment:4", "temperature", 1), "adjoint.replicas");
    EXPECT_EQ(key_of(dsmc::validate(hs, 0.1), "moment:4", "temperature", 2), "none");
    hs.kernel = "vss";
    hs.omega = "0.7";
    hs.alpha = "1.5";
    EXPECT_EQ(key_of(dsmc::validate(hs, 0.1), "moment:4", "temperature", 2), "none"); // VSS direction differentiated
    EXPECT_EQ(key_of(dsmc::validate(hs, 0.1), "moment:4", "alpha,omega", 2), "none");
    EXPECT_EQ(key_of(p, "moment:4", "alpha", 2), "adjoint.parameters");         // maxwell kernel: no alpha
    EXPECT_EQ(key_of(p, "moment:4", "temperature_z", 2), "adjoint.parameters"); // no bimaxwellian species
    EXPECT_EQ(key_of(p, "moment:4", "drift_x,drift,drift_y,drift_z", 2), "none");
    EXPECT_EQ(key_of(p, "moment:4", "drift_w", 2), "adjoint.parameters");
    // poly: objectives
    EXPECT_EQ(key_of(p, "poly:vx^4 + 2*vx^2*vy^2 - 0.5e-1*vz^2 + 3", "temperature", 1), "none");
    EXPECT_EQ(key_of(p, "poly: -vx*vy*vz", "temperature", 1), "none");
    for (const char* bad : {"poly:", "poly", "poly:vx^", "poly:vw^2", "poly:vx^2 vy^2", "poly:2 vx", "poly:vx^2+",
                            "poly:vx^99", "poly:vx**2", "poly:1e999*vx", "poly:(vx)", "poly:vx^2*", "poly:++vx",
                            "poly:vx+vx+vx+vx+vx+vx+vx+vx+vx+vx+vx+vx+vx+vx+vx+vx+vx"})
        EXPECT_EQ(key_of(p, bad, "temperature", 1), "adjoint.objective") << bad;
    // kernel parameters: omega of vhs/vss, d_ref of non-Maxwell kernels, collision_rate of Maxwell
    // molecules under Nanbu–Babovsky; replicas >= 2 (score term)
    EXPECT_EQ(key_of(p, "moment:4", "omega", 2), "adjoint.parameters");
    EXPECT_EQ(key_of(p, "moment:4", "d_ref", 2), "adjoint.parameters");
    EXPECT_EQ(key_of(p, "moment:4", "collision_rate", 2), "adjoint.parameters"); // ntc
    hs.kernel = "hard_sphere";
    EXPECT_EQ(key_of(dsmc::validate(hs, 0.1), "moment:4", "omega", 2), "adjoint.parameters");
    EXPECT_EQ(key_of(dsmc::validate(hs, 0.1), "moment:4", "d_ref", 2), "none");
    hs.kernel = "vhs";
    hs.omega = "1";
    EXPECT_EQ(key_of(dsmc::validate(hs, 0.1), "moment:4", "omega", 2), "adjoint.parameters"); // ntc, constant kernel
    hs.scheme = "nanbu_babovsky";
    EXPECT_EQ(key_of(dsmc::validate(hs, 0.1), "moment:4", "omega", 2), "none");
    dsmc::Options nb = bkw(100, "nanbu_babovsky", 1.0, 7.0);
    EXPECT_EQ(key_of(dsmc::validate(nb, 0.1), "moment:4", "collision_rate", 1), "adjoint.replicas");
    EXPECT_EQ(key_of(dsmc::validate(nb, 0.1), "moment:4", "collision_rate,temperature", 2), "none");
    dsmc::Options f = bkw(100, "ntc", 1.0, 7.0);
    f.init = "file";
    f.init_file = "x.h5";
    EXPECT_EQ(key_of(dsmc::validate(f, 0.1), "moment:4", "temperature", 2), "adjoint.parameters");
}

// At P ranks (sub-ensembles redistributed every 2 steps): the per-replica identity still holds to
// round-off, which it cannot unless the adjoints follow their particles back through every
// redistribution; and the gradient agrees with one rank's and with the exact value.
TEST(MpiDsmcAdjoint, OneAndManyRanksAgree) {
    const auto world = comm::Communicator::world();
    const double T = 1.5, dt = 0.25;
    const int steps = 8;
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        auto o = bkw(20000, scheme, T, 7.0);
        o.shuffle_every = 2;
        const auto p = dsmc::validate(o, dt);
        const auto a = adjoint(p, "moment:4", "temperature", 4);
        const auto r1 = dsmc::adjoint_replica(world, p, a, 21, 0, steps, dt);
        EXPECT_NEAR(r1.pathwise[0], 2.0 * r1.J / T, 1e-11 * r1.J) << scheme;
        const auto many = dsmc::run_adjoint(world, p, a, 21, steps, dt);
        const double m4 = dsmc::bkw::m4(bkw_K(dsmc::bkw::K_of_time(7.0), scheme, steps, dt));
        EXPECT_NEAR(many.gradient[0], 2 * T * m4, 3 * many.gradient_se[0]) << scheme;
        if (world.is_root()) {
            const auto one = dsmc::run_adjoint(comm::Communicator::self(), p, a, 21, steps, dt);
            EXPECT_NEAR(many.gradient[0], one.gradient[0], 3 * std::hypot(many.gradient_se[0], one.gradient_se[0]))
                << scheme;
        }
    }
}

// Velocity-dependent kernels: the gradient of the expectation needs the score-function term
// (acceptance decisions flip as the velocities change). Against a central difference of the
// same replicas at T +- h (common random numbers), within 3 combined standard errors. The rate
// effect the score term carries is small here (about 0.4 of dJ/dT = 28, against standard errors of
// 0.4 to 1.5 with 24 replicas: the score term's noise per replica does not fall with N), so this
// checks consistency, not the score term's size; the pathwise term alone is printed for reference.
TEST(DsmcAdjoint, HardSphereAndVhsMatchCommonRandomNumberDifferences) {
    const auto self = comm::Communicator::self();
    struct Case {
        const char* scheme;
        const char* kernel;
        const char* omega;
    };
    for (const Case c : {Case{"nanbu_babovsky", "hard_sphere", "0.5"}, Case{"ntc", "hard_sphere", "0.5"},
                         Case{"ntc", "vhs", "0.75"}, Case{"nanbu_babovsky", "vhs", "0.75"}}) {
        const double T = 1.0, h = 0.05, dt = 0.01;
        const int steps = 20, R = 24;
        auto opts = [&](double temp) {
            dsmc::Options o = bkw(2000, c.scheme, temp, dsmc::kBkwMinTime);
            o.kernel = c.kernel;
            o.omega = c.omega;
            return o;
        };
        const auto p = dsmc::validate(opts(T), dt);
        const auto a = adjoint(p, "moment:4", "temperature", R);
        std::vector<dsmc::ReplicaResult> rs;
        std::vector<double> fd;
        for (int r = 0; r < R; ++r) {
            rs.push_back(dsmc::adjoint_replica(self, p, a, 101, r, steps, dt));
            const double jp = dsmc::adjoint_replica(self, dsmc::validate(opts(T + h), dt), a, 101, r, steps, dt).J;
            const double jm = dsmc::adjoint_replica(self, dsmc::validate(opts(T - h), dt), a, 101, r, steps, dt).J;
            fd.push_back((jp - jm) / (2 * h));
        }
        const auto adj = dsmc::combine(rs, true);
        double fm = 0, fv = 0, pw = 0;
        for (double x : fd)
            fm += x / R;
        for (double x : fd)
            fv += (x - fm) * (x - fm) / (R - 1);
        for (const auto& r : rs)
            pw += r.pathwise[0] / R;
        const double se = std::hypot(adj.gradient_se[0], std::sqrt(fv / R));
        std::printf("%s %s: adjoint %.4f +- %.4f, CRN difference %.4f +- %.4f, pathwise alone %.4f\n", c.scheme,
                    c.kernel, adj.gradient[0], adj.gradient_se[0], fm, std::sqrt(fv / R), pw);
        EXPECT_NEAR(adj.gradient[0], fm, 3 * se) << c.scheme << " " << c.kernel;
        EXPECT_LT(adj.gradient_se[0], 0.06 * fm);
    }
}

namespace {

/// Second and fourth moments of a reflection-symmetric gas of Maxwell molecules (isotropic
/// scattering, every particle colliding at rate 1): m = (a_x, a_y, a_z, q_x, q_y, q_z, c_xy, c_xz,
/// c_yz) with a_k = <v_k^2>, q_k = <v_k^4>, c_kl = <v_k^2 v_l^2>. The moment equations close (Truesdell
/// & Muncaster, Fundamentals of Maxwell's Kinetic Theory, 1980, ch. XV): d<psi>/dt = <psi(v') - psi(v)>
/// with v' = V + (g/2) s, V = (v + w)/2, g = |v - w|, s uniform on the sphere and w an independent
/// partner; averaging over s (<s_k^2> = 1/3, <s_k^4> = 1/5, <s_k^2 s_l^2> = 1/15) and over v, w gives
///   da_k/dt = a/6 - a_k/2   (a = sum a_l)
///   dq_k/dt = <V_k^4> + <V_k^2 g^2>/2 + <g^4>/80 - q_k
///   dc_kl/dt = <V_k^2 V_l^2> + (<V_k^2 g^2> + <V_l^2 g^2>)/12 + <g^4>/240 - c_kl
/// with <V_k^4> = (2 q_k + 6 a_k^2)/16, <V_k^2 V_l^2> = (2 c_kl + 2 a_k a_l)/16,
/// <V_k^2 g^2> = (2 q_k - 2 a_k^2 + sum_{l != k} (2 c_kl + 2 a_k a_l))/4,
/// <g^4> = sum_l (2 q_l + 6 a_l^2) + sum_{l != m} (2 c_lm + 2 a_l a_m).
std::array<double, 9> moment_rhs(const std::array<double, 9>& m) {
    const double* a = m.data();
    const double* q = m.data() + 3;
    auto c = [&](int k, int l) { return m[6 + (k + l - 1)]; }; // (0,1) -> 6, (0,2) -> 7, (1,2) -> 8
    double g4 = 0.0;
    for (int l = 0; l < 3; ++l) {
        g4 += 2 * q[l] + 6 * a[l] * a[l];
        for (int n = 0; n < 3; ++n)
            if (n != l)
                g4 += 2 * c(std::min(l, n), std::max(l, n)) + 2 * a[l] * a[n];
    }
    double Vg[3];
    for (int k = 0; k < 3; ++k) {
        Vg[k] = 2 * q[k] - 2 * a[k] * a[k];
        for (int l = 0; l < 3; ++l)
            if (l != k)
                Vg[k] += 2 * c(std::min(k, l), std::max(k, l)) + 2 * a[k] * a[l];
        Vg[k] /= 4;
    }
    std::array<double, 9> d{};
    const double asum = a[0] + a[1] + a[2];
    for (int k = 0; k < 3; ++k) {
        d[k] = asum / 6 - a[k] / 2;
        d[3 + k] = (2 * q[k] + 6 * a[k] * a[k]) / 16 + Vg[k] / 2 + g4 / 80 - q[k];
    }
    for (int k = 0; k < 3; ++k)
        for (int l = k + 1; l < 3; ++l)
            d[6 + (k + l - 1)] = (2 * c(k, l) + 2 * a[k] * a[l]) / 16 + (Vg[k] + Vg[l]) / 12 + g4 / 240 - c(k, l);
    return d;
}

/// E<sum_k v_k^4> after `steps` steps of dt from a bi-Maxwellian (T_x, T, T): the exact moment flow
/// (NTC; RK4) or its forward-Euler map (Nanbu–Babovsky: each particle collides with probability dt).
double component4(double Tx, double T, const std::string& scheme, int steps, double dt) {
    std::array<double, 9> m = {Tx, T, T, 3 * Tx * Tx, 3 * T * T, 3 * T * T, Tx * T, Tx * T, T * T};
    auto axpy = [](std::array<double, 9> x, double s, const std::array<double, 9>& y) {
        for (int i = 0; i < 9; ++i)
            x[i] += s * y[i];
        return x;
    };
    if (scheme == "ntc") {
        const int sub = 200 * steps;
        const double h = steps * dt / sub;
        for (int i = 0; i < sub; ++i) {
            const auto k1 = moment_rhs(m), k2 = moment_rhs(axpy(m, h / 2, k1)), k3 = moment_rhs(axpy(m, h / 2, k2)),
                       k4 = moment_rhs(axpy(m, h, k3));
            for (int j = 0; j < 9; ++j)
                m[j] += h / 6 * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j]);
        }
    } else {
        for (int i = 0; i < steps; ++i)
            m = axpy(m, dt, moment_rhs(m));
    }
    return m[3] + m[4] + m[5];
}

} // namespace

// Anisotropic initial temperatures, J = <sum_k v_k^4>: dJ/dT_x and dJ/dT (y, z) from the closed
// moment equations of Maxwell molecules (differentiated by central differences of the exact flow).
TEST(DsmcAdjoint, AnisotropicFourthMomentGradientsMatchMomentEquations) {
    const auto self = comm::Communicator::self();
    const double dt = 0.25, Tx = 2.0, T = 1.0, h = 1e-5;
    const int steps = 8;
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        dsmc::Options o;
        o.scheme = scheme;
        o.init = "bimaxwellian";
        o.temperature = "1";
        o.temperature_x = "2";
        o.particles = 20000;
        const auto p = dsmc::validate(o, dt);
        const auto a = adjoint(p, "component4", "temperature_x,temperature", 6);
        const auto r = dsmc::run_adjoint(self, p, a, 17, steps, dt);
        const double J = component4(Tx, T, scheme, steps, dt);
        const double dx = (component4(Tx + h, T, scheme, steps, dt) - component4(Tx - h, T, scheme, steps, dt)) / (2 * h);
        const double dp = (component4(Tx, T + h, scheme, steps, dt) - component4(Tx, T - h, scheme, steps, dt)) / (2 * h);
        EXPECT_NEAR(r.J, J, 3 * r.J_se) << scheme;
        EXPECT_NEAR(r.gradient[0], dx, 3 * r.gradient_se[0]) << scheme;
        EXPECT_NEAR(r.gradient[1], dp, 3 * r.gradient_se[1]) << scheme;
        EXPECT_LT(r.gradient_se[0], 0.02 * dx);
        std::printf("%s: J %.4f (exact %.4f), dJ/dTx %.4f +- %.4f (exact %.4f), dJ/dT %.4f +- %.4f (exact %.4f)\n",
                    scheme.c_str(), r.J, J, r.gradient[0], r.gradient_se[0], dx, r.gradient[1], r.gradient_se[1], dp);
    }
}

namespace {

struct Estimate {
    double mean = 0.0, se = 0.0;
};
Estimate mean_se(const std::vector<double>& x) {
    Estimate e;
    const double n = static_cast<double>(x.size());
    for (double v : x)
        e.mean += v / n;
    double var = 0.0;
    for (double v : x)
        var += (v - e.mean) * (v - e.mean) / (n - 1);
    e.se = std::sqrt(var / n);
    return e;
}

} // namespace

// Collision-kernel parameters act only through the acceptance probabilities: the adjoint gradient
// is the kernel-parameter score term alone (Yang, Silantyev & Caflisch 2023). Against central
// differences of the same replicas at theta +- h and theta +- h/2 (common random numbers; NTC
// majorants held at the replica's values at theta, as the adjoint holds them): the adjoint within 3
// combined standard errors of the h difference, and the h and h/2 differences within 3 standard
// errors of their paired difference (Richardson check: the O(h^2) truncation error is below the noise).
// J = T_x of an anisotropic gas (T_x = 2, T_y = T_z = 1) after 0.2 time units (about 1.4 collision
// times). The score term's noise per replica does not fall with N (about 4 for these J, against
// gradients of 0.4 to 0.9), so the check uses few particles and many replicas.
namespace {

/// One kernel-parameter case of the check below: `scheme`, `kernel`, d J/d `parameter` at `value`.
void check_kernel_gradient(const char* scheme, const char* kernel, const char* parameter, double value, double h) {
    const auto self = comm::Communicator::self();
    const double dt = 0.04;
    const int steps = 5, R = 1200;
    const std::string par = parameter;
    auto opts = [&](double theta) {
        dsmc::Options o;
        o.scheme = scheme;
        o.kernel = kernel;
        o.init = "bimaxwellian";
        o.temperature = "1";
        o.temperature_x = "2";
        o.particles = 200;
        o.T_ref = 0.25; // the collision rate then depends on omega, as (T_ref/T)^(omega - 1/2)
        o.omega = par == "omega" ? std::to_string(theta) : "0.7";
        o.d_ref = par == "d_ref" ? std::to_string(theta) : "1";
        o.alpha = par == "alpha" ? std::to_string(theta) : "1";
        return o;
    };
    const auto p = dsmc::validate(opts(value), dt);
    const auto a = adjoint(p, "temperature_x", parameter, R);
    std::vector<dsmc::ReplicaResult> rs;
    std::vector<double> fd, fd2, rich;
    for (int r = 0; r < R; ++r) {
        rs.push_back(dsmc::adjoint_replica(self, p, a, 303, r, steps, dt));
        const auto& maj = rs.back().majorants;
        auto J = [&](double theta) {
            return dsmc::adjoint_replica(self, dsmc::validate(opts(theta), dt), a, 303, r, steps, dt, maj).J;
        };
        fd.push_back((J(value + h) - J(value - h)) / (2 * h));
        fd2.push_back((J(value + h / 2) - J(value - h / 2)) / h);
        rich.push_back(fd.back() - fd2.back());
    }
    const auto adj = dsmc::combine(rs, true);
    const Estimate f = mean_se(fd), f2 = mean_se(fd2), d = mean_se(rich);
    const double se = std::hypot(adj.gradient_se[0], f.se);
    std::printf("%s %s d/d%s: adjoint %.4f +- %.4f, CRN difference h %.4f +- %.4f, h/2 %.4f +- %.4f\n", scheme,
                kernel, parameter, adj.gradient[0], adj.gradient_se[0], f.mean, f.se, f2.mean, f2.se);
    EXPECT_NEAR(adj.gradient[0], f.mean, 3 * se) << scheme << " " << kernel;
    EXPECT_NEAR(d.mean, 0.0, 3 * d.se) << scheme << " " << kernel;
    EXPECT_GT(std::abs(f.mean), 3 * se) << scheme << " " << kernel; // a gradient the check resolves
}

} // namespace

TEST(DsmcAdjoint, KernelParameterGradientsMatchCommonRandomNumberDifferencesNtc) {
    check_kernel_gradient("ntc", "vhs", "omega", 0.7, 0.1);
    check_kernel_gradient("ntc", "hard_sphere", "d_ref", 1.0, 0.1);
}

TEST(DsmcAdjoint, KernelParameterGradientsMatchCommonRandomNumberDifferencesNanbuBabovsky) {
    check_kernel_gradient("nanbu_babovsky", "vhs", "omega", 0.7, 0.1);
    check_kernel_gradient("nanbu_babovsky", "hard_sphere", "d_ref", 0.8, 0.1); // n sigma_T g dt < 1 at d_ref + h
}

// Maxwell molecules under Nanbu–Babovsky with the rate nu: second moments follow the forward-Euler
// map of the moment equations with step nu dt exactly in expectation, so T_x - T = (T_x0 - T)
// (1 - nu dt/2)^n (T = the mean of the three axes' temperatures) and dT_x/dnu follows: adjoint (score
// term only) within 3 standard errors.
TEST(DsmcAdjoint, MaxwellCollisionRateGradientMatchesMomentEquations) {
    const auto self = comm::Communicator::self();
    const double dt = 0.25, nu = 1.0, Tx0 = 2.0, T = 4.0 / 3.0;
    const int steps = 4;
    dsmc::Options o;
    o.scheme = "nanbu_babovsky";
    o.init = "bimaxwellian";
    o.temperature = "1";
    o.temperature_x = "2";
    o.collision_rate = nu;
    o.particles = 200;
    const auto p = dsmc::validate(o, dt);
    const auto a = adjoint(p, "temperature_x", "collision_rate", 2000);
    const auto r = dsmc::run_adjoint(self, p, a, 41, steps, dt);
    const double J = T + (Tx0 - T) * std::pow(1 - nu * dt / 2, steps);
    const double dJ = -(Tx0 - T) * steps * dt / 2 * std::pow(1 - nu * dt / 2, steps - 1);
    std::printf("nanbu_babovsky maxwell: T_x %.4f +- %.4f (exact %.4f), dT_x/dnu %.4f +- %.4f (exact %.4f)\n", r.J,
                r.J_se, J, r.gradient[0], r.gradient_se[0], dJ);
    EXPECT_NEAR(r.J, J, 3 * r.J_se + 0.01); // + the O(1/N) of T_x about the sample mean velocity
    EXPECT_NEAR(r.gradient[0], dJ, 3 * r.gradient_se[0]);
    EXPECT_LT(r.gradient_se[0], 0.35 * std::abs(dJ));
}

namespace {

/// Closed form of E<sum_k v_k^4> for Maxwell molecules (every particle colliding at rate 1,
/// isotropic scattering, unit mass, k_B = 1) from a tri-Maxwellian with axis temperatures T_k and
/// drift u, and its gradient. Derivation (the moment equations of moment_rhs above): with a_k =
/// <c_k^2> (c = v - u; collisions conserve u and keep <c> = <c_k^3> = 0), Tb = (T_x + T_y + T_z)/3,
/// d_k = T_k - Tb and D = sum_k d_k^2, the second moments relax as a_k = Tb + d_k rho(t),
/// rho = e^{-t/2}. Summing moment_rhs over the axes closes on Q = sum_k q_k and C = sum_{k<l} c_kl:
///   dQ/dt = -11/20 Q + 13/20 C + 7/20 sum a_k^2 + 13/20 sum_{k<l} a_k a_l,
///   dC/dt = 13/120 Q - 79/120 C - 1/120 sum a_k^2 + 41/120 sum_{k<l} a_k a_l,
/// whose modes are S = Q + 2C = <|c|^4> (rate 1/3) and R = Q - 3C (rate 7/8):
///   dS/dt = -(S - 15 Tb^2 + D rho^2)/3,  dR/dt = -7/8 R + 9/16 D rho^2.
/// From a Gaussian (S = 15 Tb^2 + 2D, R = 9D/2 at t = 0): S = 15 Tb^2 + D (3/2 e^{-t/3} + 1/2 e^{-t}),
/// R = D (9 e^{-7t/8} - 9/2 e^{-t}), Q = (3S + 2R)/5 = 9 Tb^2 + beta D with
///   beta(t) = 9/10 e^{-t/3} + 18/5 e^{-7t/8} - 3/2 e^{-t}.
/// The drift adds sum_k (6 u_k^2 a_k + u_k^4), so
///   J = 9 Tb^2 + beta D + sum_k (6 u_k^2 a_k + u_k^4),
///   dJ/dT_k = 6 Tb + 2 beta d_k + 6 sum_j u_j^2 (1/3 + (delta_jk - 1/3) rho),
///   dJ/du_k = 12 u_k a_k + 4 u_k^3.
/// Nanbu–Babovsky follows the forward-Euler map of the same equations (step h = dt): rho =
/// (1 - h/2)^n and beta = (3 s + 2 R)/5 per unit D with s = A (1 - h/3)^n + B r^n, B = 1/(2 - 3h/4),
/// A = 2 - B, R = E (1 - 7h/8)^n + F r^n, F = -9/(2 (1 - 2h)), E = 9/2 - F, r = (1 - h/2)^2 (the
/// geometric solutions of the same linear recursions; h -> 0 gives the exponentials).
struct Component4 {
    double J = 0.0, dT[3] = {}, du[3] = {};
};
Component4 component4_closed(const double T[3], const double u[3], const std::string& scheme, int n, double dt) {
    const double Tb = (T[0] + T[1] + T[2]) / 3.0;
    double d[3], D = 0.0;
    for (int k = 0; k < 3; ++k) {
        d[k] = T[k] - Tb;
        D += d[k] * d[k];
    }
    double beta, rho;
    if (scheme == "ntc") {
        const double t = n * dt;
        beta = 0.9 * std::exp(-t / 3.0) + 3.6 * std::exp(-7.0 * t / 8.0) - 1.5 * std::exp(-t);
        rho = std::exp(-t / 2.0);
    } else {
        const double h = dt, r = (1 - h / 2) * (1 - h / 2);
        const double B = 1.0 / (2.0 - 0.75 * h), A = 2.0 - B, F = -4.5 / (1.0 - 2.0 * h), E = 4.5 - F;
        const double sn = A * std::pow(1 - h / 3, n) + B * std::pow(r, n);
        const double Rn = E * std::pow(1 - 7 * h / 8, n) + F * std::pow(r, n);
        beta = (3 * sn + 2 * Rn) / 5;
        rho = std::pow(1 - h / 2, n);
    }
    Component4 c;
    c.J = 9 * Tb * Tb + beta * D;
    for (int k = 0; k < 3; ++k) {
        const double a = Tb + d[k] * rho;
        c.J += 6 * u[k] * u[k] * a + std::pow(u[k], 4);
        c.du[k] = 12 * u[k] * a + 4 * std::pow(u[k], 3);
        c.dT[k] = 6 * Tb + 2 * beta * d[k];
        for (int j = 0; j < 3; ++j)
            c.dT[k] += 6 * u[j] * u[j] * (1.0 / 3.0 + ((j == k ? 1.0 : 0.0) - 1.0 / 3.0) * rho);
    }
    return c;
}

} // namespace

// Tri-Maxwellian initial state (T_x, T_y, T_z) = (2, 1, 0.5) with a drift, Maxwell molecules,
// J = <sum_k v_k^4>: the adjoint dJ/dT_x, dJ/dT_y, dJ/dT_z, dJ/du_x, dJ/du_z and dJ/d(drift) within 3
// standard errors of the closed form above (which is first checked against the numerically
// integrated moment equations, component4(), to 1e-8).
TEST(DsmcAdjoint, TrimaxwellianAndDriftGradientsMatchClosedForm) {
    const auto self = comm::Communicator::self();
    const double dt = 0.25, T[3] = {2.0, 1.0, 0.5}, u[3] = {0.4, 0.0, -0.3}, zero[3] = {0.0, 0.0, 0.0};
    const int steps = 8;
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        const double T2[3] = {2.0, 1.0, 1.0};
        EXPECT_NEAR(component4_closed(T2, zero, scheme, steps, dt).J, component4(2.0, 1.0, scheme, steps, dt), 1e-8);
        dsmc::Options o;
        o.scheme = scheme;
        o.init = "bimaxwellian";
        o.temperature = "1";
        o.temperature_x = "2";
        o.temperature_y = "1";
        o.temperature_z = "0.5";
        o.drift = "0.4, 0, -0.3";
        o.particles = 20000;
        const auto p = dsmc::validate(o, dt);
        const auto a = adjoint(p, "component4", "temperature_x,temperature_y,temperature_z,drift_x,drift_z,drift", 6);
        const auto r = dsmc::run_adjoint(self, p, a, 23, steps, dt);
        const auto c = component4_closed(T, u, scheme, steps, dt);
        const double exact[6] = {c.dT[0], c.dT[1], c.dT[2], c.du[0], c.du[2], c.du[0] + c.du[1] + c.du[2]};
        EXPECT_NEAR(r.J, c.J, 3 * r.J_se) << scheme;
        for (int q = 0; q < 6; ++q) {
            std::printf("%s: dJ/d%s %.4f +- %.4f (exact %.4f)\n", scheme.c_str(), a.names[q].c_str(), r.gradient[q],
                        r.gradient_se[q], exact[q]);
            EXPECT_NEAR(r.gradient[q], exact[q], 3 * r.gradient_se[q]) << scheme << " " << a.names[q];
            EXPECT_LT(r.gradient_se[q], 0.03 * std::abs(exact[q])) << scheme << " " << a.names[q];
        }
    }
}

// Per replica, to round-off: the deck semantics of the parameters (dsmc.temperature moves the axes
// whose temperature_x/_y/_z is empty; drift = drift_x + drift_y + drift_z), poly: objectives equal to
// the built-in ones they spell out, and d<v_x>/du_x = 1 (momentum is conserved by every collision).
TEST(DsmcAdjoint, ParameterAndPolynomialIdentitiesPerReplica) {
    const auto self = comm::Communicator::self();
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        dsmc::Options o;
        o.scheme = scheme;
        o.init = "bimaxwellian";
        o.temperature = "1";
        o.temperature_x = "2";
        o.drift = "0.3, -0.2, 0.1";
        o.particles = 2000;
        const auto p = dsmc::validate(o, 0.2);
        const std::string pars = "temperature,temperature_y,temperature_z,drift,drift_x,drift_y,drift_z";
        const auto r = dsmc::adjoint_replica(self, p, adjoint(p, "component4", pars, 1), 8, 0, 6, 0.2);
        EXPECT_NEAR(r.pathwise[0], r.pathwise[1] + r.pathwise[2], 1e-12 * std::abs(r.pathwise[0])) << scheme;
        EXPECT_NEAR(r.pathwise[3], r.pathwise[4] + r.pathwise[5] + r.pathwise[6], 1e-12 * std::abs(r.pathwise[3]))
            << scheme;
        const auto rp = dsmc::adjoint_replica(self, p, adjoint(p, "poly:vx^4+vy^4+vz^4", pars, 1), 8, 0, 6, 0.2);
        EXPECT_NEAR(rp.J, r.J, 1e-12 * r.J) << scheme;
        for (std::size_t q = 0; q < 7; ++q)
            EXPECT_NEAR(rp.pathwise[q], r.pathwise[q], 1e-11 * std::abs(r.pathwise[0])) << scheme << " " << q;
        const auto m4 = adjoint(p, "moment:4", "temperature_x,drift_y", 1);
        const auto m4p = adjoint(p, "poly: vx^4 + vy^4 + vz^4 + 2*vx^2*vy^2 + 2*vx^2*vz^2 + 2*vy^2*vz^2",
                                 "temperature_x,drift_y", 1);
        const auto r4 = dsmc::adjoint_replica(self, p, m4, 9, 0, 6, 0.2),
                   r4p = dsmc::adjoint_replica(self, p, m4p, 9, 0, 6, 0.2);
        EXPECT_NEAR(r4p.J, r4.J, 1e-12 * r4.J) << scheme;
        EXPECT_NEAR(r4p.pathwise[0], r4.pathwise[0], 1e-11 * std::abs(r4.pathwise[0])) << scheme;
        EXPECT_NEAR(r4p.pathwise[1], r4.pathwise[1], 1e-11 * std::abs(r4.pathwise[0])) << scheme;
        const auto mx =
            dsmc::adjoint_replica(self, p, adjoint(p, "poly:vx", "drift_x,drift_y,temperature_x", 1), 10, 0, 6, 0.2);
        EXPECT_NEAR(mx.pathwise[0], 1.0, 1e-12) << scheme;
        EXPECT_NEAR(mx.pathwise[1], 0.0, 1e-12) << scheme;
    }
}

// VSS with omega = 1 (a constant sigma_T g: no score term) is smooth in alpha and in the initial
// state for fixed random numbers, so the adjoint equals a central difference with common random
// numbers per replica (h = 1e-5): d/d alpha through the post-collision direction, and d/dT_x through
// the full VSS collision Jacobian (the direction depends on g/|g|: direction_adjoint). (The VSS
// azimuth basis jumps across g_z = 0; no candidate of these replicas crosses it at this h.)
TEST(DsmcAdjoint, VssAlphaMatchesCommonRandomNumberDifferencesPerReplica) {
    const auto self = comm::Communicator::self();
    const double h = 1e-5, dt = 0.2;
    const int steps = 8;
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        auto opts = [&](double alpha, double Tx) {
            dsmc::Options o;
            o.scheme = scheme;
            o.kernel = "vss";
            o.omega = "1";
            o.d_ref = "0.4";
            o.alpha = std::to_string(alpha);
            o.init = "bimaxwellian";
            o.temperature = "1";
            o.temperature_x = std::to_string(Tx);
            o.particles = 2000;
            return o;
        };
        const auto p = dsmc::validate(opts(1.3, 2.0), dt);
        const auto a = adjoint(p, "component4", "alpha,temperature_x", 1);
        const auto r = dsmc::adjoint_replica(self, p, a, 31, 0, steps, dt);
        auto J = [&](double alpha, double Tx) {
            return dsmc::adjoint_replica(self, dsmc::validate(opts(alpha, Tx), dt), a, 31, 0, steps, dt).J;
        };
        const double fa = (J(1.3 + h, 2.0) - J(1.3 - h, 2.0)) / (2 * h);
        const double fx = (J(1.3, 2.0 + h) - J(1.3, 2.0 - h)) / (2 * h);
        std::printf("%s vss omega = 1: dJ/dalpha %.8f (difference %.8f), dJ/dT_x %.8f (difference %.8f)\n",
                    scheme.c_str(), r.pathwise[0], fa, r.pathwise[1], fx);
        EXPECT_NEAR(r.pathwise[0], fa, 1e-5 * std::abs(fx)) << scheme;
        EXPECT_NEAR(r.pathwise[1], fx, 1e-6 * std::abs(fx)) << scheme;
        EXPECT_GT(std::abs(r.pathwise[0]), 1e-3 * std::abs(fx)) << scheme; // a nonzero alpha gradient
    }
}

// BKW with a VSS Maxwell kernel (omega = 1, collision rate nu = n pi d^2 sqrt(2 k T_ref/m_r)/Gamma(3/2)):
// K(t) = 1 - (1 - K0) exp(-nu <sin^2 chi> t/4) (VERIFICATION.md), <sin^2 chi> = 4 alpha/((alpha+1)(alpha+2));
// Nanbu–Babovsky: 1 - K contracts by (1 - nu dt <sin^2 chi>/2)^(1/2) per step (its forward-Euler map
// of m4 - 15). J = <|v|^4> = T^2 m4(K): dJ/d alpha = T^2 (30 - 30K) dK/d alpha within 3 standard errors.
TEST(DsmcAdjoint, VssAlphaGradientMatchesBkwSolution) {
    const auto self = comm::Communicator::self();
    const double dt = 0.25, alpha = 1.0, d = 0.4;
    const int steps = 8;
    const double nu = 4.0 * std::sqrt(std::acos(-1.0)) * d * d; // n = 1, m = 1 (m_r = 1/2), T_ref = 1
    const double s = 4 * alpha / ((alpha + 1) * (alpha + 2)),
                 ds = 4 * (2 - alpha * alpha) / std::pow((alpha + 1) * (alpha + 2), 2);
    const double K0 = dsmc::bkw::K_of_time(dsmc::kBkwMinTime);
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        dsmc::Options o = bkw(20000, scheme, 1.0, dsmc::kBkwMinTime);
        o.kernel = "vss";
        o.omega = "1";
        o.d_ref = "0.4";
        o.alpha = "1";
        const auto p = dsmc::validate(o, dt);
        const auto a = adjoint(p, "moment:4", "alpha", 16);
        const auto r = dsmc::run_adjoint(self, p, a, 5, steps, dt);
        double rho, drho; // (1 - K)/(1 - K0) and its alpha derivative
        if (scheme == "ntc") {
            rho = std::exp(-nu * s * steps * dt / 4);
            drho = -rho * nu * steps * dt / 4 * ds;
        } else {
            const double x = 1 - nu * dt * s / 2;
            rho = std::pow(x, steps / 2.0);
            drho = steps / 2.0 * std::pow(x, steps / 2.0 - 1) * (-nu * dt / 2) * ds;
        }
        const double K = 1 - (1 - K0) * rho;
        const double dJ = (30 - 30 * K) * (-(1 - K0) * drho);
        std::printf("%s vss bkw: J %.4f +- %.4f (exact %.4f), dJ/dalpha %.4f +- %.4f (exact %.4f)\n", scheme.c_str(),
                    r.J, r.J_se, dsmc::bkw::m4(K), r.gradient[0], r.gradient_se[0], dJ);
        EXPECT_NEAR(r.J, dsmc::bkw::m4(K), 3 * r.J_se) << scheme;
        EXPECT_NEAR(r.gradient[0], dJ, 3 * r.gradient_se[0]) << scheme;
        EXPECT_LT(r.gradient_se[0], 0.3 * dJ) << scheme;
    }
}

// VSS with a velocity-dependent cross-section (omega = 0.95): dJ/d alpha is the pathwise term
// through the direction plus the score term (acceptance flips). Against central differences of the
// same replicas at alpha +- h and +- h/2 (common random numbers, NTC majorants held), paired per
// replica: the mean of (adjoint - difference) within 3 of its standard errors, and the h and h/2
// differences likewise (Richardson check). J = T_x from T_x = 4, T_y = T_z = 1/4 after about two
// collision times; alpha = 1.05, where <sin^2 chi> varies fastest (dT_x/d alpha about -0.13). Few
// particles and many replicas: the score term's noise per replica does not fall with N.
TEST(DsmcAdjoint, VssAlphaWithVhsCrossSectionMatchesCommonRandomNumberDifferences) {
    const auto self = comm::Communicator::self();
    const double dt = 0.25, alpha = 1.05, h = 0.05;
    const int steps = 8, R = 192;
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        auto opts = [&](double al) {
            dsmc::Options o;
            o.scheme = scheme;
            o.kernel = "vss";
            o.omega = "0.95";
            o.d_ref = "0.4";
            o.alpha = std::to_string(al);
            o.init = "bimaxwellian";
            o.temperature = "0.25";
            o.temperature_x = "4";
            o.particles = 500;
            return o;
        };
        const auto p = dsmc::validate(opts(alpha), dt);
        const auto a = adjoint(p, "temperature_x", "alpha", R);
        std::vector<dsmc::ReplicaResult> rs;
        std::vector<double> fd, fd2;
        for (int r = 0; r < R; ++r) {
            rs.push_back(dsmc::adjoint_replica(self, p, a, 404, r, steps, dt));
            const auto& maj = rs.back().majorants;
            auto J = [&](double al) {
                return dsmc::adjoint_replica(self, dsmc::validate(opts(al), dt), a, 404, r, steps, dt, maj).J;
            };
            fd.push_back((J(alpha + h) - J(alpha - h)) / (2 * h));
            fd2.push_back((J(alpha + h / 2) - J(alpha - h / 2)) / h);
        }
        double sumJ = 0.0;
        for (const auto& x : rs)
            sumJ += x.J;
        std::vector<double> adj, path, diff, rich;
        for (int r = 0; r < R; ++r) { // the replica's estimate as combine() forms it (leave-one-out baseline)
            const auto& x = rs[static_cast<std::size_t>(r)];
            adj.push_back(x.pathwise[0] + (x.J - (sumJ - x.J) / (R - 1)) * x.score[0]);
            path.push_back(x.pathwise[0]);
            diff.push_back(adj.back() - fd[static_cast<std::size_t>(r)]);
            rich.push_back(fd[static_cast<std::size_t>(r)] - fd2[static_cast<std::size_t>(r)]);
        }
        const Estimate g = mean_se(adj), pw = mean_se(path), f = mean_se(fd), d = mean_se(diff), q = mean_se(rich);
        std::printf("%s vss omega 0.95: dT_x/dalpha adjoint %.4f +- %.4f (pathwise alone %.4f), CRN difference "
                    "%.4f +- %.4f, paired difference %.4f +- %.4f, h - h/2 %.4f +- %.4f\n",
                    scheme.c_str(), g.mean, g.se, pw.mean, f.mean, f.se, d.mean, d.se, q.mean, q.se);
        EXPECT_NEAR(d.mean, 0.0, 3 * d.se) << scheme;
        EXPECT_NEAR(q.mean, 0.0, 3 * q.se) << scheme;
        EXPECT_GT(std::abs(f.mean), 3 * d.se) << scheme; // a gradient the check resolves
    }
}

// At P ranks (redistributed every 2 steps): the alpha term is summed over the ranks' collisions and
// still equals a common-random-number difference per replica (VSS with omega = 1, as above).
TEST(MpiDsmcAdjoint, VssAlphaMatchesCommonRandomNumberDifferences) {
    const auto world = comm::Communicator::world();
    const double h = 1e-5, dt = 0.2;
    for (const std::string scheme : {"ntc", "nanbu_babovsky"}) {
        auto opts = [&](double alpha) {
            dsmc::Options o;
            o.scheme = scheme;
            o.kernel = "vss";
            o.omega = "1";
            o.d_ref = "0.4";
            o.alpha = std::to_string(alpha);
            o.init = "bimaxwellian";
            o.temperature = "1";
            o.temperature_x = "2";
            o.particles = 2000;
            o.shuffle_every = 2;
            return o;
        };
        const auto a = adjoint(dsmc::validate(opts(1.3), dt), "component4", "alpha", 1);
        const auto r = dsmc::adjoint_replica(world, dsmc::validate(opts(1.3), dt), a, 37, 0, 8, dt);
        const double fa = (dsmc::adjoint_replica(world, dsmc::validate(opts(1.3 + h), dt), a, 37, 0, 8, dt).J -
                           dsmc::adjoint_replica(world, dsmc::validate(opts(1.3 - h), dt), a, 37, 0, 8, dt).J) /
                          (2 * h);
        EXPECT_NEAR(r.pathwise[0], fa, 1e-5 * std::abs(fa) + 1e-7) << scheme;
        EXPECT_GT(std::abs(fa), 1e-2) << scheme;
    }
}
