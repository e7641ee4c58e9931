// Helpers shared by the Keller–Segel test files (test_ks.cpp, test_ks_mesh.cpp).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/engines/ks/ks_engine.hpp"
#include "kinflow/engines/ks/options.hpp"

namespace kinflow::ks_test {

/// 2D/3D Gaussian blobs, M = 4 pi (half the 2D critical mass), chi = mu = 1, delta = 0.05, no
/// collapse stop.
inline ks::Params base_params(int dim, std::int64_t n) {
    ks::Params p;
    p.dim = dim;
    p.particles = n;
    p.mass = 4.0 * kPi;
    p.chi = 1.0;
    p.mu = 1.0;
    p.delta = 0.05;
    p.init_std = 1.0;
    p.blowup_fraction = 0.0;
    return p;
}

/// The diagnostic called `name` (a test failure, and NaN, when absent).
inline double diag(const Diagnostics& d, const std::string& name) {
    for (const auto& kv : d) {
        if (kv.first == name)
            return kv.second;
    }
    ADD_FAILURE() << "no diagnostic " << name;
    return NAN;
}

/// A [rows, cols] view copied to a host vector (row-major as stored).
template <class View> std::vector<double> host_rows(const View& v) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
    return std::vector<double>(h.data(), h.data() + h.size());
}

inline std::vector<double> host_positions(const ParticleSet& p) { return host_rows(p.position); }

/// m2 = (M/N) sum |X_i|^2 of host positions [N, dim].
inline double host_m2(const std::vector<double>& x, double mass, int dim) {
    double s = 0.0;
    for (double v : x)
        s += v * v;
    return mass / static_cast<double>(x.size() / static_cast<std::size_t>(dim)) * s;
}

/// Set every position from a host array [n_local, dim].
inline void set_positions(ParticleSet& p, const std::vector<double>& x) {
    auto h = Kokkos::create_mirror_view(p.position);
    ASSERT_EQ(h.size(), x.size());
    std::memcpy(h.data(), x.data(), x.size() * sizeof(double));
    Kokkos::deep_copy(p.position, h);
}

/// Expect an OptionError naming `key` whose message contains every needle.
inline void expect_option_error(const ks::Options& o, double dt, const std::string& key,
                                std::vector<std::string> needles = {}) {
    try {
        ks::validate(o, dt);
        ADD_FAILURE() << "no error for " << key;
    } catch (const OptionError& e) {
        EXPECT_EQ(e.key(), key) << e.what();
        for (const auto& s : needles)
            EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << s << " in: " << e.what();
    }
}

/// The 2D virial law d m2/dt = 4 mu M (1 - chi M/(8 pi mu)): run `p` (2D, mass p.mass) to T
/// with steps of at most dt and compare the slope (m2(T) - m2(0))/T with it within 4 standard
/// errors of the martingale part, Var = 8 mu (M/N) int m2 dt (the simulated time is summed from
/// the steps taken, so adaptive_dt may shorten them).
inline void expect_second_moment_slope_2d(const ks::Params& p, double T, double dt, const char* label) {
    const double mass = p.mass;
    ks::KsEngine engine(comm::Communicator::self(), p, 31 + static_cast<int>(mass));
    ParticleSet ps;
    engine.init(ps);
    const double m2_0 = host_m2(host_positions(ps), mass, 2);
    double t = 0, integral = 0, m2 = m2_0;
    int steps = 0;
    while (t < T - 1e-12) {
        const auto r = engine.step(ps, steps++, std::min(dt, T - t));
        ASSERT_TRUE(r.advanced);
        ASSERT_LE(r.dt, dt);
        const double m2n = host_m2(host_positions(ps), mass, 2);
        integral += 0.5 * (m2 + m2n) * r.dt;
        m2 = m2n;
        t += r.dt;
    }
    const double slope = (m2 - m2_0) / t;
    const double exact = 4 * p.mu * mass * (1 - p.chi * mass / (8 * kPi * p.mu));
    const double se = std::sqrt(8 * p.mu * mass / static_cast<double>(p.particles) * integral) / t;
    std::printf("  [%s] M = %.4g: slope %.4g, exact %.4g, se %.3g, %d steps\n", label, mass, slope, exact, se, steps);
    EXPECT_NEAR(slope, exact, 4 * se) << label << " M = " << mass;
    EXPECT_LT(4 * se, 0.3 * std::fabs(exact));
}

} // namespace kinflow::ks_test
