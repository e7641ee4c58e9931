// HDF5 snapshot writer/reader: schema, round trip at any rank count, temporary-name safety.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <hdf5.h>

#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "support.hpp"

using namespace kinflow;
namespace fs = std::filesystem;

namespace {
ParticleSet make_particles(const comm::BlockDecomposition& dec, int dim, bool with_species) {
    ParticleSet p;
    p.allocate(static_cast<std::size_t>(dec.n_local()), dim, 3, with_species);
    p.n_global = dec.n_global;
    auto pos = Kokkos::create_mirror_view(p.position);
    auto vel = Kokkos::create_mirror_view(p.velocity);
    auto id = Kokkos::create_mirror_view(p.id);
    auto sp = Kokkos::create_mirror_view(p.species);
    for (std::int64_t i = 0; i < dec.n_local(); ++i) {
        const std::int64_t g = dec.begin + i;
        id(i) = g;
        for (int k = 0; k < dim; ++k) pos(i, k) = 0.5 * g + k;
        for (int k = 0; k < 3; ++k) vel(i, k) = -1.0 * g - k;
        if (with_species) sp(i) = static_cast<std::int32_t>(g % 3);
    }
    Kokkos::deep_copy(p.position, pos);
    Kokkos::deep_copy(p.velocity, vel);
    Kokkos::deep_copy(p.id, id);
    if (with_species) Kokkos::deep_copy(p.species, sp);
    return p;
}

/// A fresh (emptied) directory for this test and rank count, the same path on every rank.
std::string shared_temp(const comm::Communicator& world, const std::string& name) {
    std::string dir = ::testing::TempDir() + "kinflow_io_" + std::to_string(world.size()) + "/" + name;
    world.broadcast(dir);
    if (world.is_root()) {
        fs::remove_all(fs::path(dir).parent_path());
        fs::create_directories(fs::path(dir).parent_path());
    }
    world.barrier();
    return dir;
}
} // namespace

TEST(MpiSnapshot, RoundTripKeepsRowsAttributesAndDiagnostics) {
    const auto world = comm::Communicator::world();
    const std::int64_t n = 1000;
    const auto dec = comm::BlockDecomposition::make(n, world.size(), world.rank());
    const auto p = make_particles(dec, 2, true);
    const std::string path = shared_temp(world, "roundtrip/run.h5");
    {
        io::SnapshotWriter w(world, path, io::FileInfo{"test", "[run]\nseed = 5\n", 5, 2});
        w.write(p, 0.0, 0, {{"mass", 1.0}, {"m2", 2.0}});
        w.write(p, 0.25, 10, {{"mass", 1.0}, {"m2", 3.0}});
        EXPECT_FALSE(fs::exists(path));
        EXPECT_TRUE(fs::exists(w.temp_path()));
        w.finish();
    }
    world.barrier();
    EXPECT_TRUE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    io::SnapshotReader r(world, path);
    EXPECT_EQ(r.count(), 2);
    EXPECT_EQ(r.dim(), 2);
    EXPECT_EQ(r.attr_string("producer"), "test");
    EXPECT_EQ(r.attr_string("deck"), "[run]\nseed = 5\n");
    EXPECT_EQ(r.attr_int("seed"), 5);
    EXPECT_EQ(r.attr_int("mpi_ranks"), world.size());
    EXPECT_FALSE(r.attr_string("kinflow_version").empty());
    EXPECT_EQ(r.time(1), 0.25);
    EXPECT_EQ(r.step(-1), 10);
    EXPECT_EQ(r.n_global(0), n);
    EXPECT_EQ(r.diagnostic_names(), (std::vector<std::string>{"m2", "mass", "time"}));
    EXPECT_EQ(r.diagnostic("time"), (std::vector<double>{0.0, 0.25}));
    EXPECT_EQ(r.diagnostic("m2"), (std::vector<double>{2.0, 3.0}));
    EXPECT_THROW(r.resolve(2), Error);

    // Read back a different split than the one written (rows 100..349 on every rank).
    const auto q = r.read(1, 100, 350);
    ASSERT_EQ(q.size(), 250u);
    EXPECT_TRUE(q.has_velocity());
    EXPECT_TRUE(q.has_species());
    auto pos = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), q.position);
    auto vel = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), q.velocity);
    auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), q.id);
    auto sp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), q.species);
    for (std::size_t i = 0; i < q.size(); ++i) {
        const auto g = static_cast<std::int64_t>(100 + i);
        ASSERT_EQ(id(i), g);
        ASSERT_EQ(pos(i, 1), 0.5 * g + 1);
        ASSERT_EQ(vel(i, 2), -1.0 * g - 2);
        ASSERT_EQ(sp(i), g % 3);
    }
}

TEST(MpiSnapshot, AbandonedWriterLeavesNoFileAndPartialIsKeptUnderOtherName) {
    const auto world = comm::Communicator::world();
    const auto dec = comm::BlockDecomposition::make(64, world.size(), world.rank());
    const auto p = make_particles(dec, 1, false);
    const std::string path = shared_temp(world, "abandon/run.h5");
    {
        io::SnapshotWriter w(world, path, io::FileInfo{"test", "", 0, 1});
        w.write(p, 0.0, 0, {});
    } // destroyed without finish(), as when an exception unwinds
    world.barrier();
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    std::string kept;
    {
        io::SnapshotWriter w(world, path, io::FileInfo{"test", "", 0, 1});
        w.write(p, 0.0, 0, {{"x", 1.0}});
        kept = w.keep_partial();
    }
    world.barrier();
    EXPECT_FALSE(fs::exists(path));
    EXPECT_TRUE(fs::exists(kept));
    io::SnapshotReader r(world, kept);
    EXPECT_EQ(r.count(), 1);
    EXPECT_EQ(r.diagnostic("x"), std::vector<double>{1.0});
}

TEST(MpiSnapshot, UnwritableOrBadPathsAreErrors) {
    const auto world = comm::Communicator::world();
    const std::string file = shared_temp(world, "plainfile");
    if (world.is_root()) {
        fs::create_directories(fs::path(file).parent_path());
        std::ofstream(file) << "x";
    }
    world.barrier();
    // A path below a regular file cannot be created.
    EXPECT_THROW(io::SnapshotWriter(world, file + "/sub/run.h5", io::FileInfo{"t", "", 0, 1}), Error);
    EXPECT_THROW(io::SnapshotReader(world, file + ".missing"), Error);
    EXPECT_THROW(io::SnapshotReader(world, file), Error); // not HDF5
}
