#pragma once
// Potential (conservative) score models of the VP SDE and the log-density Fokker–Planck residual
// (GENERATIVE.md, "Score models and the ODE–SDE gap"), by LibTorch autograd.
//
// A potential model's network outputs a scalar n(x, t); its potential is
// phi(x, t) = n(x, t) - sigma_t |x|^2 / 2 and the log-density model u(x, t) = phi(x, t) / sigma_t
// (equal to log p_t up to a function of t, which the score does not see), so the score is
// grad_x u = grad_x phi / sigma_t and the noise prediction of DSM is eps_hat = -sigma_t grad_x u =
// -grad_x phi: the same regression target (the noise) as a vector model, with a field that is a
// gradient by construction. The quadratic base -sigma_t |x|^2 / 2 is the exact phi of standard
// normal data (the normalised data's scale): an MLP grows at most linearly, so without it grad phi
// saturates in the tails, the score stops pulling points back and the probability-flow ODE
// (dx/dt = beta (x + score) / 2) carries them outwards (measured: PF-ODE samples of N(m, S) with 2-4x
// the variance, while the same network's SDE samples were right).
#include <functional>

#include <torch/torch.h>

#include "kinflow/learn/model.hpp"
#include "kinflow/learn/scheduler.hpp"

namespace kinflow::learn {

/// A scalar function of rows: u(x [B, d], t [B]) -> [B], differentiable by autograd.
using ScalarField = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;

/// sigma_t of the VP path as a differentiable function of kinflow's time t [B] (any dtype).
torch::Tensor vp_sigma(const VPScheduler& vp, const torch::Tensor& t);
/// beta at diffusion time s = 1 - t, for kinflow's time t [B].
torch::Tensor vp_beta(const VPScheduler& vp, const torch::Tensor& t);

/// grad_x u at rows (x, t) [B, d]; create_graph keeps the graph (for a loss on the gradient).
torch::Tensor input_gradient(const ScalarField& u, const torch::Tensor& x, const torch::Tensor& t, bool create_graph);

/// The log-density Fokker–Planck residual of the VP SDE dx = -beta(s) x / 2 ds + sqrt(beta(s)) dW
/// (s = 1 - t the diffusion time) at rows (x, t):
///   R = d_s u + div f + f . grad u - (g^2 / 2)(lap u + |grad u|^2),  f = -beta x / 2, g^2 = beta,
/// zero for u = log p_t (Deveney et al.). d_s u = -d_t u. The Laplacian is exact: one backward
/// pass per dimension. create_graph: R stays differentiable (training); otherwise detached. [B]
torch::Tensor fp_residual(const ScalarField& u, const torch::Tensor& x, const torch::Tensor& t, const VPScheduler& vp,
                          bool create_graph);

/// A potential model's phi(x, t) = n(x, t) - sigma_t |x|^2 / 2 [B] through MLP::forward (autograd).
torch::Tensor potential_phi(MLP& model, const VPScheduler& vp, const torch::Tensor& x, const torch::Tensor& t,
                            const torch::Tensor& cond);
/// The potential model's log-density u(x, t) = phi(x, t) / sigma_t for condition rows cond
/// ([B, c] or undefined).
ScalarField potential_log_density(MLP& model, const VPScheduler& vp, const torch::Tensor& cond);

/// A potential model's noise prediction eps_hat = -grad_x phi(x, t) [B, d] (t [B]) by autograd;
/// create_graph for training through it, otherwise detached.
torch::Tensor potential_eps(MLP& model, const VPScheduler& vp, const torch::Tensor& x, const torch::Tensor& t,
                            const torch::Tensor& cond, bool create_graph);

/// A potential model's output and its derivatives at rows (x [B, d], t [B]): phi [B], grad_x phi
/// [B, d], and (second = true) the Laplacian in x [B] and d phi / dt [B].
struct PotentialDerivatives {
    torch::Tensor phi, grad, lap, dt;
};
/// phi and its derivatives propagated forward through the layers with the values (forward-mode:
/// for z = W h + b, a = act(z): grad a = act'(z) W grad h, lap a = act'(z) W lap h + act''(z)
/// |W grad h|^2, d_t a = act'(z) W d_t h; FiLM scales by 1 + gamma and adds z d_t gamma + d_t beta).
/// Plain tensor operations: differentiable with respect to the parameters by one ordinary backward
/// pass (the nested autograd of fp_residual costs ~20x more per training step). grad is always
/// computed; lap and dt only with `second`.
PotentialDerivatives potential_derivatives(MLP& model, const VPScheduler& vp, const torch::Tensor& x,
                                           const torch::Tensor& t, const torch::Tensor& cond, bool second);
/// fp_residual() of u = phi / sigma_t from potential_derivatives(..., second = true) at rows (x, t).
torch::Tensor potential_fp_residual(const PotentialDerivatives& p, const torch::Tensor& x, const torch::Tensor& t,
                                    const VPScheduler& vp);

/// The Jacobian d field / dx [B, d, d] of a model's x-field at rows (x, t) (float64 copy of the
/// model): the noise prediction of a dsm model (vector: the network output; potential: -grad_x phi,
/// whose Jacobian is a Hessian), the velocity of fm/otfm/tfm.
torch::Tensor field_jacobian(const MLP& model, const VPScheduler& vp, const torch::Tensor& x, const torch::Tensor& t,
                             const torch::Tensor& cond);
/// Per row ||J - J^T||_F / ||J||_F of Jacobians J [B, d, d] (0 where J = 0): the non-conservative
/// part of a field (Vuong, McCann, Santos, Lin 2025). [B]
torch::Tensor jacobian_asymmetry(const torch::Tensor& jac);

} // namespace kinflow::learn
