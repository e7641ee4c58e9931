#pragma once
// Losses of the four objectives. Every objective regresses the network output y on a target
// (fm/otfm: the conditional velocity x_1 - x_0; dsm: the noise eps, i.e. the score
// -eps / sigma_t scaled by sigma_t, which is Song et al.'s lambda(t) = sigma_t^2 weighting;
// w2map: the data point assigned to f(x_0) by the exact minibatch W2 coupling), so the loss is
// one mean squared error over the global batch.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace kinflow::learn {

/// This rank's share of the global mean squared error, sum |y - target|^2 / (global_rows dim),
/// with its gradient with respect to y written into grad_y ([rows, dim], preallocated).
double mse_share(const torch::Tensor& y, const torch::Tensor& target, std::int64_t global_rows, torch::Tensor& grad_y);

/// Exact optimal assignment between rows of a and b ([rows, dim], float32, contiguous) within
/// groups of equal label (rows of different conditions are never coupled): perm[i] is the row
/// of b assigned to row i of a, minimizing sum |a_i - b_perm(i)|^2 per group.
std::vector<std::int64_t> grouped_assignment(const torch::Tensor& a, const torch::Tensor& b, const std::vector<int>& group);

} // namespace kinflow::learn
