// Distribution metrics against exact results: brute-force assignment, the 1D sorted-pairing
// identity, Gaussian closed form identities, Sinkhorn → exact as ε → 0, sliced ≤ exact W2,
// the 1D energy-distance/CDF identity, and energy distance >= 0 with hand-computed tiny cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kinflow/metrics/assignment.hpp"
#include "kinflow/metrics/distances.hpp"

using namespace kinflow::metrics;

namespace {
std::vector<double> random_points(std::size_t n, int dim, std::uint64_t seed, double shift = 0.0) {
    std::mt19937_64 g(seed);
    std::normal_distribution<double> z(0.0, 1.0);
    std::vector<double> x(n * static_cast<std::size_t>(dim));
    for (auto& v : x) v = z(g) + shift;
    return x;
}

double cost_of(const std::vector<double>& a, const std::vector<double>& b, const std::vector<int>& perm, int dim) {
    double s = 0;
    for (std::size_t i = 0; i < perm.size(); ++i)
        for (int k = 0; k < dim; ++k) s += std::pow(a[i * dim + k] - b[static_cast<std::size_t>(perm[i]) * dim + k], 2);
    return s;
}
} // namespace

TEST(Assignment, MatchesBruteForceOnTinySets) {
    for (int dim = 1; dim <= 3; ++dim) {
        for (std::size_t n = 1; n <= 7; ++n) {
            const auto a = random_points(n, dim, 10 * n + dim), b = random_points(n, dim, 1000 + n, 0.5);
            std::vector<int> perm(n);
            std::iota(perm.begin(), perm.end(), 0);
            double best = INFINITY;
            do best = std::min(best, cost_of(a, b, perm, dim));
            while (std::next_permutation(perm.begin(), perm.end()));
            for (const auto& got : {exact_assignment(a.data(), b.data(), n, dim), assignment_shortest_path(a.data(), b.data(), n, dim)}) {
                std::vector<int> sorted = got;
                std::sort(sorted.begin(), sorted.end());
                for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], static_cast<int>(i)); // a permutation
                EXPECT_NEAR(cost_of(a, b, got, dim), best, 1e-9 * (1 + best)) << "n=" << n << " dim=" << dim;
            }
        }
    }
}

TEST(Assignment, OneDimensionalIsSortedPairing) {
    const std::size_t n = 600;
    const auto a = random_points(n, 1, 1), b = random_points(n, 1, 2, 1.0);
    auto sa = a, sb = b;
    std::sort(sa.begin(), sa.end());
    std::sort(sb.begin(), sb.end());
    double sorted_cost = 0;
    for (std::size_t i = 0; i < n; ++i) sorted_cost += (sa[i] - sb[i]) * (sa[i] - sb[i]);
    EXPECT_NEAR(w2_squared_exact(a.data(), b.data(), n, 1), sorted_cost / n, 1e-12);
    EXPECT_NEAR(w2_squared_1d(a, b), sorted_cost / n, 1e-12);
    // float overload gives an optimal plan too (to float round-off)
    std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end());
    EXPECT_NEAR(cost_of(a, b, exact_assignment(af.data(), bf.data(), n, 1), 1) / n, sorted_cost / n, 1e-5);
}

TEST(Assignment, AuctionAgreesWithShortestAugmentingPaths) {
    // Two independent algorithms on the same clouds: costs equal to 1e-9 of the largest cost.
    for (int dim : {2, 3}) {
        const std::size_t n = 400;
        const auto a = random_points(n, dim, 20 + dim), b = random_points(n, dim, 30 + dim, 0.6);
        const double auction = cost_of(a, b, exact_assignment(a.data(), b.data(), n, dim), dim);
        const double sap = cost_of(a, b, assignment_shortest_path(a.data(), b.data(), n, dim), dim);
        EXPECT_NEAR(auction, sap, 1e-9 * 100.0) << dim;
    }
}

TEST(Assignment, OptimalPlanBeatsRandomAndIdentityPlans) {
    const std::size_t n = 300;
    const int dim = 2;
    const auto a = random_points(n, dim, 3), b = random_points(n, dim, 4, 0.7);
    const double w = w2_squared_exact(a.data(), b.data(), n, dim);
    std::vector<int> id(n);
    std::iota(id.begin(), id.end(), 0);
    EXPECT_LT(w, cost_of(a, b, id, dim) / n);
    // Local optimality: no pair swap improves the plan (a necessary condition, checked exhaustively).
    const auto perm = exact_assignment(a.data(), b.data(), n, dim);
    const double base = cost_of(a, b, perm, dim);
    for (std::size_t i = 0; i < n; i += 7) {
        for (std::size_t j = i + 1; j < n; j += 5) {
            auto p = perm;
            std::swap(p[i], p[j]);
            ASSERT_GE(cost_of(a, b, p, dim), base - 1e-9);
        }
    }
}

