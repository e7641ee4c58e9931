// Counter-based RNG: determinism, independence of streams, and the distributions' moments.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kinflow/core/rng.hpp"

using kinflow::CounterRng;
using kinflow::RngPurpose;

TEST(Rng, SameCounterSameNumbersDifferentPurposeDifferent) {
    const CounterRng a(42, RngPurpose::Noise), b(42, RngPurpose::Noise), c(42, RngPurpose::InitPosition), d(43, RngPurpose::Noise);
    double x[4], y[4], z[4], w[4];
    a.normal4(7, 123456789012LL, 0, x);
    b.normal4(7, 123456789012LL, 0, y);
    c.normal4(7, 123456789012LL, 0, z);
    d.normal4(7, 123456789012LL, 0, w);
    for (int k = 0; k < 4; ++k) {
        EXPECT_EQ(x[k], y[k]);
        EXPECT_NE(x[k], z[k]);
        EXPECT_NE(x[k], w[k]);
    }
    // Neighbouring steps, ids (also above 2^32) and blocks give different words.
    const auto r0 = a.raw(7, 5, 0), r1 = a.raw(8, 5, 0), r2 = a.raw(7, 6, 0), r3 = a.raw(7, 5, 1), r4 = a.raw(7, 5 + (1LL << 32), 0);
    EXPECT_NE(r0.v[0], r1.v[0]);
    EXPECT_NE(r0.v[0], r2.v[0]);
    EXPECT_NE(r0.v[0], r3.v[0]);
    EXPECT_NE(r0.v[0], r4.v[0]);
}

TEST(Rng, UniformMomentsWithinFourStandardErrors) {
    const CounterRng rng(1, RngPurpose::User);
    const int n = 400000; // 4 numbers per call
    double s1 = 0, s2 = 0, lo = 1, hi = 0;
    for (int i = 0; i < n / 4; ++i) {
        double u[4];
        rng.uniform4(3, static_cast<std::uint64_t>(i), 0, u);
        for (double v : u) {
            s1 += v;
            s2 += v * v;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    }
    const double mean = s1 / n, m2 = s2 / n;
    EXPECT_NEAR(mean, 0.5, 4 * std::sqrt(1.0 / 12 / n));
    EXPECT_NEAR(m2, 1.0 / 3, 4 * std::sqrt((1.0 / 5 - 1.0 / 9) / n));
    EXPECT_GT(lo, 0.0);
    EXPECT_LT(hi, 1.0);
}

TEST(Rng, NormalMomentsWithinFourStandardErrors) {
    const CounterRng rng(2, RngPurpose::User);
    const int n = 800000;
    double m[5] = {0, 0, 0, 0, 0};
    double cross = 0; // correlation of the two members of a Box–Muller pair
    for (int i = 0; i < n / 4; ++i) {
        double z[4];
        rng.normal4(0, static_cast<std::uint64_t>(i), 1, z);
        cross += z[0] * z[1] + z[2] * z[3];
        for (double v : z) {
            double p = 1;
            for (int k = 1; k <= 4; ++k) {
                p *= v;
                m[k] += p / n;
            }
        }
    }
    // Standard errors from the normal moments: Var(z)=1, Var(z^2)=2, Var(z^3)=15, Var(z^4)=96.
    EXPECT_NEAR(m[1], 0.0, 4 * std::sqrt(1.0 / n));
    EXPECT_NEAR(m[2], 1.0, 4 * std::sqrt(2.0 / n));
    EXPECT_NEAR(m[3], 0.0, 4 * std::sqrt(15.0 / n));
    EXPECT_NEAR(m[4], 3.0, 4 * std::sqrt(96.0 / n));
    EXPECT_NEAR(cross / (n / 2), 0.0, 4 * std::sqrt(1.0 / (n / 2)));
}

TEST(Rng, NormalTailProbabilityMatchesErf) {
    // P(|z| > 2) = erfc(2/sqrt 2) = 0.0455...
    const CounterRng rng(3, RngPurpose::User);
    const int n = 400000;
    int count = 0;
    for (int i = 0; i < n / 4; ++i) {
        double z[4];
        rng.normal4(1, static_cast<std::uint64_t>(i), 0, z);
        for (double v : z) count += std::fabs(v) > 2.0;
    }
    const double p = std::erfc(2.0 / std::sqrt(2.0));
    EXPECT_NEAR(static_cast<double>(count) / n, p, 4 * std::sqrt(p * (1 - p) / n));
}
