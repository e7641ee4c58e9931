# DSMC benchmark (included from tests/bench/CMakeLists.txt): collisions per second.
if(TARGET kinflow_dsmc)
  add_executable(bench-dsmc ${CMAKE_CURRENT_LIST_DIR}/bench_dsmc.cpp)
  target_link_libraries(bench-dsmc PRIVATE kinflow_dsmc)
endif()
