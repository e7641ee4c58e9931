#pragma once
// The distributed data-parallel trainer: every rank holds a replica of the model and a shard of
// the data; parameters are broadcast from rank 0, the gradients (and the loss) are summed with
// one MPI_Allreduce over a flat float32 buffer per step, and each replica applies the same Adam
// update, so replicas stay bit-identical. Minibatches, noise and times come from a counter-based
// generator keyed by (seed, step, slot of the global batch), so the global batch, and hence the
// model up to reduction round-off, does not depend on the rank count, and a resumed run
// continues exactly as an uninterrupted one.
#include <cstdint>
#include <functional>
#include <string>

#include <torch/torch.h>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/learn/dataset.hpp"
#include "kinflow/learn/model.hpp"
#include "kinflow/learn/model_file.hpp"
#include "kinflow/learn/options.hpp"
#include "kinflow/learn/scheduler.hpp"
#include "kinflow/learn/train.hpp"

namespace kinflow::learn {

class Trainer {
  public:
    /// Builds the model (seeded from config.seed on every rank, then broadcast from rank 0).
    Trainer(const comm::Communicator& comm, const TrainConfig& config, const Dataset& data);

    /// One optimizer step on global minibatch step() + 1; returns the global mean loss.
    /// Throws TrainingDiverged (before touching the weights) if the loss is not finite.
    double step_once();
    /// Steps until step() == last, checkpointing every config.checkpoint_every steps;
    /// on_step(step, loss) after each.
    void run(std::int64_t last, const std::function<void(std::int64_t, double)>& on_step = {});

    /// Collective: rank 0 writes, every rank learns whether it worked.
    void save_checkpoint(const std::string& path);
    /// The model file at `path` and its plain-HDF5 copy at `h5_path` (none when empty).
    void save_model(const std::string& path, const std::string& h5_path);
    /// Restore model, optimizer, EMA, step and RNG state (every rank reads the file). Throws
    /// Error when the checkpoint does not belong to this configuration.
    void load_checkpoint(const std::string& path);

    std::int64_t step() const { return _step; }
    double lr_at(std::int64_t step) const;
    MLP& model() { return _model; }
    const torch::Tensor& adam_m() const { return _m; }
    const torch::Tensor& adam_v() const { return _v; }
    const torch::Tensor& ema() const { return _ema; }
    ModelInfo info() const;
    std::int64_t global_batch() const { return _global_batch; }
    std::int64_t last_checkpoint_step() const { return _last_checkpoint; }

  private:
    void optimizer_update(std::int64_t k);
    /// dsm with a potential model: DSM (+ the Fokker-Planck residual) by autograd at rows (x_t, t)
    /// with noise eps; writes the gradients, returns this rank's loss share.
    double potential_step(const torch::Tensor& xt, const torch::Tensor& t, const torch::Tensor& eps,
                          const torch::Tensor& cond);
    /// flowmap: Lagrangian self-distillation by autograd at rows (x_s, s, gap = t - s) with the
    /// conditional velocities v; writes the gradients, returns this rank's loss share.
    double flowmap_step(const torch::Tensor& xs, const torch::Tensor& s, const torch::Tensor& gap, const torch::Tensor& v,
                        const torch::Tensor& cond);
    /// The autograd steps' last stage: the parameter gradients of `loss` written into the flat
    /// gradient buffer (zero for a parameter the loss does not reach); returns the loss value.
    double write_gradients(const torch::Tensor& loss);
    /// train.tail_weight: the row weights 1 + lambda (|x_t|^2 / dim)^(p / 2) of the `rows` input points
    /// of this step (in _xt); undefined when the weight is off.
    torch::Tensor tail_weights(std::int64_t rows);
    comm::Communicator _comm;
    TrainConfig _cfg;
    const Dataset& _data;
    ModelInfo _info;
    MLP _model{nullptr};
    MLPWorkspace _ws;
    VPScheduler _vp;
    std::int64_t _global_batch = 0, _step = 0, _last_checkpoint = -1;
    torch::Tensor _m, _v, _denom, _ema;
    Batch _batch;
    torch::Tensor _xt, _target, _grad_y, _x0perm, _tphys, _rate, _gap, _weight; // per-step buffers (capacity grows)
};

} // namespace kinflow::learn
