# Keller–Segel engine (included by src/CMakeLists.txt).
# FFTW 3 (double precision) for the mesh solver's transforms (Debian: libfftw3-dev).
find_package(PkgConfig REQUIRED)
pkg_check_modules(KINFLOW_FFTW3 REQUIRED IMPORTED_TARGET fftw3)
add_library(kinflow_ks
  ${CMAKE_CURRENT_LIST_DIR}/field.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ks_engine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mesh.cpp
  ${CMAKE_CURRENT_LIST_DIR}/neighbours.cpp
  ${CMAKE_CURRENT_LIST_DIR}/options.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stepper.cpp)
add_library(kinflow::ks ALIAS kinflow_ks)
target_link_libraries(kinflow_ks PUBLIC kinflow_comm Boost::program_options PRIVATE PkgConfig::KINFLOW_FFTW3)
# The pair sum's lane loop carries `#pragma omp simd` (-fopenmp-simd honours it without the
# OpenMP runtime); -fno-math-errno lets the 3D kernel's sqrt vectorize. Neither changes a value:
# IEEE sqrt is correctly rounded either way, errno is never read.
target_compile_options(kinflow_ks PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-fopenmp-simd -fno-math-errno>)