TEST(Gaussian, ClosedFormIdentities) {
    // Commuting (diagonal) covariances: |Δm|² + Σ (√λ1 − √λ2)².
    const std::vector<double> m1{1, 2}, m2{-1, 0.5}, d1{4, 0, 0, 1}, d2{1, 0, 0, 9};
    EXPECT_NEAR(gaussian_w2_squared(m1, d1, m2, d2, 2), 4 + 2.25 + 1 + 4, 1e-12);
    // General covariances: symmetric in its arguments although computed asymmetrically, and
    // sqrtm_psd(S)² = S.
    const std::vector<double> s1{2.0, 0.6, 0.1, 0.6, 1.0, -0.3, 0.1, -0.3, 0.5};
    const std::vector<double> s2{1.0, -0.4, 0.2, -0.4, 3.0, 0.5, 0.2, 0.5, 0.8};
    const std::vector<double> a{0, 0, 0}, b{0.3, -0.2, 1.0};
    EXPECT_NEAR(gaussian_w2_squared(a, s1, b, s2, 3), gaussian_w2_squared(b, s2, a, s1, 3), 1e-12);
    const auto r = sqrtm_psd(s1, 3);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            double v = 0;
            for (int k = 0; k < 3; ++k) v += r[i * 3 + k] * r[k * 3 + j];
            EXPECT_NEAR(v, s1[i * 3 + j], 1e-12);
        }
    EXPECT_NEAR(gaussian_w2_squared(a, s1, a, s1, 3), 0.0, 1e-12);
}

TEST(Sinkhorn, ConvergesToExactFromAboveAsEpsilonShrinks) {
    const std::size_t n = 60;
    const int dim = 2;
    const auto a = random_points(n, dim, 5), b = random_points(n, dim, 6, 1.0);
    const double exact = w2_squared_exact(a.data(), b.data(), n, dim);
    const Cloud ca{a.data(), n, dim}, cb{b.data(), n, dim};
    double prev_gap = INFINITY;
    for (double eps : {1.0, 0.3, 0.1, 0.03, 0.01}) {
        const auto r = sinkhorn_w2_squared(ca, cb, eps, 20000, 1e-10);
        // Marginals to 1e-5 (L1) bound the cost error of the plan by 1e-5 × max cost (< 1e-3 here).
        EXPECT_LT(r.marginal_error, 1e-5) << eps;
        const double gap = r.cost - exact;
        EXPECT_GT(gap, -1e-3) << "eps=" << eps; // biased upward
        EXPECT_LT(gap, prev_gap) << "eps=" << eps;
        prev_gap = gap;
    }
    EXPECT_LT(prev_gap, 0.01 * exact);
    // The dense (scaling + absorption) and the pure log-domain iterations solve the same problem.
    const auto dense = sinkhorn_w2_squared(ca, cb, 0.1, 20000, 1e-10);
    const auto logd = sinkhorn_w2_squared(ca, cb, 0.1, 20000, 1e-10, 0);
    EXPECT_NEAR(dense.cost, logd.cost, 1e-6 * dense.cost);
}

TEST(Sliced, BoundedByExactAndEqualToOneDimensionalW2In1D) {
    const std::size_t n = 400;
    const auto a = random_points(n, 3, 7), b = random_points(n, 3, 8, 0.5);
    const Cloud ca{a.data(), n, 3}, cb{b.data(), n, 3};
    const double sliced = sliced_w2_squared(ca, cb, 100, 1);
    EXPECT_LE(sliced, w2_squared_exact(a.data(), b.data(), n, 3));
    EXPECT_GT(sliced, 0.0);
    const auto x = random_points(n, 1, 9), y = random_points(300, 1, 10, 2.0);
    EXPECT_NEAR(sliced_w2_squared(Cloud{x.data(), n, 1}, Cloud{y.data(), 300, 1}, 3, 2), w2_squared_1d(x, y), 1e-12);
    // Unequal sizes: a sample against itself duplicated is at distance 0.
    std::vector<double> xx = x;
    xx.insert(xx.end(), x.begin(), x.end());
    EXPECT_NEAR(w2_squared_1d(x, xx), 0.0, 1e-15);
}

