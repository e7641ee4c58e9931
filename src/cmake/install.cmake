# `cmake --install`: drivers, module libraries, public headers, decks, postprocess scripts and the
# exported CMake package (find_package(kinflow) -> kinflow::core, kinflow::engines, ...).
# Included by the top-level CMakeLists.txt after every target exists.
include(CMakePackageConfigHelpers)

set(_kf_libs kinflow_core kinflow_comm kinflow_io kinflow_metrics kinflow_langevin kinflow_engines kinflow_random123
    kinflow_sample_core kinflow_generate)
set(KINFLOW_WITH_KS FALSE)
set(KINFLOW_WITH_DSMC FALSE)
if(TARGET kinflow_ks)
  list(APPEND _kf_libs kinflow_ks)
  set(KINFLOW_WITH_KS TRUE)
endif()
if(TARGET kinflow_dsmc)
  list(APPEND _kf_libs kinflow_dsmc)
  set(KINFLOW_WITH_DSMC TRUE)
endif()
if(TARGET kinflow_learn)
  list(APPEND _kf_libs kinflow_learn kinflow_sample)
endif()
# FFTW's MPI interface: found by pkg-config (the consumer's config repeats the look-up), or the
# library/header fallback target of src/engines/ks/sources.cmake (exported with the rest).
set(KINFLOW_FFTW3_MPI_PKGCONFIG FALSE)
if(TARGET kinflow_fftw3_mpi)
  list(APPEND _kf_libs kinflow_fftw3_mpi)
elseif(KINFLOW_WITH_KS)
  set(KINFLOW_FFTW3_MPI_PKGCONFIG TRUE)
endif()
# Exported names drop the prefix: kinflow_core -> kinflow::core (the build's ALIAS names).
foreach(_kf_lib IN LISTS _kf_libs)
  string(REGEX REPLACE "^kinflow_" "" _kf_name ${_kf_lib})
  set_target_properties(${_kf_lib} PROPERTIES EXPORT_NAME ${_kf_name})
endforeach()

install(TARGETS ${_kf_libs} EXPORT kinflowTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(_kf_driver kinflow-simulate kinflow-compare kinflow-train kinflow-sample kinflow-generate)
  if(TARGET ${_kf_driver})
    install(TARGETS ${_kf_driver} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

# Public headers (the LibTorch modules' only when built; the torch-free ones of learn/ and sample/
# that kinflow_sample_core and kinflow_generate export always) and the generated version header.
set(_kf_header_excludes)
if(NOT TARGET kinflow_learn)
  set(_kf_header_excludes REGEX "/learn/(loss|model|model_file|path|scheduler|score|score_curl|train|trainer)\\.hpp$" EXCLUDE
      REGEX "/sample/sampler\\.hpp$" EXCLUDE)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/kinflow DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp" ${_kf_header_excludes})
install(FILES ${PROJECT_BINARY_DIR}/include/kinflow/core/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kinflow/core)

# Decks and the Python postprocess scripts: share/kinflow/{inputs,postprocess}.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/inputs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/kinflow/inputs
        FILES_MATCHING PATTERN "*.ini")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/postprocess/ DESTINATION ${CMAKE_INSTALL_DATADIR}/kinflow/postprocess
        USE_SOURCE_PERMISSIONS FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)

# The CMake package: lib/cmake/kinflow/{kinflowConfig,kinflowConfigVersion,kinflowTargets}.cmake.
set(_kf_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/kinflow)
install(EXPORT kinflowTargets NAMESPACE kinflow:: DESTINATION ${_kf_cmake_dir})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/kinflowConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/kinflowConfig.cmake INSTALL_DESTINATION ${_kf_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kinflowConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/kinflowConfig.cmake ${PROJECT_BINARY_DIR}/kinflowConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/kokkos_include_fix.cmake
        DESTINATION ${_kf_cmake_dir})
