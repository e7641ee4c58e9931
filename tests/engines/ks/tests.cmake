# Keller–Segel engine tests (included by tests/CMakeLists.txt).
kinflow_add_gtest(ks
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ks.cpp
  LIBS kinflow_io kinflow_ks)
# The fast solvers: particle–mesh sum and the parabolic–parabolic particle–field scheme.
kinflow_add_gtest(ks_fast
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ks_mesh.cpp
  LIBS kinflow_io kinflow_ks)
