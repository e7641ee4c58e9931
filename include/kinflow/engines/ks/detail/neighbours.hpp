#pragma once
// Cell lists over every position (replicated on each rank) for the solvers without an all-pairs
// pass: the neighbour statistics of the mesh and particle–field solvers, and the mesh solver's
// short-range (P3M) correction.
#include <cstdint>
#include <vector>

#include "kinflow/core/kokkos_types.hpp"

namespace kinflow::ks::detail {

/// Positions sorted by cell: cells of side `side` (>= the requested radius) over the bounding box,
/// at most ~4N + 64 cells; within a cell in global-id order. Device views, copyable into kernels.
struct CellList {
    int dim = 2;
    double lo[3] = {0, 0, 0};
    double side = 1.0;
    std::int64_t cells[3] = {1, 1, 1};
    Kokkos::View<std::int64_t*, MemSpace> start;                    ///< [n_cells + 1]
    Kokkos::View<double**, Kokkos::LayoutRight, MemSpace> position; ///< [dim, N] sorted
    Kokkos::View<std::int64_t*, MemSpace> id;                       ///< [N] global id of each sorted row

    /// `all`: host [dim, N] SoA rows in global-id order; every pair closer than `radius` lies in
    /// neighbouring cells (3^dim cells searched).
    static CellList build(int dim, const std::vector<double>& all, std::int64_t n_global, double radius);
};

/// For the local targets i < n_local (target: [dim, >= n_local] SoA rows, global ids target_first + i)
/// against all N positions (`all`: host [dim, N] SoA rows in global-id order):
/// count(i) = #{j : |X_i - X_j| < delta}, i included, and nearest2(i) = min |X_i - X_j|^2 over
/// j != i within the searched cells; every j closer than delta is searched, so nearest2 is exact
/// when below delta^2 and is otherwise an upper bound or +inf. Deterministic for any thread count.
void neighbour_counts(int dim, const std::vector<double>& all, std::int64_t n_global,
                      const Kokkos::View<const double**, Kokkos::LayoutRight, MemSpace>& target, std::int64_t n_local,
                      std::int64_t target_first, double delta, const ScalarView& count, const ScalarView& nearest2);

} // namespace kinflow::ks::detail
