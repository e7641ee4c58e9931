# kinflow_fix_kokkos_include(): after find_package(Kokkos). Debian's Trilinos-packaged Kokkos 3.4
# exports Kokkos::kokkos with INTERFACE_INCLUDE_DIRECTORIES = /usr/lib/include (wrong); its
# Kokkos_INCLUDE_DIRS is right. Applied only where the exported path does not exist (a site or
# self-built Kokkos is used as installed). Used by kinflow's build and by its installed
# kinflowConfig.cmake (consumers find Kokkos again and need the same fix).
function(kinflow_fix_kokkos_include)
  if(Kokkos_VERSION VERSION_LESS 4.0 AND DEFINED Kokkos_INCLUDE_DIRS)
    get_target_property(_kk_inc Kokkos::kokkos INTERFACE_INCLUDE_DIRECTORIES)
    set(_kk_broken FALSE)
    foreach(_d IN LISTS _kk_inc)
      if(NOT _d MATCHES "^\\$<" AND NOT EXISTS "${_d}/Kokkos_Core.hpp")
        set(_kk_broken TRUE)
      endif()
    endforeach()
    if(_kk_broken)
      get_filename_component(_kk_fixed "${Kokkos_INCLUDE_DIRS}" ABSOLUTE)
      message(STATUS "kinflow: fixing Kokkos::kokkos include path ${_kk_inc} -> ${_kk_fixed}")
      set_target_properties(Kokkos::kokkos PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kk_fixed}")
    endif()
  endif()
endfunction()
