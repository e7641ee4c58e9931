#pragma once
// Samplers (flow_matching's split): ODE integrators (Euler, Heun, classical RK4) and
// Euler–Maruyama for the reverse VP SDE, over a trained model's vector field.
#include <cstdint>
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "kinflow/learn/model.hpp"
#include "kinflow/learn/model_file.hpp"
#include "kinflow/learn/scheduler.hpp"
#include "kinflow/sample/options.hpp"

namespace kinflow::sample {

/// A vector field f(x, t) written into out (x, out: [n, dim]).
using Field = std::function<void(const torch::Tensor& x, double t, torch::Tensor& out)>;
/// An average velocity u(x, s, t) over [s, t] written into out (meanflow and flowmap models).
using AverageField = std::function<void(const torch::Tensor& x, double s, double t, torch::Tensor& out)>;
/// Fills z ([n, dim]) with standard normals for SDE step `step` (0-based).
using Noise = std::function<void(std::int64_t step, torch::Tensor& z)>;

/// Fixed-step integrators on preallocated stage buffers.
class Integrator {
  public:
    /// dx/dt = f(x, t) from t0 to t1 in `steps` equal steps, in place; returns evaluations of f.
    std::int64_t ode(Method method, std::int64_t steps, double t0, double t1, torch::Tensor& x, const Field& f);
    /// dx = drift(x, t) dt + g(t) dW from t0 to t1 (Euler–Maruyama, Kloeden & Platen eq. 9.1.1);
    /// the last step adds no noise (returns the mean of the final transition, Song et al. 2021).
    std::int64_t sde(std::int64_t steps, double t0, double t1, torch::Tensor& x, const Field& drift,
                     const std::function<double(double)>& g, const Noise& noise);
    /// Mean-flow jumps x <- x + (t_{k+1} - t_k) u(x, t_k, t_{k+1}) on a uniform grid of `steps`
    /// intervals from t0 to t1, in place (Geng et al. 2025; one step: x1 = x0 + u(x0, 0, 1));
    /// returns evaluations of u.
    std::int64_t jumps(std::int64_t steps, double t0, double t1, torch::Tensor& x, const AverageField& u);

  private:
    void reserve(const torch::Tensor& x);
    torch::Tensor _k1, _k2, _k3, _k4, _tmp;
};

/// The network output as a function of (x, t): fm/otfm: the velocity; dsm: the noise
/// prediction eps_hat (score = -eps_hat / sigma_t); w2map: the map (t unused).
using Network = Field;

/// The ODE right-hand side of a trained objective: fm/otfm: v = net; dsm: the probability-flow
/// ODE v = beta(t) (x - net / sigma_t) / 2.
Field ode_field(learn::Objective objective, const learn::VPScheduler& vp, Network net);
/// The reverse VP SDE drift beta(t) (x / 2 - net / sigma_t); its diffusion is sqrt(beta(t)).
Field sde_drift(const learn::VPScheduler& vp, Network net);

/// Straightness of the flow of a velocity field v (Liu et al. 2022) along Euler paths of `steps`
/// steps from the rows x (in place: x becomes x_1): the mean over rows of
/// int_0^1 |v(x_t, t)|^2 dt - |x_1 - x_0|^2 = int_0^1 |v - (x_1 - x_0)|^2 dt >= 0 (the discrete sums
/// obey it exactly), zero for straight paths at constant speed.
double straightness(const Field& v, torch::Tensor& x, std::int64_t steps);

/// Transport normalised source rows x (in place) to normalised target samples with a trained
/// model: t from 0 to t_end (fm/otfm 1; tfm the normalised physical time (t - time_origin) /
/// time_scale; dsm always to 1 - vp_eps), `nfe` evaluations per row (w2map: one). Not for
/// meanflow or flowmap models (Integrator::jumps with average_network).
/// Returns the evaluations made per row.
std::int64_t transport(const learn::ModelInfo& info, const Network& net, Method method, std::int64_t nfe,
                       torch::Tensor& x, const Noise& noise, double t_end = 1.0);

/// A network evaluator of a model for one condition row (normalised), in chunks of `batch` rows.
Network network(learn::MLPWorkspace& ws, const torch::Tensor& cond_row, std::int64_t batch);
/// The noise prediction eps_hat = -grad_x phi(x, t) of a potential score model (dsm,
/// train.score_model = potential) for one condition row, in chunks of `batch` rows (forward-mode
/// gradient, learn::potential_derivatives).
Network potential_network(learn::MLP model, const learn::VPScheduler& vp, const torch::Tensor& cond_row,
                          std::int64_t batch);
/// network() or, for a potential score model, potential_network() of the workspace's model.
Network model_network(const learn::ModelInfo& info, learn::MLPWorkspace& ws, const torch::Tensor& cond_row,
                      std::int64_t batch);
/// The average velocity u(x, s, t) of a meanflow or flowmap model (network inputs s and gap t - s) for one
/// condition row, in chunks of `batch` rows.
AverageField average_network(learn::MLPWorkspace& ws, const torch::Tensor& cond_row, std::int64_t batch);

} // namespace kinflow::sample
