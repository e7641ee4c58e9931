# Learning benchmark (LibTorch): flow-matching training steps and Euler sampling.
add_executable(bench-learn bench_learn.cpp)
target_link_libraries(bench-learn PRIVATE kinflow_sample)
