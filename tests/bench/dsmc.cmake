# DSMC benchmarks (included from tests/bench/CMakeLists.txt): collisions per second (homogeneous),
# particle-moves per second (spatial, SPARTA's bench set-up).
if(TARGET kinflow_dsmc)
  add_executable(bench-dsmc ${CMAKE_CURRENT_LIST_DIR}/bench_dsmc.cpp)
  target_link_libraries(bench-dsmc PRIVATE kinflow_dsmc)
  add_executable(bench-dsmc-spatial ${CMAKE_CURRENT_LIST_DIR}/bench_dsmc_spatial.cpp)
  target_link_libraries(bench-dsmc-spatial PRIVATE kinflow_dsmc)
endif()
