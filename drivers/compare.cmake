add_executable(kinflow-compare ${CMAKE_CURRENT_LIST_DIR}/kinflow_compare.cpp)
target_link_libraries(kinflow-compare PRIVATE kinflow_io kinflow_metrics)
# --score-curl MODEL evaluates a trained network (LibTorch, through the torch-free
# learn/score_curl.hpp): only in builds with the learning module.
if(TARGET kinflow_learn)
  target_link_libraries(kinflow-compare PRIVATE kinflow_learn)
  target_compile_definitions(kinflow-compare PRIVATE KINFLOW_HAVE_TORCH)
endif()
