// [dsmc] deck validation: every bad value is an OptionError naming its key (and the value);
// per-species lists have 1 or n_species entries; fractions are positive and sum to 1; the
// Nanbu–Babovsky time-step bound for Maxwell molecules names run.dt and the bound.
#include <gtest/gtest.h>

#include <numeric>
#include <string>

#include "kinflow/core/error.hpp"
#include "kinflow/engines/dsmc/options.hpp"

using namespace kinflow;

namespace {

/// The key an OptionError names, or "" when validate() accepts.
std::string bad_key(const dsmc::Options& o, double dt = 0.1, std::string* message = nullptr) {
    try {
        dsmc::validate(o, dt);
    } catch (const OptionError& e) {
        if (message)
            *message = e.what();
        return e.key();
    }
    return "";
}

dsmc::Options mixture() {
    dsmc::Options o;
    o.species = "light, heavy";
    o.mass = "1, 100";
    o.fraction = "0.25, 0.75";
    o.temperature = "1, 2";
    o.particles = 1001;
    return o;
}

} // namespace

TEST(DsmcOptions, DefaultsAreValid) {
    const auto p = dsmc::validate(dsmc::Options{}, 0.1);
    EXPECT_EQ(p.n_species, 1);
    EXPECT_EQ(p.scheme, dsmc::Scheme::Ntc);
    EXPECT_EQ(p.kernel, dsmc::Kernel::Maxwell);
    EXPECT_EQ(p.count.at(0), p.particles);
    EXPECT_NEAR(p.bkw_t0, 6 * std::log(2.5), 1e-15);
}

TEST(DsmcOptions, PerSpeciesListsResolve) {
    auto o = mixture();
    o.kernel = "vss";
    o.d_ref = "1, 2";
    o.omega = "0.7";
    o.alpha = "1.4, 1.6";
    o.drift = "1, 2, 3";
    o.init = "two_beams, maxwellian";
    const auto p = dsmc::validate(o, 0.1);
    EXPECT_EQ(p.n_species, 2);
    EXPECT_EQ(p.species[1], "heavy");
    EXPECT_EQ(p.mass[1], 100.0);
    EXPECT_EQ(p.omega[1], 0.7);
    EXPECT_EQ(p.alpha[1], 1.6);
    EXPECT_EQ(p.drift[1][2], 3.0);
    EXPECT_EQ(p.init[0], dsmc::Init::TwoBeams);
    EXPECT_EQ(p.count[0] + p.count[1], 1001);
    EXPECT_EQ(p.count[0], 250); // largest remainder: 250.25 -> 250, 750.75 -> 751
    o.drift = "1,2,3, 4,5,6";
    EXPECT_EQ(dsmc::validate(o, 0.1).drift[1][0], 4.0);
    // per-axis temperatures: an empty key follows dsmc.temperature (and is marked as not given)
    o.temperature = "1, 2";
    o.temperature_y = "3, 4";
    const auto q = dsmc::validate(o, 0.1);
    EXPECT_EQ(q.temperature_x[1], 2.0);
    EXPECT_EQ(q.temperature_y[1], 4.0);
    EXPECT_EQ(q.temperature_z[0], 1.0);
    EXPECT_FALSE(q.axis_temperature_given[0]);
    EXPECT_TRUE(q.axis_temperature_given[1]);
    EXPECT_FALSE(q.axis_temperature_given[2]);
}

