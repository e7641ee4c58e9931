add_executable(kinflow-compare ${CMAKE_CURRENT_LIST_DIR}/kinflow_compare.cpp)
target_link_libraries(kinflow-compare PRIVATE kinflow_io kinflow_metrics)
