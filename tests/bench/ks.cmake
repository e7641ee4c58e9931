# Keller–Segel benchmarks (included by tests/bench/CMakeLists.txt): the direct sum, and the mesh
# solver against it (series in N, crossover).
add_executable(bench-ks ${CMAKE_CURRENT_LIST_DIR}/bench_ks.cpp)
target_link_libraries(bench-ks PRIVATE kinflow_ks)
add_executable(bench-ks-mesh ${CMAKE_CURRENT_LIST_DIR}/bench_ks_mesh.cpp)
target_link_libraries(bench-ks-mesh PRIVATE kinflow_ks)
