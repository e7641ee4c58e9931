# DSMC engine (included from src/CMakeLists.txt): Nanbu–Babovsky and NTC schemes, Maxwell/HS/VHS/VSS; adjoint DSMC.
add_library(kinflow_dsmc
  ${CMAKE_CURRENT_LIST_DIR}/adjoint.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dsmc_engine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/options.cpp
  ${CMAKE_CURRENT_LIST_DIR}/spatial.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stepper.cpp)
add_library(kinflow::dsmc ALIAS kinflow_dsmc)
target_link_libraries(kinflow_dsmc PUBLIC kinflow_comm Boost::program_options)
