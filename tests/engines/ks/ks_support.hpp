// Helpers shared by the Keller–Segel test files (test_ks.cpp, test_ks_mesh.cpp).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
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

} // namespace kinflow::ks_test
