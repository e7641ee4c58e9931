# Learning and sampling tests (LibTorch); included by tests/CMakeLists.txt when KINFLOW_ENABLE_TORCH.
# Mpi* suites also run at 2 and 4 ranks.
kinflow_add_gtest(learn
  SOURCES learn/test_options.cpp learn/test_dataset.cpp learn/test_model.cpp learn/test_training.cpp learn/test_mpi.cpp
  LIBS kinflow_learn kinflow_sample)
