// Decomposition and reproducible sums: the same bits for any rank count.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/comm/reduce.hpp"
#include "kinflow/core/error.hpp"

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

// {sum v, sum v^2} over this rank's block. A free function: nvcc does not allow a device lambda in
// a TEST body (gtest's TestBody is private).
std::array<double, 2> ordered_sum_of_values(const comm::Communicator& world, const comm::BlockDecomposition& dec) {
    const std::int64_t first = dec.begin;
    return comm::ordered_sum<2>(world, dec, KOKKOS_LAMBDA(const std::size_t i, double* acc) {
        const double v = value_of(first + static_cast<std::int64_t>(i));
        acc[0] += v;
        acc[1] += v * v;
    });
}

TEST(MpiReduce, OrderedSumIsBitIdenticalToTheSerialChunkOrder) {
    const auto world = comm::Communicator::world();
    const std::int64_t n = 10007;
    const auto dec = comm::BlockDecomposition::make(n, world.size(), world.rank());
    const auto s = ordered_sum_of_values(world, dec);
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

// The two block collectives the distributed mesh FFT uses, against values every rank can compute
// on its own: rank r contributes v_r(i) = (r + 1) * 1000 + i, so block b of the sum is
// sum_r v_r(i) = 1000 P (P + 1)/2 + P i for the indices i of block b; blocks of unequal length
// (rank r owns r + 1 elements, one rank may own none) exercise the displacements.
TEST(MpiCommunicator, ReduceScatterSumAndAllgathervInPlace) {
    const auto comm = comm::Communicator::world();
    const int p = comm.size(), r = comm.rank();
    std::vector<int> counts(static_cast<std::size_t>(p)), displs(static_cast<std::size_t>(p));
    int total = 0;
    for (int b = 0; b < p; ++b) {
        counts[static_cast<std::size_t>(b)] = b == p - 1 && p > 1 ? 0 : b + 1;
        displs[static_cast<std::size_t>(b)] = total;
        total += counts[static_cast<std::size_t>(b)];
    }
    std::vector<double> in(static_cast<std::size_t>(total)), out(static_cast<std::size_t>(std::max(1, counts[r])));
    for (int i = 0; i < total; ++i) in[static_cast<std::size_t>(i)] = (r + 1) * 1000.0 + i;
    comm.reduce_scatter_sum(in.data(), out.data(), counts);
    for (int m = 0; m < counts[static_cast<std::size_t>(r)]; ++m) {
        const int i = displs[static_cast<std::size_t>(r)] + m;
        EXPECT_EQ(out[static_cast<std::size_t>(m)], 1000.0 * p * (p + 1) / 2 + static_cast<double>(p) * i);
    }
    // every rank fills its own block with -(rank + 1) - i; after the gather all blocks are there
    std::vector<double> buf(static_cast<std::size_t>(total), 0.0);
    for (int m = 0; m < counts[static_cast<std::size_t>(r)]; ++m) {
        const int i = displs[static_cast<std::size_t>(r)] + m;
        buf[static_cast<std::size_t>(i)] = -(r + 1.0) - i;
    }
    comm.allgatherv_in_place(buf.data(), counts, displs);
    for (int b = 0; b < p; ++b)
        for (int m = 0; m < counts[static_cast<std::size_t>(b)]; ++m) {
            const int i = displs[static_cast<std::size_t>(b)] + m;
            EXPECT_EQ(buf[static_cast<std::size_t>(i)], -(b + 1.0) - i);
        }
    EXPECT_THROW(comm.reduce_scatter_sum(in.data(), out.data(), std::vector<int>(static_cast<std::size_t>(p) + 1, 0)),
                 Error);
}
