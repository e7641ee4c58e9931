#pragma once
// Reproducible global sums: per-chunk partial sums in global-id order (one sequential pass per
// chunk, chunks in parallel), gathered and added in chunk order. The result is bit-identical
// for any number of ranks and threads because chunks never straddle ranks
// (BlockDecomposition) and each chunk is summed in a fixed order.
#include <array>
#include <cstddef>
#include <vector>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/kokkos_types.hpp"

namespace kinflow::comm {

/// Sum K quantities over all particles: `f(i, acc)` adds particle i's (local index)
/// contributions to acc[0..K-1]. Every rank gets the same result.
template <int K, class F>
std::array<double, K> ordered_sum(const Communicator& comm, const BlockDecomposition& dec, const F& f) {
    const std::int64_t nc = dec.n_chunks_local();
    const std::int64_t chunk = dec.chunk;
    const std::int64_t n_local = dec.n_local();
    Kokkos::View<double**, Kokkos::LayoutRight, MemSpace> partial("kinflow::comm::ordered_sum", static_cast<std::size_t>(nc), K);
    Kokkos::parallel_for(
        "kinflow::comm::ordered_sum", Kokkos::RangePolicy<ExecSpace>(0, nc), KOKKOS_LAMBDA(const std::int64_t c) {
            double acc[K];
            for (int k = 0; k < K; ++k) acc[k] = 0.0;
            const std::int64_t b = c * chunk;
            const std::int64_t e = (b + chunk < n_local) ? b + chunk : n_local;
            for (std::int64_t i = b; i < e; ++i) f(static_cast<std::size_t>(i), acc);
            for (int k = 0; k < K; ++k) partial(c, k) = acc[k];
        });
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), partial);
    std::vector<double> local(host.data(), host.data() + nc * K);
    const std::vector<double> all = comm.size() > 1 ? comm.allgatherv(local) : local;
    std::array<double, K> out{};
    for (std::size_t c = 0; c < all.size() / K; ++c) {
        for (int k = 0; k < K; ++k) out[k] += all[c * K + k];
    }
    return out;
}

} // namespace kinflow::comm
