# Learning (kinflow_learn) and sampling (kinflow_sample) modules: LibTorch, included by
# src/CMakeLists.txt when KINFLOW_ENABLE_TORCH. Torch translation units are few on purpose
# (~25 s each): model.cpp, score.cpp, trainer.cpp, sampler.cpp; data loading is torch-free, and the deck
# keys, source rows and output file are in kinflow_sample_core (src/generate/sources.cmake).
add_library(kinflow_learn
  learn/dataset.cpp
  learn/model.cpp
  learn/score.cpp
  learn/trainer.cpp)
add_library(kinflow::learn ALIAS kinflow_learn)
target_link_libraries(kinflow_learn PUBLIC kinflow_sample_core kinflow_metrics ${TORCH_LIBRARIES})
# LibTorch's headers are not -Wall -Wextra clean: system includes.
target_include_directories(kinflow_learn SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})

add_library(kinflow_sample
  sample/sampler.cpp)
add_library(kinflow::sample ALIAS kinflow_sample)
target_link_libraries(kinflow_sample PUBLIC kinflow_learn)
# train.device / sample.device = cuda: the reason given for refusing it depends on whether this
# LibTorch has CUDA (TorchConfig sets TORCH_CUDA_LIBRARIES only then).
if(TORCH_CUDA_LIBRARIES)
  target_compile_definitions(kinflow_sample_core PRIVATE KINFLOW_TORCH_CUDA)
endif()
