#pragma once
// Probability paths (flow_matching's AffineProbPath): a sample x_t of the path between a source
// sample x_0 and a data sample x_1, and its conditional velocity dx_t.
#include <torch/torch.h>

#include "kinflow/learn/scheduler.hpp"

namespace kinflow::learn {

struct PathSample {
    torch::Tensor x_t, dx_t;
};

/// x_t = alpha_t x_1 + sigma_t x_0, dx_t = alpha'_t x_1 + sigma'_t x_0; t is [B], x [B, dim].
template <class Scheduler>
struct AffineProbPath {
    Scheduler scheduler;
    PathSample sample(const torch::Tensor& x0, const torch::Tensor& x1, const torch::Tensor& t) const {
        const auto s = scheduler(t.reshape({-1, 1}));
        return {s.alpha * x1 + s.sigma * x0, s.d_alpha * x1 + s.d_sigma * x0};
    }
};

/// The CondOT path specialised: x_t = x_0 + t (x_1 - x_0), dx_t = x_1 - x_0 (in place on
/// preallocated buffers: the flow-matching training step's only path arithmetic).
inline void condot_sample(const torch::Tensor& x0, const torch::Tensor& x1, const torch::Tensor& t, torch::Tensor& x_t,
                          torch::Tensor& dx_t) {
    at::sub_out(dx_t, x1, x0);
    at::addcmul_out(x_t, x0, t.reshape({-1, 1}), dx_t);
}

} // namespace kinflow::learn
