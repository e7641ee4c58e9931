#pragma once
// The network: an MLP forward(x, t[, cond]) with a sinusoidal time embedding (flow_matching's
// model interface), whose parameters all live in one flat float32 buffer, plus a hand-written
// forward/backward of the same network for training and sampling.
//
// Why the hand-written pass: for the small models this project trains (2-4 layers of 64-256 units,
// batches of thousands of points) a training step is a handful of GEMMs, and LibTorch's autograd
// costs as much again in graph construction, temporary allocations and per-parameter gradient
// accumulation and optimizer loops. MLPWorkspace runs the same arithmetic with out= kernels on
// preallocated buffers and writes the gradients straight into the flat gradient buffer that the
// trainer allreduces; tests check it against autograd.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "kinflow/learn/options.hpp"

namespace kinflow::learn {

/// Angular frequencies w_k of the time features [sin(w_k t), cos(w_k t)], geometric in
/// [max_frequency / 100, max_frequency] (the default: [1, 100]; one pair: the lowest).
torch::Tensor time_frequencies(int time_features, double max_frequency = 100.0);

/// The output gate g = -expm1(-(c_k - origin) / scale) of a gated model (ModelSpec::gate_column) for
/// normalised conditions cond [B, cond_dim] ([B, 1]); one value: ModelSpec::gate (the same float32 arithmetic).
torch::Tensor output_gate(const ModelSpec& spec, const torch::Tensor& cond);

struct MLPImpl : torch::nn::Module {
    explicit MLPImpl(const ModelSpec& spec);

    /// Network output for rows x [B, dim], times t [B] (ignored without time features),
    /// normalised conditions cond [B, cond_dim] (undefined when cond_dim = 0) and, for two time
    /// inputs (meanflow: t is the time s of x), the gaps [B] of the average velocity.
    /// Autograd-enabled (and forward-mode AD: dual tensors pass through).
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond = {},
                          const torch::Tensor& gap = {});
    /// The input row [x, sin(w t), cos(w t)(, sin(w gap), cos(w gap)), cond] (concat: of the first
    /// layer; film: x, then the embedding's inputs).
    torch::Tensor features(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                           const torch::Tensor& gap = {}) const;
    /// FiLM scale and shift [B, 2 layers hidden] (gamma_0, beta_0, gamma_1, ...) of the embedding
    /// inputs e = [sin(w t), cos(w t), cond] [B, embed_width]; film models only.
    torch::Tensor modulation(const torch::Tensor& e);

    const ModelSpec& spec() const { return _spec; }
    /// The buffer every parameter is a view of (weights and bias of each layer in order).
    torch::Tensor& flat_parameters() { return _flat; }
    const torch::Tensor& flat_parameters() const { return _flat; }
    /// The gradient buffer every parameter's .grad() is a view of, with one extra trailing
    /// element (the trainer puts the loss there so that one allreduce carries both).
    torch::Tensor& flat_gradients() { return _flat_grad; }
    std::int64_t parameter_count() const { return _flat.numel(); }
    const std::vector<torch::nn::Linear>& linears() const { return _linears; }
    /// film: the embedding layer (embed_width -> hidden) and the modulation layer (hidden -> 2 layers hidden).
    const torch::nn::Linear& embed() const { return _embed; }
    const torch::nn::Linear& film() const { return _film; }
    const torch::Tensor& omega() const { return _omega; }

  private:
    ModelSpec _spec;
    std::vector<torch::nn::Linear> _linears;
    torch::nn::Linear _embed{nullptr}, _film{nullptr};
    torch::Tensor _flat, _flat_grad, _omega;
};
TORCH_MODULE(MLP);

/// Hand-written forward and backward passes of an MLP on preallocated buffers (capacity grows
/// on demand). Not thread-safe; one per model user.
class MLPWorkspace {
  public:
    explicit MLPWorkspace(MLP model);

