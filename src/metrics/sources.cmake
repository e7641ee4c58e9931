add_library(kinflow_metrics
  ${CMAKE_CURRENT_LIST_DIR}/assignment.cpp
  ${CMAKE_CURRENT_LIST_DIR}/distances.cpp)
add_library(kinflow::metrics ALIAS kinflow_metrics)
target_link_libraries(kinflow_metrics PUBLIC kinflow_core)
