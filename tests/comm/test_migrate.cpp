// comm::migrate and comm::to_blocks: rows travel whole (every field follows its id), the
// received order is by source rank then local order, to_blocks restores the block layout the
// snapshot writer needs, aliasing of position and velocity survives, bad input is an error on
// every rank. Mpi* suites: they run at 1, 2 and 4 ranks.
#include <gtest/gtest.h>

#include <vector>

#include "kinflow/comm/decomposition.hpp"
#include "kinflow/comm/migrate.hpp"
#include "kinflow/core/error.hpp"

using namespace kinflow;

namespace {

double xval(std::int64_t id, int k) { return 1000.0 * static_cast<double>(id) + k + 0.25; }
double vval(std::int64_t id, int k) { return -0.5 * static_cast<double>(id) - k; }

/// This rank's block of `n` particles with fields derived from the ids.
ParticleSet make_block(const comm::Communicator& comm, std::int64_t n, bool alias) {
    const auto dec = comm::BlockDecomposition::make(n, comm.size(), comm.rank());
    ParticleSet p;
    p.allocate(static_cast<std::size_t>(dec.n_local()), alias ? 3 : 2, 3, true, "test");
    if (alias)
        p.position = p.velocity;
    p.n_global = n;
    auto x = Kokkos::create_mirror_view(p.position);
    auto v = Kokkos::create_mirror_view(p.velocity);
    auto id = Kokkos::create_mirror_view(p.id);
    auto sp = Kokkos::create_mirror_view(p.species);
    for (std::int64_t i = 0; i < dec.n_local(); ++i) {
        const std::int64_t g = dec.begin + i;
        id(i) = g;
        sp(i) = static_cast<std::int32_t>(g % 3);
        for (int k = 0; k < 3; ++k)
            v(i, k) = vval(g, k);
        if (!alias) {
            for (int k = 0; k < 2; ++k)
                x(i, k) = xval(g, k);
        }
    }
    if (!alias)
        Kokkos::deep_copy(p.position, x);
    Kokkos::deep_copy(p.velocity, v);
    Kokkos::deep_copy(p.id, id);
    Kokkos::deep_copy(p.species, sp);
    return p;
}

/// Every row matches its id; returns the ids in local order.
std::vector<std::int64_t> check_rows(const ParticleSet& p, bool alias) {
    auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.position);
    auto v = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.velocity);
    auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.id);
    auto sp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.species);
    std::vector<std::int64_t> ids;
    for (std::size_t i = 0; i < p.size(); ++i) {
        const std::int64_t g = id(i);
        ids.push_back(g);
        EXPECT_EQ(sp(i), g % 3) << "id " << g;
        for (int k = 0; k < 3; ++k)
            EXPECT_EQ(v(i, k), vval(g, k)) << "id " << g;
        if (!alias) {
            for (int k = 0; k < 2; ++k)
                EXPECT_EQ(x(i, k), xval(g, k)) << "id " << g;
        }
    }
    if (alias) {
        EXPECT_EQ(p.position.data(), p.velocity.data());
    }
    return ids;
}

} // namespace

TEST(MpiMigrate, RowsTravelWholeInSourceOrder) {
    const auto world = comm::Communicator::world();
    const int P = world.size();
    for (bool alias : {false, true}) {
        const std::int64_t n = 1001;
        ParticleSet p = make_block(world, n, alias);
        comm::RankView dest("dest", p.size());
        auto h = Kokkos::create_mirror_view(dest);
        auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.id);
        for (std::size_t i = 0; i < p.size(); ++i)
            h(i) = static_cast<int>((id(i) * 7 + 3) % P);
        Kokkos::deep_copy(dest, h);
        comm::migrate(world, p, dest);
        EXPECT_EQ(p.n_global, n);
        EXPECT_EQ(world.sum(static_cast<std::int64_t>(p.size())), n);
        const auto ids = check_rows(p, alias);
        // Expected: the ids sent here, by source rank (block order) then local order = increasing ids.
        std::vector<std::int64_t> expect;
        for (std::int64_t g = 0; g < n; ++g)
            if ((g * 7 + 3) % P == world.rank())
                expect.push_back(g);
        EXPECT_EQ(ids, expect);
    }
}

TEST(MpiMigrate, ToBlocksRestoresBlockOrder) {
    const auto world = comm::Communicator::world();
    const int P = world.size();
    for (bool alias : {false, true}) {
        const std::int64_t n = 777;
        ParticleSet p = make_block(world, n, alias);
        // Scramble: everything to the last rank, reversed there, then back to blocks.
        comm::RankView dest("dest", p.size());
        Kokkos::deep_copy(dest, P - 1);
        comm::migrate(world, p, dest);
        EXPECT_EQ(static_cast<std::int64_t>(p.size()), world.rank() == P - 1 ? n : 0);
        EXPECT_EQ(comm::in_block_order(world, p), P == 1);
        comm::to_blocks(world, p);
        EXPECT_TRUE(comm::in_block_order(world, p));
        const auto dec = comm::BlockDecomposition::make(n, P, world.rank());
        const auto ids = check_rows(p, alias);
        ASSERT_EQ(static_cast<std::int64_t>(ids.size()), dec.n_local());
        for (std::size_t i = 0; i < ids.size(); ++i)
            EXPECT_EQ(ids[i], dec.begin + static_cast<std::int64_t>(i));
    }
}

TEST(MpiMigrate, BadInputIsAnErrorOnEveryRank) {
    const auto world = comm::Communicator::world();
    ParticleSet p = make_block(world, 100, true);
    comm::RankView dest("dest", p.size());
    Kokkos::deep_copy(dest, world.size()); // no such rank
    EXPECT_THROW(comm::migrate(world, p, dest), Error);
    // A duplicated id: to_blocks must refuse on every rank.
    ParticleSet q = make_block(world, 100, true);
    if (world.is_root() && q.size() > 1) {
        auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), q.id);
        id(1) = id(0);
        Kokkos::deep_copy(q.id, id);
    }
    EXPECT_THROW(comm::to_blocks(world, q), Error);
    ParticleSet r = make_block(world, 100, true);
    r.n_global = 101; // counts do not add up
    EXPECT_THROW(comm::to_blocks(world, r), Error);
}
