#pragma once
// A trained network read from MODEL.h5 (docs/model_h5.md) and evaluated in float32 without
// LibTorch: the arithmetic of learn::MLPWorkspace::evaluate (the time features and the condition
// row are shared by every row of a call, so they are folded into the first layer's bias (concat)
// or into one FiLM modulation), on transposed weights in row blocks whose inner loops run over
// contiguous output columns (auto-vectorised).
#include <cstdint>
#include <string>
#include <vector>

#include "kinflow/learn/model_info.hpp"

namespace kinflow::generate {

/// One linear layer y = h W^T + b, stored transposed: wt[k * out + j] = W[j][k].
struct Linear {
    int in = 0, out = 0;
    std::vector<float> wt, b;
};

struct Network {
    std::string path;
    learn::ModelInfo info;
    std::vector<float> omega;    ///< time frequencies w_k
    std::vector<Linear> linears; ///< layers + 1
    Linear embed, film;          ///< film models only
    /// Optional output gate (root attributes output_gate_column, _origin, _scale): the output is
    /// multiplied by g = -expm1(-(c_hat_k - origin) / scale), c_hat_k the normalised condition
    /// column k as the network sees it (float32). column -1: no gate.
    int gate_column = -1;
    double gate_origin = 0.0, gate_scale = 1.0;
};

/// Read MODEL.h5. Throws Error naming `path` when it is missing, damaged, of a later format or
/// a model this evaluator does not take (a potential score model).
Network load_network(const std::string& path);

/// What is the same for every row of one evaluation: the first layer's bias with the time
/// features and conditions folded in (concat), the FiLM scale 1 + gamma_l and shift beta_l, the gate.
struct Call {
    std::vector<float> bias0;
    std::vector<float> scale, shift; ///< film: [layers * hidden]
    float gate = 1.0f;
    bool gated = false;
};
/// The call of network time t (meanflow, flowmap: the time s of x), normalised condition row
/// `cond` [cond_dim] and gap t - s (two time inputs only).
Call prepare(const Network& net, double t, const float* cond, double gap = 0.0);

/// Scratch for evaluate() (one per thread).
struct Scratch {
    std::vector<float> a, b;
};

/// The network output out [n, dim] for rows x [n, dim] (normalised coordinates, row-major)
/// under `call`; x and out may not overlap.
void evaluate(const Network& net, const Call& call, const float* x, std::int64_t n, float* out, Scratch& scratch);

/// exp(x) in float32 without branches (vectorisable): Cephes expf (S. L. Moshier, Cephes Math
/// Library, 1992: Cody–Waite reduction by ln 2, degree-6 polynomial), relative error below 2e-7
/// on [-87, 88]; arguments are clamped to that range.
float fast_expf(float x);

} // namespace kinflow::generate