TEST(Energy, OneDimensionalVStatisticIsTwiceIntegratedSquaredCdfGap) {
    const auto x = random_points(150, 1, 11), y = random_points(110, 1, 12, 0.8);
    // 2 ∫ (F_x − F_y)² dz over the merged sorted grid.
    std::vector<double> grid = x;
    grid.insert(grid.end(), y.begin(), y.end());
    std::sort(grid.begin(), grid.end());
    auto cdf = [](const std::vector<double>& s, double z) {
        return static_cast<double>(std::count_if(s.begin(), s.end(), [z](double v) { return v <= z; })) / s.size();
    };
    double integral = 0;
    for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
        const double d = cdf(x, grid[k]) - cdf(y, grid[k]);
        integral += d * d * (grid[k + 1] - grid[k]);
    }
    EXPECT_NEAR(energy_distance(Cloud{x.data(), 150, 1}, Cloud{y.data(), 110, 1}, false), 2 * integral, 1e-10);
    EXPECT_GT(energy_distance(Cloud{x.data(), 150, 1}, Cloud{y.data(), 110, 1}, true), 0.0);
}

namespace {
/// 2E|X−Y| − E|X−X'| − E|Y−Y'| over all ordered pairs, the within-sample means over i != j (U) or
/// over all n² pairs with i = j included (V); not clamped.
double energy_over_ordered_pairs(const std::vector<double>& x, const std::vector<double>& y, int dim, bool unbiased) {
    const std::size_t n = x.size() / dim, m = y.size() / dim;
    auto mean = [dim, unbiased](const std::vector<double>& p, std::size_t np, const std::vector<double>& q,
                                std::size_t nq, bool same) {
        double s = 0;
        for (std::size_t i = 0; i < np; ++i)
            for (std::size_t j = 0; j < nq; ++j) {
                double d2 = 0;
                for (int k = 0; k < dim; ++k) d2 += std::pow(p[i * dim + k] - q[j * dim + k], 2);
                s += std::sqrt(d2);
            }
        return s / (same && unbiased ? static_cast<double>(np * (np - 1)) : static_cast<double>(np * nq));
    };
    return 2 * mean(x, n, y, m, false) - mean(x, n, x, n, true) - mean(y, m, y, m, true);
}
} // namespace

TEST(Energy, NonNegativeForTwoSmallSamplesOfOneLaw) {
    // n = m = 4 points of one 2D Gaussian: the U-statistic is negative for a good share of seeds.
    int negative_u = 0;
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        const auto x = random_points(4, 2, 2 * seed + 1), y = random_points(4, 2, 2 * seed + 2);
        const Cloud a{x.data(), 4, 2}, b{y.data(), 4, 2};
        const double u = energy_over_ordered_pairs(x, y, 2, true), v = energy_over_ordered_pairs(x, y, 2, false);
        if (u < 0) ++negative_u;
        EXPECT_GE(energy_distance(a, b), 0.0) << "seed " << seed;
        EXPECT_GE(energy_distance(a, b, true), 0.0) << "seed " << seed;
        EXPECT_NEAR(energy_distance(a, b), v, 1e-12) << "seed " << seed;
        EXPECT_NEAR(energy_distance(a, b, true), std::max(u, 0.0), 1e-12) << "seed " << seed;
    }
    EXPECT_GT(negative_u, 10); // the case the clamp and the V default exist for does occur
}

TEST(Energy, TinyExamplesByHand) {
    // 1D a = {0, 1}, b = {0, 2}: E|X−Y| = (0 + 2 + 1 + 1)/4 = 1; V: E|X−X'| = 2·1/4, E|Y−Y'| = 2·2/4,
    // so 2 − 0.5 − 1 = 0.5 (= 2∫(F_a − F_b)² = 2 · 0.25); U: 2 − 1 − 2 = −1, clamped to 0.
    const std::vector<double> a1{0.0, 1.0}, b1{0.0, 2.0};
    EXPECT_NEAR(energy_distance(Cloud{a1.data(), 2, 1}, Cloud{b1.data(), 2, 1}), 0.5, 1e-15);
    EXPECT_EQ(energy_distance(Cloud{a1.data(), 2, 1}, Cloud{b1.data(), 2, 1}, true), 0.0);
    // 2D a = {(0,0), (3,4)}, b = {(0,4)}: E|X−Y| = (4 + 3)/2 = 3.5, |a1 − a2| = 5, one point in b;
    // V: 7 − 2·5/4 = 4.5; U: 7 − 5 = 2.
    const std::vector<double> a2{0.0, 0.0, 3.0, 4.0}, b2{0.0, 4.0};
    EXPECT_NEAR(energy_distance(Cloud{a2.data(), 2, 2}, Cloud{b2.data(), 1, 2}), 4.5, 1e-14);
    EXPECT_NEAR(energy_distance(Cloud{a2.data(), 2, 2}, Cloud{b2.data(), 1, 2}, true), 2.0, 1e-14);
}
