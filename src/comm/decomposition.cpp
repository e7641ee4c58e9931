#include "kinflow/comm/decomposition.hpp"

#include <algorithm>

#include "kinflow/core/error.hpp"

namespace kinflow::comm {

std::int64_t reduction_chunk(std::int64_t n_global) {
    // About 64 chunks or more, between 16 and 4096 particles each, a power of two.
    const std::int64_t target = std::clamp<std::int64_t>(n_global / 64, 16, 4096);
    std::int64_t c = 16;
    while (c * 2 <= target) c *= 2;
    return c;
}

BlockDecomposition BlockDecomposition::make(std::int64_t n_global, int nranks, int rank) {
    KINFLOW_REQUIRE(n_global >= 0 && nranks > 0 && rank >= 0 && rank < nranks, "bad decomposition arguments");
    BlockDecomposition d;
    d.n_global = n_global;
    d.chunk = reduction_chunk(n_global);
    d.n_chunks_global = (n_global + d.chunk - 1) / d.chunk;
    d.chunk_begin = d.n_chunks_global * rank / nranks;
    d.chunk_end = d.n_chunks_global * (rank + 1) / nranks;
    d.begin = std::min(n_global, d.chunk_begin * d.chunk);
    d.end = std::min(n_global, d.chunk_end * d.chunk);
    return d;
}

} // namespace kinflow::comm
