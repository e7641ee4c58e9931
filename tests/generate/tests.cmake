# kinflow-generate's float32 network (no LibTorch: built in every configuration).
kinflow_add_gtest(generate SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_network.cpp LIBS kinflow_generate)
