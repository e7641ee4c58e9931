#pragma once
// Short-range neighbour statistics for the solvers without an all-pairs pass (mesh, particle–field):
// a cell list over every position (replicated on each rank), cells of side s >= delta.
#include <cstdint>
#include <vector>

#include "kinflow/core/kokkos_types.hpp"

namespace kinflow::ks::detail {

/// For the local targets i < n_local (target: [dim, >= n_local] SoA rows, global ids target_first + i)
/// against all N positions (`all`: host [dim, N] SoA rows in global-id order):
/// count(i) = #{j : |X_i - X_j| < delta}, i included, and nearest2(i) = min |X_i - X_j|^2 over
/// j != i within the searched cells; every j closer than delta is searched, so nearest2 is exact
/// when below delta^2 and is otherwise an upper bound or +inf. Deterministic for any thread count.
void neighbour_counts(int dim, const std::vector<double>& all, std::int64_t n_global,
                      const Kokkos::View<const double**, Kokkos::LayoutRight, MemSpace>& target, std::int64_t n_local,
                      std::int64_t target_first, double delta, const ScalarView& count, const ScalarView& nearest2);

} // namespace kinflow::ks::detail
