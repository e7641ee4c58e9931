#pragma once
// Distances between particle clouds (row-major [n, dim] arrays of doubles) and between Gaussians:
// entropic (Sinkhorn) W2, sliced W2, energy distance, moment errors, Gaussian closed form.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kinflow::metrics {

/// A point cloud view: n rows of `dim` doubles.
struct Cloud {
    const double* data;
    std::size_t n;
    int dim;
    double at(std::size_t i, int k) const { return data[i * static_cast<std::size_t>(dim) + static_cast<std::size_t>(k)]; }
};

struct SinkhornResult {
    double cost = 0;           ///< <P, C>, the transport cost of the entropic plan (>= exact W2² up to marginal error)
    double marginal_error = 0; ///< L1 error of the row marginal at exit
    int iterations = 0;
};

/// Entropic OT (Cuturi 2013) between uniform weights on a and b with cost |x - y|² and
/// regularisation eps (absolute, in cost units), with ε-scaling. Up to `dense_limit` = n·m it
/// keeps the cost matrix and iterates stabilized scalings with absorption into log-domain
/// potentials (Schmitzer 2019, Alg. 2); beyond, a pure log-domain iteration in O(n + m) memory.
/// `max_iter` and `tol` (L1 error of the marginals) apply per ε level.
SinkhornResult sinkhorn_w2_squared(const Cloud& a, const Cloud& b, double eps, int max_iter = 2000, double tol = 1e-9,
                                   std::size_t dense_limit = 25'000'000);

/// W2² between the 1D empirical measures of x and y (any sizes): ∫|F⁻¹ - G⁻¹|² exactly.
double w2_squared_1d(std::vector<double> x, std::vector<double> y);

/// Sliced W2² (Rabin et al. 2011): mean over `projections` random directions of the 1D W2².
double sliced_w2_squared(const Cloud& a, const Cloud& b, int projections, std::uint64_t seed);

/// Energy distance (Székely & Rizzo 2013) 2E|X−Y| − E|X−X'| − E|Y−Y'| between two samples, never
/// negative. Default: the V-statistic, the energy distance between the two empirical measures (a
/// squared metric on measures, so >= 0 and 0 only for equal samples; biased upward by O(1/n)); in 1D
/// it equals 2∫(F_a − F_b)² dx. With `unbiased`: U-statistics for the within-sample terms, unbiased
/// for the population distance but negative with positive probability when the two laws agree;
/// clamped at 0, which biases it upward near 0.
double energy_distance(const Cloud& a, const Cloud& b, bool unbiased = false);

/// Sample mean and (population) covariance.
void mean_cov(const Cloud& a, std::vector<double>& mean, std::vector<double>& cov);

/// W2² between N(m1, S1) and N(m2, S2): |m1−m2|² + tr(S1 + S2 − 2 (S2^{1/2} S1 S2^{1/2})^{1/2}).
double gaussian_w2_squared(const std::vector<double>& m1, const std::vector<double>& s1, const std::vector<double>& m2,
                           const std::vector<double>& s2, int dim);

/// Symmetric positive semi-definite square root (Jacobi eigen-decomposition), row-major dim×dim.
std::vector<double> sqrtm_psd(const std::vector<double>& s, int dim);

} // namespace kinflow::metrics
