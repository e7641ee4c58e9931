#pragma once
// A trained network read from MODEL.h5 (docs/model_h5.md) and evaluated in float32 without
// LibTorch: the arithmetic of learn::MLPWorkspace::evaluate (the time features and the condition
// row are shared by every row of a call, so they are folded into the first layer's bias (concat)
// or into one FiLM modulation), on transposed weights in row blocks whose inner loops run over
// contiguous output columns (auto-vectorised).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kinflow/learn/model_info.hpp"

namespace kinflow::generate {

/// One linear layer y = h W^T + b: W as stored (w[j * in + k] = W[j][k]) and transposed
/// (wt[k * out + j] = W[j][k]).
struct Linear {
    int in = 0, out = 0;
    std::vector<float> w, wt, b;
};

struct Network {
    std::string path;
    learn::ModelInfo info;
    std::vector<float> omega;    ///< time frequencies w_k
    std::vector<Linear> linears; ///< layers + 1
    Linear embed, film;          ///< film models only (the output gate: info.spec.gate_*)
};

/// Read MODEL.h5. Throws Error naming `path` when it is missing, damaged, of a later format or
/// a model this evaluator does not take (a potential score model).
Network load_network(const std::string& path);

/// What is the same for every row of one evaluation: the first layer's bias with the time
/// features and conditions folded in (concat), the FiLM scale 1 + gamma_l and shift beta_l, the gate.
struct Call {
    std::vector<float> bias0;
    std::vector<float> scale, shift; ///< film: [layers * hidden]
    float gate = 1.0f; ///< the output gate of the call's condition row (1: no gate)
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

/// exp(x) in float32 without branches, so that a loop calling it vectorises: Cephes expf (S. L.
/// Moshier, Cephes Math Library, 1992: x = n ln 2 + r with ln 2 split in two parts (Cody & Waite
/// 1980), exp(r) by its degree-6 minimax polynomial, 2^n from the exponent bits); relative error
/// below 1e-7 on [-87, 88] (tests/generate), arguments clamped to that range (2^n stays a normal float).
inline float fast_expf(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    // n = nearest integer to x / ln 2 by the 1.5 * 2^23 shift (std::floor would not vectorise)
    const float n = (1.44269504088896341f * x + 12582912.0f) - 12582912.0f;
    x -= n * 0.693359375f;
    x -= n * -2.12194440e-4f;
    const float z = x * x;
    const float p = ((((((1.9875691500e-4f * x + 1.3981999507e-3f) * x + 8.3334519073e-3f) * x + 4.1665795894e-2f) * x +
                       1.6666665459e-1f) * x + 5.0000001201e-1f) * z + x) + 1.0f;
    const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23; // 2^n, n in [-126, 127]
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

} // namespace kinflow::generate
