# Learning and sampling tests (LibTorch); included by tests/CMakeLists.txt when KINFLOW_ENABLE_TORCH.
# Mpi* suites also run at 2 and 4 ranks.
kinflow_add_gtest(learn
  SOURCES learn/test_options.cpp learn/test_dataset.cpp learn/test_model.cpp learn/test_training.cpp learn/test_mpi.cpp learn/test_score.cpp
  LIBS kinflow_learn kinflow_sample)
# LibTorch's outputs of models with random weights written as MODEL.h5, for the numpy evaluator's
# test (tests/postprocess/test_kinflow_model.py runs it).
add_executable(kinflow-model-reference learn/model_reference.cpp)
target_link_libraries(kinflow-model-reference PRIVATE kinflow_sample)
