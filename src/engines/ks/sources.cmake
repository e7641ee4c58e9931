# Keller–Segel engine (included by src/CMakeLists.txt).
# FFTW 3 (double precision) for the mesh solver's transforms (Debian: libfftw3-dev).
find_package(PkgConfig REQUIRED)
pkg_check_modules(KINFLOW_FFTW3 REQUIRED IMPORTED_TARGET fftw3)
# FFTW's MPI interface for the distributed mesh FFTs (ks.mesh_fft; Debian: libfftw3-mpi-dev). Debian
# ships no fftw3-mpi.pc: fall back to the library and header next to fftw3's.
pkg_check_modules(KINFLOW_FFTW3_MPI QUIET IMPORTED_TARGET fftw3-mpi)
if(KINFLOW_FFTW3_MPI_FOUND)
  set(KINFLOW_FFTW3_MPI_TARGET PkgConfig::KINFLOW_FFTW3_MPI)
else()
  find_library(KINFLOW_FFTW3_MPI_LIBRARY NAMES fftw3_mpi HINTS ${KINFLOW_FFTW3_LIBRARY_DIRS})
  find_path(KINFLOW_FFTW3_MPI_INCLUDE_DIR NAMES fftw3-mpi.h HINTS ${KINFLOW_FFTW3_INCLUDE_DIRS})
  if(NOT KINFLOW_FFTW3_MPI_LIBRARY OR NOT KINFLOW_FFTW3_MPI_INCLUDE_DIR)
    message(FATAL_ERROR "kinflow: FFTW's MPI interface (libfftw3_mpi, fftw3-mpi.h) not found; "
                        "install libfftw3-mpi-dev or set KINFLOW_FFTW3_MPI_LIBRARY / KINFLOW_FFTW3_MPI_INCLUDE_DIR")
  endif()
  # A plain (not imported) target: src/cmake/install.cmake exports it as kinflow::fftw3_mpi.
  add_library(kinflow_fftw3_mpi INTERFACE)
  target_link_libraries(kinflow_fftw3_mpi INTERFACE "${KINFLOW_FFTW3_MPI_LIBRARY}")
  target_include_directories(kinflow_fftw3_mpi SYSTEM INTERFACE "${KINFLOW_FFTW3_MPI_INCLUDE_DIR}")
  set(KINFLOW_FFTW3_MPI_TARGET kinflow_fftw3_mpi)
endif()
add_library(kinflow_ks
  ${CMAKE_CURRENT_LIST_DIR}/field.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ks_engine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mesh.cpp
  ${CMAKE_CURRENT_LIST_DIR}/neighbours.cpp
  ${CMAKE_CURRENT_LIST_DIR}/options.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stepper.cpp)
add_library(kinflow::ks ALIAS kinflow_ks)
target_link_libraries(kinflow_ks PUBLIC kinflow_comm Boost::program_options PRIVATE ${KINFLOW_FFTW3_MPI_TARGET} PkgConfig::KINFLOW_FFTW3)
# The pair sum's lane loop carries `#pragma omp simd` (-fopenmp-simd honours it without the
# OpenMP runtime); -fno-math-errno lets the 3D kernel's sqrt vectorize. Neither changes a value:
# IEEE sqrt is correctly rounded either way, errno is never read.
target_compile_options(kinflow_ks PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-fopenmp-simd -fno-math-errno>)
