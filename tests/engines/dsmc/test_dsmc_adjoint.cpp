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

#include <cmath>
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
    EXPECT_EQ(key_of(p, "moment:4", "temperature_y", 2), "adjoint.parameters");
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
    EXPECT_EQ(key_of(dsmc::validate(hs, 0.1), "moment:4", "temperature", 2), "dsmc.alpha");
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