    /// The first-layer input buffer [rows, input_width] to fill (or use set_features()).
    torch::Tensor input(std::int64_t rows);
    /// Fill input(rows) with [x, sin(w t), cos(w t)(, sin(w gap), cos(w gap)), cond]; x [rows, dim],
    /// t [rows], cond [rows, c], gap [rows] (two time inputs only).
    void set_features(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                      const torch::Tensor& gap = {});
    /// Forward pass of the rows last given by input()/set_features(); keeps activations for backward().
    const torch::Tensor& forward();
    /// Forward pass of the rows of set_features() and the directional derivative (JVP) of the
    /// output along the tangent (dx [rows, dim], dt, dgap) on the inputs (x, t, gap), propagated
    /// through the layers with the forward pass (exact forward-mode differentiation by hand:
    /// dz = W dh, da = act'(z) dz; film: dm = dz (1 + gamma) + z dgamma + dbeta). Returns the
    /// derivative [rows, dim]; the output is forward()'s, kept for backward().
    const torch::Tensor& forward_jvp(const torch::Tensor& dx, double dt, double dgap);
    /// Gradients of sum(grad_y * y) with respect to the parameters, written (not added) into
    /// the model's flat gradient buffer.
    void backward(const torch::Tensor& grad_y);
    /// Forward and backward of the loss scale * sum |y - target|^2 over the rows of input(),
    /// `chunk` rows at a time (the activations of a chunk stay in cache; the weight gradients
    /// are summed over chunks). Writes the gradients, returns the loss. A defined `weight` [rows]
    /// weighs each row's squared error: scale * sum_i w_i |y_i - target_i|^2.
    double mse_step(const torch::Tensor& target, double scale, std::int64_t chunk,
                    const torch::Tensor& weight = torch::Tensor());
    /// MeanFlow's step (Geng et al. 2025) over the rows of input() (set_features(x_s, s, cond, gap),
    /// gap = t - s): per row, the output u(x_s, s, t), its derivative du along the tangent (v, 1, 0)
    /// on (x, s, t), i.e. (v, 1, -1) on (x, s, gap), the stop-gradient target v + gap du and the
    /// squared error l = |u - target|^2 weighted by 1 / (sg(l) + 1e-3)^power. Writes the gradients
    /// of scale * sum w l (`chunk` rows at a time, as mse_step); returns scale * sum l, the
    /// unweighted error (at gap = 0 and power 0, mse_step's loss and gradient with target v).
    double meanflow_step(const torch::Tensor& v, const torch::Tensor& gap, double power, double scale,
                         std::int64_t chunk);

    /// Inference for rows x [n, dim] sharing one time t, one condition row and (two time inputs)
    /// one gap (folded into the first layer's bias), into out [n, dim]. No activations are kept.
    void evaluate(const torch::Tensor& x, double t, const torch::Tensor& cond_row, torch::Tensor& out,
                  double gap = 0.0);

    MLP& model() { return _model; }

  private:
    void reserve(std::int64_t rows);
    void reserve_activations(std::int64_t rows);
    void activate(const torch::Tensor& z, torch::Tensor& a);
    void activate_backward(const torch::Tensor& grad_a, const torch::Tensor& z, const torch::Tensor& a, torch::Tensor& grad_z);
    void forward_rows(std::int64_t first, std::int64_t n);
    void backward_rows(std::int64_t first, std::int64_t n, const torch::Tensor& grad_y, bool accumulate);
    /// After forward_rows(first, n): the output's derivative along (dx, dt, dgap) into _dy.
    void tangent_rows(std::int64_t first, std::int64_t n, const torch::Tensor& dx, double dt, double dgap);
    MLP _model;
    std::int64_t _in_capacity = 0, _capacity = 0, _rows = 0;
    torch::Tensor _in, _y, _y_rows, _gy, _ga, _gz, _bias0, _emb, _gate; // _gate: [rows, 1] output gate (gated models)
    std::vector<float> _omega, _extra; // time frequencies; folded time/condition inputs (evaluate)
    std::vector<torch::Tensor> _z, _a; // pre-activations and activations of the hidden layers
    std::vector<torch::Tensor> _m;     // film: modulated pre-activations z (1 + gamma) + beta
    torch::Tensor _ze, _e, _gb, _ggb, _ge, _gze; // film: embedding pre-activation/activation, modulation, their gradients
    torch::Tensor _eval_gb;                      // film: the modulation of evaluate()'s time and condition
    torch::Tensor _din, _dz, _da, _dy, _dy_rows, _dze, _de, _dgb; // tangents of the forward-mode pass (forward_jvp)
};

/// Routes to the derivative of the network output along a tangent (dx, dt, dgap) on its inputs
/// (x, t, gap): MeanFlow's JVP (GENERATIVE.md, "Mean flows"). Hand is the training route.
enum class JvpRoute {
    Hand,             ///< MLPWorkspace::forward_jvp: the tangent propagated through the layers by hand
    ForwardAD,        ///< LibTorch forward-mode AD (dual tensors) through MLP::forward
    DoubleBackward,   ///< the vector-Jacobian product's derivative d/dw <J^T w, tangent> (reverse over reverse)
    CentralDifference ///< [y(in + eps tangent) - y(in - eps tangent)] / (2 eps) on a float64 copy, eps = 1e-6
};
const char* to_string(JvpRoute r);

struct OutputJvp {
    torch::Tensor y, dy; ///< output and its derivative [rows, dim] (float64 for CentralDifference)
};
/// The output of `model` on rows (x, t, cond, gap) and its derivative along (dx, dt, dgap) by `route`.
/// cond and gap as in MLP::forward (undefined when absent).
OutputJvp output_jvp(MLP& model, const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                     const torch::Tensor& gap, const torch::Tensor& dx, double dt, double dgap, JvpRoute route);

} // namespace kinflow::learn
