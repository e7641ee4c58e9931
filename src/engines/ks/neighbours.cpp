// Cell-list neighbour counts (collapse check and snapshot diagnostics of the mesh and
// particle–field solvers); see include/kinflow/engines/ks/detail/neighbours.hpp.
#include "kinflow/engines/ks/detail/neighbours.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Kokkos_Core.hpp>

#include "kinflow/core/error.hpp"

namespace kinflow::ks::detail {

CellList CellList::build(int dim, const std::vector<double>& all, std::int64_t n_global, double radius) {
    KINFLOW_REQUIRE(static_cast<std::int64_t>(all.size()) == dim * n_global, "ks cell list: bad position array");
    CellList cl;
    cl.dim = dim;
    const auto n = static_cast<std::size_t>(n_global);
    double hi[3] = {0, 0, 0};
    for (int a = 0; a < dim; ++a) {
        const auto b = all.begin() + static_cast<std::ptrdiff_t>(a * n);
        const auto mm = std::minmax_element(b, b + static_cast<std::ptrdiff_t>(n));
        cl.lo[a] = *mm.first;
        hi[a] = *mm.second;
        KINFLOW_REQUIRE(std::isfinite(cl.lo[a]) && std::isfinite(hi[a]), "ks: a particle position is not finite");
    }
    const double cap = 4.0 * static_cast<double>(n_global) + 64.0;
    double s = radius;
    std::int64_t total = 1;
    for (;;) {
        total = 1;
        for (int a = 0; a < dim; ++a) {
            cl.cells[a] = static_cast<std::int64_t>(std::floor((hi[a] - cl.lo[a]) / s)) + 1;
            total *= cl.cells[a];
        }
        if (static_cast<double>(total) <= cap)
            break;
        s *= 1.5;
    }
    cl.side = s;
    auto cell_of = [&](std::size_t j) {
        std::int64_t c = 0;
        for (int a = 0; a < dim; ++a) {
            auto q = static_cast<std::int64_t>((all[static_cast<std::size_t>(a) * n + j] - cl.lo[a]) / s);
            c = c * cl.cells[a] + std::min(q, cl.cells[a] - 1);
        }
        return c;
    };
    // counting sort by cell; within a cell, global-id order
    std::vector<std::int64_t> start(static_cast<std::size_t>(total) + 1, 0), cell(n);
    for (std::size_t j = 0; j < n; ++j) {
        cell[j] = cell_of(j);
        ++start[static_cast<std::size_t>(cell[j]) + 1];
    }
    for (std::size_t c = 0; c < static_cast<std::size_t>(total); ++c)
        start[c + 1] += start[c];
    cl.start = Kokkos::View<std::int64_t*, MemSpace>("kinflow::ks::cells_start", start.size());
    cl.position = Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>("kinflow::ks::cells_pos",
                                                                        static_cast<std::size_t>(dim), n);
    cl.id = Kokkos::View<std::int64_t*, MemSpace>("kinflow::ks::cells_id", n);
    auto h_start = Kokkos::create_mirror_view(cl.start);
    auto h_pos = Kokkos::create_mirror_view(cl.position);
    auto h_id = Kokkos::create_mirror_view(cl.id);
    std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
    for (std::size_t j = 0; j < n; ++j) {
        const auto slot = static_cast<std::size_t>(fill[static_cast<std::size_t>(cell[j])]++);
        for (int a = 0; a < dim; ++a)
            h_pos(a, slot) = all[static_cast<std::size_t>(a) * n + j];
        h_id(slot) = static_cast<std::int64_t>(j);
    }
    for (std::size_t c = 0; c < start.size(); ++c)
        h_start(c) = start[c];
    Kokkos::deep_copy(cl.start, h_start);
    Kokkos::deep_copy(cl.position, h_pos);
    Kokkos::deep_copy(cl.id, h_id);
    return cl;
}

void neighbour_counts(int dim, const std::vector<double>& all, std::int64_t n_global,
                      const Kokkos::View<const double**, Kokkos::LayoutRight, MemSpace>& target, std::int64_t n_local,
                      std::int64_t target_first, double delta, const ScalarView& count, const ScalarView& nearest2) {
    const CellList cl = CellList::build(dim, all, n_global, delta);
    auto d_start = cl.start;
    auto d_pos = cl.position;
    auto d_id = cl.id;
    const double lo[3] = {cl.lo[0], cl.lo[1], cl.lo[2]};
    const std::int64_t nc[3] = {cl.cells[0], cl.cells[1], cl.cells[2]};
    const double s = cl.side;
    const double d2 = delta * delta, inv_s = 1.0 / s, inf = std::numeric_limits<double>::infinity();
    const double lo0 = lo[0], lo1 = lo[1], lo2 = lo[2];
    const std::int64_t nc0 = nc[0], nc1 = nc[1], nc2 = nc[2];
    Kokkos::parallel_for(
        "kinflow::ks::neighbour_counts", Kokkos::RangePolicy<ExecSpace>(0, n_local),
        KOKKOS_LAMBDA(const std::int64_t i) {
            const double origin[3] = {lo0, lo1, lo2};
            const std::int64_t ncell[3] = {nc0, nc1, nc2};
            double x[3] = {0, 0, 0};
            std::int64_t from[3] = {0, 0, 0}, to[3] = {0, 0, 0};
            for (int a = 0; a < 3; ++a) {
                if (a < dim) {
                    x[a] = target(a, i);
                    std::int64_t q = static_cast<std::int64_t>((x[a] - origin[a]) * inv_s);
                    q = q < 0 ? 0 : (q > ncell[a] - 1 ? ncell[a] - 1 : q);
                    from[a] = q > 0 ? q - 1 : 0;
                    to[a] = q < ncell[a] - 1 ? q + 1 : q;
                }
            }
            const std::int64_t self = target_first + i;
            double cnt = 0.0, nn2 = inf;
            for (std::int64_t p = from[0]; p <= to[0]; ++p) {
                for (std::int64_t q = from[1]; q <= to[1]; ++q) {
                    for (std::int64_t r = from[2]; r <= to[2]; ++r) {
                        const std::int64_t id = dim == 2 ? p * ncell[1] + q : (p * ncell[1] + q) * ncell[2] + r;
                        for (std::int64_t k = d_start(id); k < d_start(id + 1); ++k) {
                            double r2 = 0.0;
                            for (int a = 0; a < dim; ++a) {
                                const double dx = x[a] - d_pos(a, k);
                                r2 += dx * dx;
                            }
                            cnt += r2 < d2 ? 1.0 : 0.0;
                            if (d_id(k) != self && r2 < nn2)
                                nn2 = r2;
                        }
                    }
                }
            }
            count(i) = cnt;
            nearest2(i) = nn2;
        });
}

} // namespace kinflow::ks::detail
