# DSMC engine tests (adjoint DSMC included) and comm::migrate tests (included from tests/CMakeLists.txt); suites named
# Mpi* also run at 2 and 4 ranks.
kinflow_add_gtest(dsmc
  SOURCES engines/dsmc/test_dsmc.cpp engines/dsmc/test_dsmc_options.cpp engines/dsmc/test_dsmc_adjoint.cpp
          comm/test_migrate.cpp
  LIBS kinflow_io kinflow_dsmc)
kinflow_add_gtest(dsmc_spatial
  SOURCES engines/dsmc/test_dsmc_spatial.cpp
  LIBS kinflow_io kinflow_dsmc)
