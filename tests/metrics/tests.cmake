kinflow_add_gtest(metrics SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_metrics.cpp LIBS kinflow_metrics kinflow_io)
