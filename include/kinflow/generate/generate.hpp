#pragma once
// kinflow-generate's entry: kinflow-sample's deterministic samplers on a network read from
// MODEL.h5 and evaluated without LibTorch (generate/network.hpp).
#include <string>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/sample/options.hpp"
#include "kinflow/sample/sample.hpp"

namespace kinflow::generate {

/// The MODEL.h5 of sample.model_file: the name itself when it ends in .h5, else the file
/// kinflow-train writes beside it (learn::model_h5_path: X.pt -> X.h5).
std::string model_h5_for(const std::string& model_file);

/// Load the MODEL.h5 of config.model_file, generate config.count samples split over ranks as
/// kinflow-sample does (fm, otfm, reflow, tfm: ODE with sample.method and sample.nfe; meanflow,
/// flowmap: sample.nfe jumps; w2map: one map, after the first stage's jump for a corrector) and
/// write config.output_file in kinflow-sample's schema (collective). Throws sample::ModelError
/// (dsm models and unreadable files among them), Error otherwise.
sample::SampleSummary run_generation(const comm::Communicator& comm, const sample::SampleConfig& config,
                                     const std::string& deck);

} // namespace kinflow::generate
