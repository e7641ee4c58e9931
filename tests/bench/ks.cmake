# Keller–Segel direct-sum benchmark (included by tests/bench/CMakeLists.txt).
add_executable(bench-ks ${CMAKE_CURRENT_LIST_DIR}/bench_ks.cpp)
target_link_libraries(bench-ks PRIVATE kinflow_ks)
