# kinflow_sample_core: the torch-free parts of learning and sampling (the deck keys of kinflow-train
# and kinflow-sample, sampling's request checks, source rows and output file: sample/plan.hpp),
# always built; kinflow_learn and kinflow_sample build on it when LibTorch is there.
add_library(kinflow_sample_core
  learn/options.cpp
  sample/options.cpp
  sample/plan.cpp)
add_library(kinflow::sample_core ALIAS kinflow_sample_core)
target_link_libraries(kinflow_sample_core PUBLIC kinflow_io Boost::program_options)

# kinflow_generate: kinflow-generate's one-step generator without LibTorch (the network read from
# MODEL.h5 and evaluated in float32, docs/model_h5.md).
add_library(kinflow_generate
  generate/generator.cpp
  generate/network.cpp)
add_library(kinflow::generate ALIAS kinflow_generate)
target_link_libraries(kinflow_generate PUBLIC kinflow_sample_core)
