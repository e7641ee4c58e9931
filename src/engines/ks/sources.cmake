# Keller–Segel engine (included by src/CMakeLists.txt).
add_library(kinflow_ks
  ${CMAKE_CURRENT_LIST_DIR}/ks_engine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/options.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stepper.cpp)
add_library(kinflow::ks ALIAS kinflow_ks)
target_link_libraries(kinflow_ks PUBLIC kinflow_comm Boost::program_options)
# The pair sum's lane loop carries `#pragma omp simd` (-fopenmp-simd honours it without the
# OpenMP runtime); -fno-math-errno lets the 3D kernel's sqrt vectorize. Neither changes a value:
# IEEE sqrt is correctly rounded either way, errno is never read.
target_compile_options(kinflow_ks PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-fopenmp-simd -fno-math-errno>)
