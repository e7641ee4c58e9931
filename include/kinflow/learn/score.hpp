#pragma once
// Potential (conservative) score models of the VP SDE and the log-density Fokker–Planck residual
// (GENERATIVE.md, "Score models and the ODE–SDE gap"), by LibTorch autograd.
//
// A potential model's network outputs a scalar phi(x, t); the log-density model is
// u(x, t) = phi(x, t) / sigma_t (equal to log p_t up to a function of t, which the score does not
// see), so the score is grad_x u = grad_x phi / sigma_t and the noise prediction of DSM is
// eps_hat = -sigma_t grad_x u = -grad_x phi: the same regression target (the noise) as a vector
// model, with a field that is a gradient by construction.
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

/// The potential model's log-density u(x, t) = phi(x, t) / sigma_t for condition rows cond
/// ([B, c] or undefined).
ScalarField potential_log_density(MLP& model, const VPScheduler& vp, const torch::Tensor& cond);

/// A potential model's noise prediction eps_hat = -grad_x phi(x, t) [B, d] (t [B]); create_graph
/// for training through it, otherwise detached.
torch::Tensor potential_eps(MLP& model, const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                            bool create_graph);

/// The Jacobian d field / dx [B, d, d] of a model's x-field at rows (x, t) (float64 copy of the
/// model): the noise prediction of a dsm model (vector: the network output; potential: -grad_x phi,
/// whose Jacobian is a Hessian), the velocity of fm/otfm/tfm.
torch::Tensor field_jacobian(const MLP& model, const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond);
/// Per row ||J - J^T||_F / ||J||_F of Jacobians J [B, d, d] (0 where J = 0): the non-conservative
/// part of a field (Vuong, McCann, Santos, Lin 2025). [B]
torch::Tensor jacobian_asymmetry(const torch::Tensor& jac);

} // namespace kinflow::learn
