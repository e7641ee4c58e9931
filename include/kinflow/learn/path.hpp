#pragma once
// Probability paths (flow_matching's AffineProbPath): a sample x_t of the path between a source
// sample x_0 and a data sample x_1, and its conditional velocity dx_t.
#include <cstdint>
#include <vector>

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

/// MeanFlow's (s, t) pairs (Geng et al. 2025) for the rows of global minibatch `step` in global
/// batch slots `slots`: two logit-normal draws sigmoid(1.6 z), z ~ N(0, 1), sorted into s <= t;
/// with probability 1 - fraction a row gets t = s (the noisier draw, as py-meanflow sets r = t),
/// where the loss is fm's. The paper's logit-normal(-0.4, 1) almost never draws s near 0
/// (P(s < 0.05) ~ 1e-3), where one-step sampling evaluates u(x, 0, 1); scale 1.6 (close to uniform,
/// P ~ 6 %) halved the error of the trained average velocity at (0, 0.5) on Gaussian data
/// (docs/learning.md). Counter-based: keyed by (seed, step, slot), independent of the rank count.
/// Writes s[i], t[i].
void meanflow_times(std::uint64_t seed, std::int64_t step, const std::vector<std::int64_t>& slots, double fraction,
                    float* s, float* t);

} // namespace kinflow::learn
