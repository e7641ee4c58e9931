#pragma once
// Schedulers (flow_matching's split): x_t = alpha_t x_1 + sigma_t x_0 with t = 0 at the source
// (noise) and t = 1 at the data, and the derivatives of alpha_t, sigma_t.
#include <cmath>

#include <torch/torch.h>

namespace kinflow::learn {

struct SchedulerOutput {
    torch::Tensor alpha, sigma, d_alpha, d_sigma;
};

/// The linear (rectified-flow / CondOT) path: alpha_t = t, sigma_t = 1 - t (Lipman et al. 2023).
struct CondOTScheduler {
    SchedulerOutput operator()(const torch::Tensor& t) const {
        return {t, 1.0 - t, torch::ones_like(t), -torch::ones_like(t)};
    }
};

/// The variance-preserving SDE of Song et al. (ICLR 2021) in flow_matching's time direction:
/// diffusion time s = 1 - t, beta(s) = beta_min + s (beta_max - beta_min),
/// alpha_t = exp(-1/2 int_0^s beta) = exp(-(beta_min s + (beta_max - beta_min) s^2 / 2) / 2),
/// sigma_t = sqrt(1 - alpha_t^2).
struct VPScheduler {
    double beta_min = 0.1, beta_max = 20.0;

    double beta(double t) const { return beta_min + (1.0 - t) * (beta_max - beta_min); }
    double log_alpha(double t) const {
        const double s = 1.0 - t;
        return -0.5 * (beta_min * s + 0.5 * (beta_max - beta_min) * s * s);
    }
    double alpha(double t) const { return std::exp(log_alpha(t)); }
    double sigma(double t) const { return std::sqrt(-std::expm1(2.0 * log_alpha(t))); }

    SchedulerOutput operator()(const torch::Tensor& t) const {
        const auto s = 1.0 - t;
        const auto log_a = -0.5 * (beta_min * s + 0.5 * (beta_max - beta_min) * s * s);
        const auto a = torch::exp(log_a);
        const auto sig = torch::sqrt(-torch::expm1(2.0 * log_a));
        // d alpha / dt = alpha beta(s) / 2 (ds/dt = -1); d sigma / dt = -alpha d alpha / dt / sigma.
        const auto b = beta_min + s * (beta_max - beta_min);
        const auto da = 0.5 * a * b;
        return {a, sig, da, -a * da / sig};
    }
};

} // namespace kinflow::learn
