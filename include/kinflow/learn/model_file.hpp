#pragma once
// The model file: everything kinflow-sample needs (weights, architecture, normalisation,
// objective, VP schedule, condition names, source), as a LibTorch archive. Checkpoints use the
// same format plus the optimizer state (see trainer.hpp). MODEL.h5 holds the same model as plain
// HDF5 for tools without LibTorch (docs/model_h5.md; postprocess/kinflow_model.py).
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "kinflow/learn/dataset.hpp"
#include "kinflow/learn/model.hpp"
#include "kinflow/learn/model_info.hpp"
#include "kinflow/learn/options.hpp"

namespace kinflow::learn {

/// The info a trainer with this configuration and data writes.
ModelInfo make_model_info(const TrainConfig& config, const Dataset& data);

void write_info(torch::serialize::OutputArchive& ar, const ModelInfo& info);
/// Throws Error naming `path` when the archive is not a kinflow model.
ModelInfo read_info(torch::serialize::InputArchive& ar, const std::string& path);

/// Save an archive to `path` atomically (PATH.tmp, then rename; parent directories created).
void save_archive(torch::serialize::OutputArchive& ar, const std::string& path);
/// Open an archive; throws Error naming `path` when missing or unreadable.
void load_archive(torch::serialize::InputArchive& ar, const std::string& path);

void save_model_file(const std::string& path, const ModelInfo& info, const torch::Tensor& params);

/// Write the model as plain HDF5 (schema docs/model_h5.md) to `path` atomically (PATH.tmp, then
/// rename; parent directories created): the float32 weights of every layer, the time frequencies,
/// the float64 normalisation, and the architecture, objective and schedule as attributes.
/// `seed` and `mpi_ranks` are the training run's (recorded as in every kinflow file).
void save_model_h5(const std::string& path, const ModelInfo& info, const torch::Tensor& params, std::uint64_t seed,
                   int mpi_ranks);

struct LoadedModel {
    ModelInfo info;
    MLP model{nullptr};
};
LoadedModel load_model_file(const std::string& path);

} // namespace kinflow::learn