TEST(DsmcOptions, BadValuesNameTheirKey) {
    struct Case {
        std::string key;
        void (*edit)(dsmc::Options&);
    };
    const Case cases[] = {
        {"dsmc.scheme", [](dsmc::Options& o) { o.scheme = "bird"; }},
        {"dsmc.kernel", [](dsmc::Options& o) { o.kernel = "lennard_jones"; }},
        {"dsmc.units", [](dsmc::Options& o) { o.units = "cgs"; }},
        {"dsmc.mass", [](dsmc::Options& o) { o.mass = "1, 2, 3"; }},
        {"dsmc.mass", [](dsmc::Options& o) { o.mass = "1, -2"; }},
        {"dsmc.fraction", [](dsmc::Options& o) { o.fraction = "0.5, 0.6"; }},
        {"dsmc.fraction", [](dsmc::Options& o) { o.fraction = "1.5, -0.5"; }},
        {"dsmc.species", [](dsmc::Options& o) { o.species = "a, a"; }},
        {"dsmc.species", [](dsmc::Options& o) { o.species = "a b, c"; }},
        {"dsmc.species", [](dsmc::Options& o) { o.species = "a,b,c,d,e,f,g,h,i"; }},
        {"dsmc.temperature", [](dsmc::Options& o) { o.temperature = "1, -1"; }},
        {"dsmc.temperature_x", [](dsmc::Options& o) { o.temperature_x = "1, -1"; }},
        {"dsmc.temperature_y", [](dsmc::Options& o) { o.temperature_y = "1, 2, 3"; }},
        {"dsmc.temperature_z", [](dsmc::Options& o) { o.temperature_z = "x"; }},
        {"dsmc.drift", [](dsmc::Options& o) { o.drift = "1, 2"; }},
        {"dsmc.init", [](dsmc::Options& o) { o.init = "maxwellian, gaussian"; }},
        {"dsmc.init", [](dsmc::Options& o) { o.init = "file, maxwellian"; }},
        {"dsmc.init_file", [](dsmc::Options& o) { o.init = "file"; }},
        {"dsmc.bkw_t0", [](dsmc::Options& o) { o.bkw_t0 = 1.0; }},
        {"dsmc.particles", [](dsmc::Options& o) { o.particles = 1; }},
        {"dsmc.particles",
         [](dsmc::Options& o) {
             o.particles = 10;
             o.fraction = "0.01, 0.99";
         }}, // no light particle
        {"dsmc.shuffle_every", [](dsmc::Options& o) { o.shuffle_every = 0; }},
        {"dsmc.collision_rate", [](dsmc::Options& o) { o.collision_rate = 0; }},
        {"dsmc.number_density", [](dsmc::Options& o) { o.number_density = -1; }},
        {"dsmc.omega",
         [](dsmc::Options& o) {
             o.kernel = "vhs";
             o.omega = "0.3";
         }},
        {"dsmc.alpha",
         [](dsmc::Options& o) {
             o.kernel = "vss";
             o.alpha = "3";
         }},
        {"dsmc.d_ref",
         [](dsmc::Options& o) {
             o.kernel = "hard_sphere";
             o.d_ref = "0";
         }},
        {"dsmc.T_ref",
         [](dsmc::Options& o) {
             o.kernel = "vhs";
             o.T_ref = 0;
         }},
    };
    for (const auto& c : cases) {
        auto o = mixture();
        c.edit(o);
        EXPECT_EQ(bad_key(o), c.key);
    }
    // Keys a kernel does not use are not checked.
    auto o = mixture();
    o.omega = "7";
    EXPECT_EQ(bad_key(o), "");
}

TEST(DsmcOptions, NanbuBabovskyMaxwellTimeStepBound) {
    auto o = mixture();
    o.scheme = "nanbu_babovsky";
    o.collision_rate = 4.0;
    EXPECT_EQ(bad_key(o, 0.25), ""); // P = nu dt = 1 is allowed
    std::string msg;
    EXPECT_EQ(bad_key(o, 0.3, &msg), "run.dt");
    EXPECT_NE(msg.find("0.3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("dt <= 1/collision_rate = 0.25"), std::string::npos) << msg;
    o.scheme = "ntc"; // no bound for NTC
    EXPECT_EQ(bad_key(o, 3.0), "");
}

TEST(DsmcOptions, SplitCountsAddUp) {
    const std::vector<std::string> names{"a", "b", "c"};
    for (std::int64_t n : {3, 10, 1000, 99999}) {
        const auto c = dsmc::split_counts(n, {1.0 / 3, 1.0 / 3, 1.0 / 3}, names);
        EXPECT_EQ(std::accumulate(c.begin(), c.end(), std::int64_t{0}), n);
        for (auto x : c)
            EXPECT_LE(std::abs(static_cast<double>(x) - n / 3.0), 1.0);
    }
}
