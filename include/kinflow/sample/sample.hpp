#pragma once
// kinflow-sample's entry into the sampling module, without LibTorch headers.
#include <cstdint>
#include <string>
#include <utility>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/sample/options.hpp"

namespace kinflow::sample {

struct SampleSummary {
    std::int64_t count = 0;     ///< samples written (all ranks)
    std::int64_t nfe = 0;       ///< network evaluations per sample
    std::int64_t steps = 0;     ///< integrator steps
    double seconds = 0.0;       ///< sampling time (without I/O)
    std::string objective, method;
};

/// A sampling request the model or its source data cannot serve (the same on every rank);
/// `key` is the deck key to blame.
struct ModelError : Error {
    ModelError(std::string key_, const std::string& msg) : Error(msg), key(std::move(key_)) {}
    std::string key;
};

/// Load the model, draw config.count samples split over ranks, write config.output_file
/// (collective). `deck` is the resolved sampling deck; the training deck is appended to it.
/// Throws ModelError for a bad model file, condition or source, Error otherwise.
SampleSummary run_sampling(const comm::Communicator& comm, const SampleConfig& config, const std::string& deck);

} // namespace kinflow::sample
