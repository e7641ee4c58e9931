# Learning benchmark (LibTorch): flow-matching training steps and Euler sampling.
add_executable(bench-learn bench_learn.cpp)
target_link_libraries(bench-learn PRIVATE kinflow_sample)
# MeanFlow: JVP routes against one forward pass, meanflow training steps against fm's.
add_executable(bench-meanflow bench_meanflow.cpp)
target_link_libraries(bench-meanflow PRIVATE kinflow_learn)
