#pragma once
// Block decomposition of global particle ids over ranks, aligned to reduction chunks so that
// chunked sums (comm/reduce.hpp) are the same whatever the rank count.
#include <cstdint>

namespace kinflow::comm {

/// Chunk length used for reproducible sums; depends on the global count only.
std::int64_t reduction_chunk(std::int64_t n_global);

/// Contiguous ids [begin, end) of one rank; whole chunks per rank (the last chunk may be short).
struct BlockDecomposition {
    std::int64_t n_global = 0;
    std::int64_t chunk = 1;
    std::int64_t begin = 0, end = 0;             ///< owned global ids
    std::int64_t chunk_begin = 0, chunk_end = 0; ///< owned chunk indices
    std::int64_t n_chunks_global = 0;

    static BlockDecomposition make(std::int64_t n_global, int nranks, int rank);
    std::int64_t n_local() const { return end - begin; }
    std::int64_t n_chunks_local() const { return chunk_end - chunk_begin; }
};

} // namespace kinflow::comm
