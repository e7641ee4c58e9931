# DSMC engine tests (adjoint DSMC included) and comm::migrate tests (included from tests/CMakeLists.txt); suites named
# Mpi* also run at 2 and 4 ranks.
kinflow_add_gtest(dsmc
  SOURCES engines/dsmc/test_dsmc.cpp engines/dsmc/test_dsmc_options.cpp engines/dsmc/test_dsmc_adjoint.cpp
          comm/test_migrate.cpp
  LIBS kinflow_io kinflow_dsmc)
kinflow_add_gtest(dsmc_spatial
  SOURCES engines/dsmc/test_dsmc_spatial.cpp
  LIBS kinflow_io kinflow_dsmc)
# SpatialSlow.* (minutes at CI size): skipped in dsmc_spatial, run here with the `slow` label.
add_test(NAME dsmc_spatial_slow
         COMMAND ${KINFLOW_MPIEXEC} 1 ${KINFLOW_MPI_FLAGS} $<TARGET_FILE:kinflow-tests-dsmc_spatial>
                 --gtest_filter=SpatialSlow.*)
set_tests_properties(dsmc_spatial_slow PROPERTIES ENVIRONMENT "${KINFLOW_MPI_ENV};KINFLOW_SLOW_TESTS=1"
                     LABELS slow TIMEOUT 1800)
