#pragma once
// Exact optimal assignment between two equal-size point clouds under squared Euclidean cost:
// the discrete W2 coupling. Used by metrics (exact W2) and by the learning objectives otfm and
// w2map (minibatch optimal transport).
#include <cstddef>
#include <vector>

namespace kinflow::metrics {

/// Points are row-major [n, dim]. Returns perm with perm[i] = index in `b` assigned to a[i],
/// minimizing sum_i |a_i - b_perm[i]|^2: auction algorithm with ε-scaling, optimal to within
/// 1e-9 of the largest pair cost (in practice identical to the exact solver below). dim <= 16;
/// n up to ~10^4 (O(n) memory, costs computed on the fly).
std::vector<int> exact_assignment(const double* a, const double* b, std::size_t n, int dim);
/// Single-precision convenience overload (minibatches from LibTorch are float32).
std::vector<int> exact_assignment(const float* a, const float* b, std::size_t n, int dim);

/// Reference solver (shortest augmenting paths, Jonker–Volgenant/Crouse): exact, O(n³) worst case.
std::vector<int> assignment_shortest_path(const double* a, const double* b, std::size_t n, int dim);

/// (1/n) sum_i |a_i - b_perm[i]|^2: the mean squared cost of an assignment.
double assignment_cost(const double* a, const double* b, const std::vector<int>& perm, int dim);

/// Exact W2² = (1/n) min_perm sum |a_i - b_perm(i)|^2.
double w2_squared_exact(const double* a, const double* b, std::size_t n, int dim);

} // namespace kinflow::metrics
