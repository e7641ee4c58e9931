# kinflow-train and kinflow-sample (LibTorch); included by drivers/CMakeLists.txt when
# KINFLOW_ENABLE_TORCH. The driver sources include no LibTorch header (cheap to compile).
add_executable(kinflow-train kinflow_train.cpp)
target_link_libraries(kinflow-train PRIVATE kinflow_learn)
add_executable(kinflow-sample kinflow_sample.cpp)
target_link_libraries(kinflow-sample PRIVATE kinflow_sample)
