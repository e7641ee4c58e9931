#pragma once
// What kinflow-sample and kinflow-generate share, without LibTorch: the checks of a sampling
// request against a model, the source rows (a snapshot or kinflow-sample's noise), and the output
// file. The two drivers differ only in how they evaluate the network.
#include <cstdint>
#include <string>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/learn/model_info.hpp"
#include "kinflow/sample/options.hpp"
#include "kinflow/sample/sample.hpp"

namespace kinflow::sample {

/// A sampling request checked against the model (throws ModelError naming the deck key).
struct Plan {
    std::vector<float> cond; ///< the normalised condition row (c - cond_mean) / cond_std
    double time = 0.0;       ///< time of the output snapshot
    double t_end = 1.0;      ///< end of the path (tfm: the normalised sample.time)
    bool jump_model = false; ///< meanflow, flowmap: sample.nfe average-velocity jumps
    std::int64_t steps = 1;  ///< integrator steps (recorded in the output)
    std::string method;      ///< the summary's name of the method
};
Plan plan(const SampleConfig& cfg, const learn::ModelInfo& info);
/// A w2map corrector's first stage (train.corrector) must be a meanflow or flowmap model of the same dim.
void check_first_stage(const learn::ModelInfo& info, const learn::ModelInfo& first);

/// This rank's source rows in normalised model coordinates [n_local, dim] (row-major float32):
/// a snapshot's positions (source = snapshot:<index>; sample.source_file, else the training
/// data's first file) normalised by source_mean and source_std, or gaussian / uniform noise drawn
/// by global row id from stream kStreamInit of run.seed.
struct SourceRows {
    std::int64_t count = 0; ///< samples over all ranks
    comm::BlockDecomposition dec;
    std::vector<float> x;
    /// This rank's sums over its source snapshot rows in physical units: sum v_k (k < dim), then
    /// sum |v|^2 (empty for a noise source); sample.conserve's invariants.
    std::vector<double> sums;
};
SourceRows source_rows(const comm::Communicator& comm, const SampleConfig& cfg, const learn::ModelInfo& info);

/// kinflow-sample's random streams (purposes RngPurpose::User + k): source noise, SDE noise.
constexpr std::uint32_t kStreamInit = 4, kStreamSde = 5;
CounterRng stream(std::uint64_t seed, std::uint32_t k);
/// Standard normals (or unit-variance uniforms) into z [n, dim] for rows with global ids
/// first..first+n-1 at counter `step`.
void fill_noise(const CounterRng& rng, std::uint64_t step, std::int64_t first, std::int64_t n, int dim, bool uniform,
                float* z);

/// Write the samples (rows x in model coordinates; mean + std x in the file) to cfg.output_file
/// (collective): producer sampler, one snapshot at plan.time, root attribute nfe, the sampling
/// deck followed by the model's [train] section. sample.conserve = momentum_energy first projects
/// the physical rows onto the source's mean and mean square (factor in /diagnostics/conserve_scale).
void write_samples(const comm::Communicator& comm, const SampleConfig& cfg, const std::string& deck,
                   const learn::ModelInfo& info, const Plan& plan, const SourceRows& rows, const float* x,
                   std::int64_t nfe);

/// The one-line summary's figures of a finished sampling run (`seconds`: the sampling loop's wall time).
SampleSummary summary(const learn::ModelInfo& info, const Plan& plan, const SourceRows& rows, std::int64_t nfe,
                      double seconds);

} // namespace kinflow::sample
