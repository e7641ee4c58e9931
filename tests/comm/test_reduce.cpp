// Decomposition and reproducible sums: the same bits for any rank count.
#include <gtest/gtest.h>

#include <cmath>

#include "kinflow/comm/reduce.hpp"

using namespace kinflow;

TEST(Decomposition, CoversAllIdsInChunkAlignedBlocks) {
    for (std::int64_t n : {1LL, 15LL, 1000LL, 65537LL, 1000000LL}) {
        for (int p : {1, 2, 3, 4, 7}) {
            std::int64_t next = 0;
            for (int r = 0; r < p; ++r) {
                const auto d = comm::BlockDecomposition::make(n, p, r);
                EXPECT_EQ(d.chunk, comm::reduction_chunk(n)); // depends on n only
                EXPECT_EQ(d.begin, next);
                EXPECT_TRUE(d.begin % d.chunk == 0 || d.begin == n);
                next = d.end;
            }
            EXPECT_EQ(next, n);
        }
    }
}

// Value of particle with global id g: badly scaled on purpose so that the order matters.
KOKKOS_INLINE_FUNCTION double value_of(std::int64_t g) { return std::sin(0.37 * g) * std::pow(10.0, (g % 17) - 8); }

TEST(MpiReduce, OrderedSumIsBitIdenticalToTheSerialChunkOrder) {
    const auto world = comm::Communicator::world();
    const std::int64_t n = 10007;
    const auto dec = comm::BlockDecomposition::make(n, world.size(), world.rank());
    const std::int64_t first = dec.begin;
    const auto s = comm::ordered_sum<2>(world, dec, KOKKOS_LAMBDA(const std::size_t i, double* acc) {
        const double v = value_of(first + static_cast<std::int64_t>(i));
        acc[0] += v;
        acc[1] += v * v;
    });
    // Independent serial evaluation in the same chunk order.
    double ref0 = 0, ref1 = 0;
    for (std::int64_t c = 0; c < dec.n_chunks_global; ++c) {
        double a0 = 0, a1 = 0;
        for (std::int64_t g = c * dec.chunk; g < std::min(n, (c + 1) * dec.chunk); ++g) {
            a0 += value_of(g);
            a1 += value_of(g) * value_of(g);
        }
        ref0 += a0;
        ref1 += a1;
    }
    EXPECT_EQ(s[0], ref0);
    EXPECT_EQ(s[1], ref1);
    // And it is the true sum to round-off.
    double plain = 0;
    for (std::int64_t g = 0; g < n; ++g) plain += value_of(g);
    EXPECT_NEAR(s[0], plain, 1e-12 * 1e9);
}
