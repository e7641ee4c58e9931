// Shared GoogleTest main: initialises MPI and Kokkos, prints results on rank 0 only, and fails
// on every rank if any rank failed.
#include <gtest/gtest.h>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"

int main(int argc, char** argv) {
    kinflow::comm::Environment mpi(argc, argv);
    Kokkos::initialize(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    int failed = 0;
    {
        const auto world = kinflow::comm::Communicator::world();
        if (!world.is_root()) {
            auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
            delete listeners.Release(listeners.default_result_printer());
        }
        const int rc = RUN_ALL_TESTS();
        failed = world.any(rc != 0) ? 1 : 0;
    }
    Kokkos::finalize();
    return failed;
}
