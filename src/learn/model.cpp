// The MLP, its hand-written forward/backward, and the model file.
#include "kinflow/learn/model.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "kinflow/core/error.hpp"
#include "kinflow/core/version.hpp"
#include "kinflow/io/hdf5.hpp"
#include "kinflow/learn/model_file.hpp"

namespace kinflow::learn {

torch::Tensor time_frequencies(int time_features, double max_frequency) {
    const int half = time_features / 2;
    if (half == 0) return torch::empty({0});
    if (half == 1) return torch::full({1}, static_cast<float>(max_frequency / 100.0));
    return torch::exp(torch::linspace(std::log(max_frequency / 100.0), std::log(max_frequency), half, torch::kFloat64))
        .to(torch::kFloat32);
}

// ---- MLP ------------------------------------------------------------------------------------

MLPImpl::MLPImpl(const ModelSpec& spec) : _spec(spec) {
    KINFLOW_REQUIRE(spec.dim >= 1 && spec.hidden >= 1 && spec.layers >= 1 && spec.time_features % 2 == 0,
                    "bad model specification");
    KINFLOW_REQUIRE(!spec.film || spec.embed_width() > 0, "a film model needs time features or conditions");
    KINFLOW_REQUIRE(spec.gate_valid(), "the output gate needs a condition column and a finite positive scale");
    int in = spec.first_width();
    for (int l = 0; l <= spec.layers; ++l) {
        const int out = l == spec.layers ? spec.outputs() : spec.hidden;
        _linears.push_back(register_module("linear" + std::to_string(l), torch::nn::Linear(in, out)));
        in = out;
    }
    std::vector<torch::nn::Linear> all = _linears;
    if (spec.film) {
        _embed = register_module("embed", torch::nn::Linear(spec.embed_width(), spec.film_width));
        _film = register_module("film", torch::nn::Linear(spec.film_width, 2 * spec.layers * spec.hidden));
        // Zero modulation at initialisation (gamma = beta = 0): training starts from the plain MLP
        // on x, as adaLN-Zero in DiT (Peebles & Xie 2023) starts its blocks at the identity.
        torch::NoGradGuard no_grad;
        _film->weight.zero_();
        _film->bias.zero_();
        all.push_back(_embed);
        all.push_back(_film);
    }
    // Move every parameter into one flat buffer (weights then bias, layer by layer; film: the
    // embedding and modulation layers last) and make its gradient a view of one flat gradient
    // buffer: the optimizer, the allreduce, the EMA and the checkpoint then work on one tensor each.
    std::int64_t total = 0;
    for (auto& lin : all) total += lin->weight.numel() + lin->bias.numel();
    _flat = torch::empty({total});
    _flat_grad = torch::zeros({total + 1});
    torch::NoGradGuard no_grad;
    std::int64_t off = 0;
    for (auto& lin : all) {
        for (torch::Tensor* p : {&lin->weight, &lin->bias}) {
            const std::int64_t n = p->numel();
            auto slice = _flat.narrow(0, off, n).view(p->sizes());
            slice.copy_(*p);
            p->set_data(slice);
            p->mutable_grad() = _flat_grad.narrow(0, off, n).view(p->sizes());
            off += n;
        }
    }
    _omega = time_frequencies(spec.time_features, spec.time_max_frequency);
}

torch::Tensor MLPImpl::features(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                                const torch::Tensor& gap) const {
    std::vector<torch::Tensor> parts{x};
    if (_spec.time_features > 0) {
        KINFLOW_REQUIRE(_spec.time_inputs == 1 || gap.defined(), "a model with two time inputs needs the gap");
        for (int k = 0; k < _spec.time_inputs; ++k) {
            const auto a = (k == 0 ? t : gap).reshape({-1, 1}) * _omega;
            parts.push_back(torch::sin(a));
            parts.push_back(torch::cos(a));
        }
    }
    if (_spec.cond_dim > 0) parts.push_back(cond);
    return parts.size() == 1 ? x : torch::cat(parts, 1);
}

torch::Tensor output_gate(const ModelSpec& spec, const torch::Tensor& cond) {
    // (c - origin) * (-1 / scale) in float32 as MLPWorkspace::gate_rows(); -expm1(-u) = 1 - e^-u without cancellation
    return torch::expm1(cond.narrow(1, spec.gate_column, 1).sub(spec.gate_origin).mul(-1.0 / spec.gate_scale)).neg();
}

namespace {
torch::Tensor apply_activation(Activation act, const torch::Tensor& h) {
    switch (act) {
    case Activation::SiLU: return torch::silu(h);
    case Activation::GELU: return torch::gelu(h);
    case Activation::Tanh: return torch::tanh(h);
    }
    return h;
}
} // namespace

torch::Tensor MLPImpl::modulation(const torch::Tensor& e) {
    return _film->forward(apply_activation(_spec.activation, _embed->forward(e)));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                               const torch::Tensor& gap) {
    auto h = features(x, t, cond, gap);
    torch::Tensor gb;
    if (_spec.film) {
        gb = modulation(h.narrow(1, _spec.dim, _spec.embed_width()));
        h = x;
    }
    const int H = _spec.hidden;
    for (std::size_t l = 0; l < _linears.size(); ++l) {
        h = _linears[l]->forward(h);
        if (l + 1 == _linears.size()) break;
        if (_spec.film) {
            const auto li = static_cast<std::int64_t>(l);
            h = h * (1.0 + gb.narrow(1, 2 * li * H, H)) + gb.narrow(1, (2 * li + 1) * H, H);
        }
        h = apply_activation(_spec.activation, h);
    }
    if (_spec.gated()) h = h * output_gate(_spec, cond);
    return h;
}

// ---- hand-written passes ----------------------------------------------------------------------

MLPWorkspace::MLPWorkspace(MLP model) : _model(std::move(model)) {
    const auto omega = _model->omega().contiguous();
    _omega.assign(omega.data_ptr<float>(), omega.data_ptr<float>() + omega.numel());
}

void MLPWorkspace::reserve(std::int64_t rows) {
    const auto& s = _model->spec();
    if (rows > _in_capacity) {
        _in_capacity = std::max<std::int64_t>(rows, 16);
        _in = torch::empty({_in_capacity, s.input_width()});
        _emb = torch::empty({_in_capacity, std::max(s.time_features / 2, 1)});
    }
    reserve_activations(rows);
}

void MLPWorkspace::reserve_activations(std::int64_t rows) {
    if (rows <= _capacity) return;
    const auto& s = _model->spec();
    const std::int64_t cap = std::max<std::int64_t>(rows, 16);
    _y = torch::empty({cap, s.outputs()});
    _gy = torch::empty({cap, s.outputs()});
    _ga = torch::empty({cap, s.hidden});
    _gz = torch::empty({cap, s.hidden});
    // tangents (forward_jvp, meanflow_step): allocated with the other buffers, small beside them
    _din = torch::empty({cap, s.input_width()});
    _dz = torch::empty({cap, s.hidden});
    _da = torch::empty({cap, s.hidden});
    _dy = torch::empty({cap, s.outputs()});
    if (s.gated()) _gate = torch::empty({cap, 1});
    _z.assign(static_cast<std::size_t>(s.layers), torch::Tensor());
    _a.assign(static_cast<std::size_t>(s.layers), torch::Tensor());
    for (int l = 0; l < s.layers; ++l) {
        _z[l] = torch::empty({cap, s.hidden});
        _a[l] = torch::empty({cap, s.hidden});
    }
    if (s.film) {
        _m.assign(static_cast<std::size_t>(s.layers), torch::Tensor());
        for (int l = 0; l < s.layers; ++l) _m[l] = torch::empty({cap, s.hidden});
        for (torch::Tensor* t : {&_ze, &_e, &_ge, &_gze}) *t = torch::empty({cap, s.film_width});
        _gb = torch::empty({cap, 2 * s.layers * s.hidden});
        _ggb = torch::empty({cap, 2 * s.layers * s.hidden});
        _dze = torch::empty({cap, s.film_width});
        _de = torch::empty({cap, s.film_width});
        _dgb = torch::empty({cap, 2 * s.layers * s.hidden});
    }
    _capacity = cap;
}

torch::Tensor MLPWorkspace::input(std::int64_t rows) {
    reserve(rows);
    _rows = rows;
    return _in.narrow(0, 0, rows);
}

void MLPWorkspace::set_features(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                                const torch::Tensor& gap) {
    torch::NoGradGuard no_grad;
    const auto& s = _model->spec();
    const std::int64_t rows = x.size(0);
    auto in = input(rows);
    in.narrow(1, 0, s.dim).copy_(x);
    if (s.time_features > 0) {
        KINFLOW_REQUIRE(s.time_inputs == 1 || gap.defined(), "a model with two time inputs needs the gap");
        const int half = s.time_features / 2;
        auto emb = _emb.narrow(0, 0, rows);
        for (int k = 0; k < s.time_inputs; ++k) {
            at::mul_out(emb, (k == 0 ? t : gap).reshape({-1, 1}), _model->omega());
            auto sin_cols = in.narrow(1, s.dim + k * s.time_features, half);
            auto cos_cols = in.narrow(1, s.dim + k * s.time_features + half, half);
            at::sin_out(sin_cols, emb);
            at::cos_out(cos_cols, emb);
        }
    }
    if (s.cond_dim > 0) in.narrow(1, s.dim + s.time_width(), s.cond_dim).copy_(cond);
}

void MLPWorkspace::activate(const torch::Tensor& z, torch::Tensor& a) {
    switch (_model->spec().activation) {
    case Activation::SiLU: at::silu_out(a, z); break;
    case Activation::GELU: at::gelu_out(a, z); break;
    case Activation::Tanh: at::tanh_out(a, z); break;
    }
}

void MLPWorkspace::activate_backward(const torch::Tensor& grad_a, const torch::Tensor& z, const torch::Tensor& a,
                                     torch::Tensor& grad_z) {
    switch (_model->spec().activation) {
    case Activation::SiLU: at::silu_backward_out(grad_z, grad_a, z); break;
    case Activation::GELU: at::gelu_backward_out(grad_z, grad_a, z); break;
    case Activation::Tanh: at::tanh_backward_out(grad_z, grad_a, a); break;
    }
}

void MLPWorkspace::forward_rows(std::int64_t first, std::int64_t n) {
    const auto& lin = _model->linears();
    const auto& s = _model->spec();
    const int L = s.layers, H = s.hidden;
    torch::Tensor h = _in.narrow(0, first, n);
    if (s.film) {
        // Embedding and modulation of this chunk's [time features, conditions]; the first layer sees x.
        auto ze = _ze.narrow(0, 0, n), e = _e.narrow(0, 0, n), gb = _gb.narrow(0, 0, n);
        at::addmm_out(ze, _model->embed()->bias, h.narrow(1, s.dim, s.embed_width()), _model->embed()->weight.t());
        activate(ze, e);
        at::addmm_out(gb, _model->film()->bias, e, _model->film()->weight.t());
        h = h.narrow(1, 0, s.dim);
    }
    for (int l = 0; l < L; ++l) {
        auto z = _z[l].narrow(0, 0, n);
        auto a = _a[l].narrow(0, 0, n);
        at::addmm_out(z, lin[l]->bias, h, lin[l]->weight.t());
        if (s.film) { // m = z (1 + gamma_l) + beta_l
            auto m = _m[l].narrow(0, 0, n);
            const auto gb = _gb.narrow(0, 0, n);
            at::addcmul_out(m, z, z, gb.narrow(1, 2 * l * H, H));
            m.add_(gb.narrow(1, (2 * l + 1) * H, H));
            activate(m, a);
        } else {
            activate(z, a);
        }
        h = a;
    }
    _y_rows = _y.narrow(0, 0, n);
    at::addmm_out(_y_rows, lin[L]->bias, h, lin[L]->weight.t());
    if (s.gated()) { // y = g(c) net: the gate of each row's time condition, kept for backward and tangent
        auto g = _gate.narrow(0, 0, n);
        at::sub_out(g, _in.narrow(0, first, n).narrow(1, s.dim + s.time_width() + s.gate_column, 1), s.gate_origin);
        g.mul_(-1.0 / s.gate_scale);
        at::expm1_out(g, g);
        g.neg_();
        _y_rows.mul_(g);
    }
}

void MLPWorkspace::backward_rows(std::int64_t first, std::int64_t n, const torch::Tensor& grad_y, bool accumulate) {
    const auto& lin = _model->linears();
    const auto& s = _model->spec();
    const int L = s.layers, H = s.hidden;
    auto ga = _ga.narrow(0, 0, n);
    auto gz = _gz.narrow(0, 0, n);
    // dW = g^T h and db = sum of g over rows, written or (later chunks) added.
    auto weight_grads = [&](const torch::nn::Linear& layer, const torch::Tensor& g, const torch::Tensor& h) {
        auto gw = layer->weight.grad();
        auto gb = layer->bias.grad();
        if (!accumulate) {
            at::mm_out(gw, g.t(), h);
            at::sum_out(gb, g, {0});
        } else {
            gw.addmm_(g.t(), h);
            gb.add_(g.sum(0));
        }
    };
    const auto input = _in.narrow(0, first, n);
    // Output layer: y = g (a_{L-1} W^T + b), g the output gate (1 without one).
    const torch::Tensor gy = s.gated() ? grad_y * _gate.narrow(0, 0, n) : grad_y;
    weight_grads(lin[L], gy, _a[L - 1].narrow(0, 0, n));
    at::mm_out(ga, gy, lin[L]->weight);
    for (int l = L - 1; l >= 0; --l) {
        const auto a = _a[l].narrow(0, 0, n);
        if (s.film) {
            // a = act(m), m = z (1 + gamma) + beta: dm = act'(m) da; dgamma = dm z; dbeta = dm; dz = dm (1 + gamma).
            const auto z = _z[l].narrow(0, 0, n);
            const auto gb = _gb.narrow(0, 0, n);
            auto ggb = _ggb.narrow(0, 0, n);
            auto dgamma = ggb.narrow(1, 2 * l * H, H), dbeta = ggb.narrow(1, (2 * l + 1) * H, H);
            // (into the contiguous gz first: LibTorch 1.13's gelu_backward_out gave wrong values into a
            // strided slice of _ggb here, measured by the autograd test; silu and tanh did not)
            activate_backward(ga, _m[l].narrow(0, 0, n), a, gz);
            dbeta.copy_(gz);
            at::mul_out(dgamma, gz, z);
            gz.addcmul_(dbeta, gb.narrow(1, 2 * l * H, H));
        } else {
            activate_backward(ga, _z[l].narrow(0, 0, n), a, gz);
        }
        weight_grads(lin[l], gz, l > 0 ? _a[l - 1].narrow(0, 0, n) : input.narrow(1, 0, s.first_width()));
        if (l > 0) at::mm_out(ga, gz, lin[l]->weight);
    }
    if (s.film) { // back through the modulation layer and the embedding
        const auto e = _e.narrow(0, 0, n), ggb = _ggb.narrow(0, 0, n);
        auto ge = _ge.narrow(0, 0, n), gze = _gze.narrow(0, 0, n);
        weight_grads(_model->film(), ggb, e);
        at::mm_out(ge, ggb, _model->film()->weight);
        activate_backward(ge, _ze.narrow(0, 0, n), e, gze);
        weight_grads(_model->embed(), gze, input.narrow(1, s.dim, s.embed_width()));
    }
}

void MLPWorkspace::tangent_rows(std::int64_t first, std::int64_t n, const torch::Tensor& dx, double dt, double dgap) {
    const auto& lin = _model->linears();
    const auto& s = _model->spec();
    const int L = s.layers, H = s.hidden, D = s.dim;
    const auto in = _in.narrow(0, first, n);
    // Tangent of the input row [x, sin(w t), cos(w t)(, sin(w g), cos(w g)), c]:
    // [dx, w cos(w t) dt, -w sin(w t) dt(, w cos(w g) dg, -w sin(w g) dg), 0], from the stored sin and cos.
    auto din = _din.narrow(0, 0, n);
    din.narrow(1, 0, D).copy_(dx);
    const int half = s.time_features / 2;
    for (int k = 0; k < s.time_inputs && half > 0; ++k) {
        const double d = k == 0 ? dt : dgap;
        const int off = D + k * s.time_features;
        auto dsin = din.narrow(1, off, half), dcos = din.narrow(1, off + half, half);
        at::mul_out(dsin, in.narrow(1, off + half, half), _model->omega());
        dsin.mul_(d);
        at::mul_out(dcos, in.narrow(1, off, half), _model->omega());
        dcos.mul_(-d);
    }
    if (s.cond_dim > 0) din.narrow(1, D + s.time_width(), s.cond_dim).zero_();
    torch::Tensor dh = din;
    torch::Tensor dgb;
    if (s.film) { // the modulation's tangent: d[gamma, beta] = W_film act'(ze) (W_embed de_in)
        auto dze = _dze.narrow(0, 0, n), de = _de.narrow(0, 0, n);
        dgb = _dgb.narrow(0, 0, n);
        at::mm_out(dze, din.narrow(1, D, s.embed_width()), _model->embed()->weight.t());
        activate_backward(dze, _ze.narrow(0, 0, n), _e.narrow(0, 0, n), de);
        at::mm_out(dgb, de, _model->film()->weight.t());
        dh = din.narrow(1, 0, D);
    }
    auto dz = _dz.narrow(0, 0, n), da = _da.narrow(0, 0, n);
    for (int l = 0; l < L; ++l) {
        at::mm_out(dz, dh, lin[l]->weight.t()); // dz = dh W^T (the bias has no tangent)
        const auto a = _a[l].narrow(0, 0, n);
        if (s.film) { // m = z (1 + gamma) + beta: dm = dz (1 + gamma) + z dgamma + dbeta
            const auto gb = _gb.narrow(0, 0, n);
            dz.addcmul_(dz, gb.narrow(1, 2 * l * H, H));
            dz.addcmul_(_z[l].narrow(0, 0, n), dgb.narrow(1, 2 * l * H, H));
            dz.add_(dgb.narrow(1, (2 * l + 1) * H, H));
            activate_backward(dz, _m[l].narrow(0, 0, n), a, da); // da = act'(m) dm (elementwise)
        } else {
            activate_backward(dz, _z[l].narrow(0, 0, n), a, da);
        }
        dh = da;
    }
    auto dy = _dy.narrow(0, 0, n);
    at::mm_out(dy, dh, lin[L]->weight.t());
    if (s.gated()) dy.mul_(_gate.narrow(0, 0, n)); // the condition has no tangent: d(g net) = g dnet
}

const torch::Tensor& MLPWorkspace::forward_jvp(const torch::Tensor& dx, double dt, double dgap) {
    torch::NoGradGuard no_grad;
    reserve_activations(_rows);
    forward_rows(0, _rows);
    tangent_rows(0, _rows, dx, dt, dgap);
    _dy_rows = _dy.narrow(0, 0, _rows);
    return _dy_rows;
}

const torch::Tensor& MLPWorkspace::forward() {
    torch::NoGradGuard no_grad;
    reserve_activations(_rows);
    forward_rows(0, _rows);
    return _y_rows;
}

void MLPWorkspace::backward(const torch::Tensor& grad_y) {
    torch::NoGradGuard no_grad;
    backward_rows(0, _rows, grad_y, false);
}

double MLPWorkspace::mse_step(const torch::Tensor& target, double scale, std::int64_t chunk,
                              const torch::Tensor& weight) {
    torch::NoGradGuard no_grad;
    double loss = 0.0;
    chunk = std::max<std::int64_t>(1, std::min(chunk, _rows));
    reserve_activations(chunk);
    if (_rows == 0) { // no rows here: zero gradients
        _model->flat_gradients().zero_();
        return 0.0;
    }
    for (std::int64_t first = 0; first < _rows; first += chunk) {
        const std::int64_t n = std::min(chunk, _rows - first);
        forward_rows(first, n);
        auto gy = _gy.narrow(0, 0, n);
        at::sub_out(gy, _y_rows, target.narrow(0, first, n));
        if (weight.defined()) {
            const auto w = weight.narrow(0, first, n).unsqueeze(1);
            loss += gy.pow(2).mul_(w).sum().item<double>();
            gy.mul_(w);
        } else {
            loss += gy.view({-1}).dot(gy.view({-1})).item<double>();
        }
        gy.mul_(2.0 * scale);
        backward_rows(first, n, gy, first > 0);
    }
    return loss * scale;
}

double MLPWorkspace::meanflow_step(const torch::Tensor& v, const torch::Tensor& gap, double power, double scale,
                                   std::int64_t chunk) {
    torch::NoGradGuard no_grad;
    double loss = 0.0;
    chunk = std::max<std::int64_t>(1, std::min(chunk, _rows));
    reserve_activations(chunk);
    if (_rows == 0) {
        _model->flat_gradients().zero_();
        return 0.0;
    }
    for (std::int64_t first = 0; first < _rows; first += chunk) {
        const std::int64_t n = std::min(chunk, _rows - first);
        const auto vr = v.narrow(0, first, n);
        forward_rows(first, n);
        // du/ds along the trajectory: the tangent (v, 1, 0) on (x, s, t) is (v, 1, -1) on (x, s, t - s).
        tangent_rows(first, n, vr, 1.0, -1.0);
        // u - target with the stop-gradient target v + (t - s) du (Geng et al. 2025, eq. 10 in
        // kinflow's direction: s the noisier time).
        auto gy = _gy.narrow(0, 0, n);
        at::sub_out(gy, _y_rows, vr);
        gy.addcmul_(gap.narrow(0, first, n).reshape({-1, 1}), _dy.narrow(0, 0, n), -1.0);
        const auto l = gy.pow(2).sum(1);
        loss += l.sum().item<double>();
        // Adaptive weight 1 / (sg(l) + c)^p, c = 1e-3 (Geng et al. 2025, sec. 4.3).
        if (power > 0.0) gy.mul_(l.add(1e-3).pow_(-power).unsqueeze(1));
        gy.mul_(2.0 * scale);
        backward_rows(first, n, gy, first > 0);
    }
    return loss * scale;
}

void MLPWorkspace::evaluate(const torch::Tensor& x, double t, const torch::Tensor& cond_row, torch::Tensor& out,
                            double gap) {
    torch::NoGradGuard no_grad;
    const auto& s = _model->spec();
    const auto& lin = _model->linears();
    const std::int64_t rows = x.size(0);
    reserve_activations(rows);
    // The time features and conditions are the same for every row: concat folds W0[:, dim:] e
    // into the first bias; film evaluates the embedding and modulation once.
    const int extra = s.time_width() + s.cond_dim;
    torch::Tensor bias0 = lin[0]->bias;
    torch::Tensor gb;
    if (extra > 0) {
        auto& e = _extra;
        e.clear();
        // The same float arithmetic as set_features(): w_k t rounded to float, then sin/cos.
        for (int k = 0; k < s.time_inputs; ++k) {
            const float tk = static_cast<float>(k == 0 ? t : gap);
            for (float w : _omega) e.push_back(std::sin(w * tk));
            for (float w : _omega) e.push_back(std::cos(w * tk));
        }
        auto c = s.cond_dim > 0 ? cond_row.contiguous() : torch::Tensor();
        for (int k = 0; k < s.cond_dim; ++k) e.push_back(c.data_ptr<float>()[k]);
        const auto erow = torch::from_blob(e.data(), {extra});
        if (s.film) {
            _eval_gb = _model->modulation(erow.reshape({1, extra})).reshape({-1});
            gb = _eval_gb;
        } else {
            if (!_bias0.defined() || _bias0.numel() != s.hidden) _bias0 = torch::empty({s.hidden});
            at::addmv_out(_bias0, lin[0]->bias, lin[0]->weight.narrow(1, s.dim, extra), erow);
            bias0 = _bias0;
        }
    }
    const int H = s.hidden;
    torch::Tensor h = x;
    for (int l = 0; l < s.layers; ++l) {
        auto z = _z[l].narrow(0, 0, rows);
        auto a = _a[l].narrow(0, 0, rows);
        if (l == 0) at::addmm_out(z, bias0, x, lin[0]->weight.narrow(1, 0, s.dim).t());
        else at::addmm_out(z, lin[l]->bias, h, lin[l]->weight.t());
        if (gb.defined()) {
            z.mul_(1.0 + gb.narrow(0, 2 * l * H, H));
            z.add_(gb.narrow(0, (2 * l + 1) * H, H));
        }
        activate(z, a);
        h = a;
    }
    at::addmm_out(out, lin[s.layers]->bias, h, lin[s.layers]->weight.t());
    if (s.gated()) out.mul_(s.gate(cond_row.contiguous().data_ptr<float>()[s.gate_column]));
}

// ---- JVP routes ----------------------------------------------------------------------------------

const char* to_string(JvpRoute r) {
    switch (r) {
    case JvpRoute::Hand: return "hand";
    case JvpRoute::ForwardAD: return "forward-ad";
    case JvpRoute::DoubleBackward: return "double-backward";
    case JvpRoute::CentralDifference: return "central-difference";
    }
    return "?";
}

OutputJvp output_jvp(MLP& model, const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                     const torch::Tensor& gap, const torch::Tensor& dx, double dt, double dgap, JvpRoute route) {
    const bool two = model->spec().time_inputs == 2;
    switch (route) {
    case JvpRoute::Hand: {
        MLPWorkspace ws(model);
        ws.set_features(x, t, cond, gap);
        const auto dy = ws.forward_jvp(dx, dt, dgap).clone();
        return {ws.forward().clone(), dy};
    }
    case JvpRoute::ForwardAD: {
        // LibTorch 1.13's forward mode: dual tensors (primal, tangent) at a level; every op of
        // MLP::forward (linear, sin/cos, cat, the activations) has a forward derivative.
        torch::NoGradGuard no_grad;
        const auto level = torch::autograd::forward_ad::enter_dual_level();
        OutputJvp r;
        try {
            const auto xd = at::_make_dual(x, dx, static_cast<std::int64_t>(level));
            const auto td = at::_make_dual(t, torch::full_like(t, dt), static_cast<std::int64_t>(level));
            const auto gd = two ? at::_make_dual(gap, torch::full_like(gap, dgap), static_cast<std::int64_t>(level))
                                : torch::Tensor();
            const auto y = model->forward(xd, td, cond, gd);
            const auto [primal, tangent] = at::_unpack_dual(y, static_cast<std::int64_t>(level));
            r = {primal.clone(), tangent.clone()};
        } catch (...) {
            torch::autograd::forward_ad::exit_dual_level(level);
            throw;
        }
        torch::autograd::forward_ad::exit_dual_level(level);
        return r;
    }
    case JvpRoute::DoubleBackward: {
        // J v = d/dw (J^T w . v): one backward with create_graph, then one through it.
        torch::AutoGradMode grad(true);
        const auto xr = x.detach().requires_grad_(true);
        const auto tr = t.detach().requires_grad_(true);
        const auto gr = two ? gap.detach().requires_grad_(true) : torch::Tensor();
        const auto y = model->forward(xr, tr, cond, gr);
        const auto w = torch::zeros_like(y).requires_grad_(true);
        std::vector<torch::Tensor> inputs{xr, tr};
        if (two) inputs.push_back(gr);
        const auto g = torch::autograd::grad({y}, inputs, {w}, true, true, true);
        auto z = (g[0] * dx).sum();
        if (g[1].defined()) z = z + g[1].sum() * dt;
        if (two && g[2].defined()) z = z + g[2].sum() * dgap;
        const auto dy = torch::autograd::grad({z}, {w})[0];
        return {y.detach(), dy.detach()};
    }
    case JvpRoute::CentralDifference: {
        torch::NoGradGuard no_grad;
        MLP m64(model->spec());
        m64->flat_parameters().copy_(model->flat_parameters());
        m64->to(torch::kFloat64);
        // float64: truncation (eps w_max)^2 / 6 ~ 2e-9 with time frequencies up to w = 100 (eps = 1e-4
        // would give 2e-5 on those features), round-off ~1e-16 / eps.
        const double eps = 1e-6;
        const auto x64 = x.to(torch::kFloat64), t64 = t.to(torch::kFloat64), dx64 = dx.to(torch::kFloat64);
        const auto c64 = cond.defined() ? cond.to(torch::kFloat64) : torch::Tensor();
        const auto g64 = two ? gap.to(torch::kFloat64) : torch::Tensor();
        auto at_eps = [&](double e) {
            return m64->forward(x64 + e * dx64, t64 + e * dt, c64, two ? g64 + e * dgap : g64);
        };
        return {m64->forward(x64, t64, c64, g64), (at_eps(eps) - at_eps(-eps)) / (2.0 * eps)};
    }
    }
    throw Error("unknown JVP route");
}

// ---- model file ----------------------------------------------------------------------------

namespace {
torch::Tensor to_tensor(const std::vector<double>& v) {
    return torch::tensor(v.empty() ? std::vector<double>{} : v, torch::kFloat64).clone();
}
std::vector<double> to_vector(const torch::Tensor& t) {
    auto c = t.to(torch::kFloat64).contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}
} // namespace

ModelInfo make_model_info(const TrainConfig& c, const Dataset& data) {
    ModelInfo info;
    info.spec.dim = data.dim();
    info.spec.cond_dim = data.cond_dim();
    info.spec.hidden = c.hidden;
    info.spec.layers = c.layers;
    info.spec.activation = c.activation;
    info.spec.time_features = c.time_features;
    info.spec.time_inputs = two_time(c.objective) ? 2 : 1;
    info.spec.time_max_frequency = c.time_max_frequency;
    info.spec.film = c.film;
    info.spec.film_width = c.film_width;
    info.spec.potential = c.potential;
    info.objective = c.objective;
    info.conditions = c.data.conditions;
    info.norm = data.normalization();
    info.source = c.source_text;
    info.data = c.data_text;
    info.files = c.data.files;
    info.target_time = data.parts().front().time;
    if (c.objective == Objective::TFM) {
        double lo = data.parts().front().source_time, hi = data.parts().front().time;
        for (const auto& p : data.parts()) {
            lo = std::min(lo, p.source_time);
            hi = std::max(hi, p.time);
        }
        info.time_origin = lo;
        info.time_scale = hi - lo;
    }
    if (c.time_gate > 0.0) {
        int k = 0;
        while (c.data.conditions[static_cast<std::size_t>(k)] != "time") ++k;
        const double t0 = data.parts().front().source_time;
        for (const auto& p : data.parts()) {
            if (p.source_time != t0) {
                throw Error("train.time_gate: the data's source snapshots are at different times (" + std::to_string(t0) +
                            ", " + std::to_string(p.source_time) + "); the gate needs one source time");
            }
        }
        const double m = info.norm.cond_mean[static_cast<std::size_t>(k)], sd = info.norm.cond_std[static_cast<std::size_t>(k)];
        info.spec.gate_column = k;
        // the same float32 rounding as the data's normalised conditions: g = 0 exactly at t0
        info.spec.gate_origin = static_cast<float>((t0 - m) / sd);
        info.spec.gate_scale = c.time_gate / sd;
    }
    info.beta_min = c.beta_min;
    info.beta_max = c.beta_max;
    info.vp_eps = c.vp_eps;
    info.corrector = c.corrector;
    info.deck = c.deck;
    return info;
}

void write_info(torch::serialize::OutputArchive& ar, const ModelInfo& i) {
    ar.write("kinflow_model", c10::IValue(static_cast<std::int64_t>(1)));
    ar.write("objective", c10::IValue(std::string(to_string(i.objective))));
    ar.write("dim", c10::IValue(static_cast<std::int64_t>(i.spec.dim)));
    ar.write("cond_dim", c10::IValue(static_cast<std::int64_t>(i.spec.cond_dim)));
    ar.write("hidden", c10::IValue(static_cast<std::int64_t>(i.spec.hidden)));
    ar.write("layers", c10::IValue(static_cast<std::int64_t>(i.spec.layers)));
    ar.write("activation", c10::IValue(std::string(to_string(i.spec.activation))));
    ar.write("time_features", c10::IValue(static_cast<std::int64_t>(i.spec.time_features)));
    ar.write("time_inputs", c10::IValue(static_cast<std::int64_t>(i.spec.time_inputs)));
    ar.write("time_max_frequency", c10::IValue(i.spec.time_max_frequency));
    ar.write("condition_embedding", c10::IValue(std::string(i.spec.film ? "film" : "concat")));
    ar.write("film_width", c10::IValue(static_cast<std::int64_t>(i.spec.film_width)));
    ar.write("score_model", c10::IValue(std::string(i.spec.potential ? "potential" : "vector")));
    ar.write("output_gate_column", c10::IValue(static_cast<std::int64_t>(i.spec.gate_column)));
    ar.write("output_gate_origin", c10::IValue(i.spec.gate_origin));
    ar.write("output_gate_scale", c10::IValue(i.spec.gate_scale));
    ar.write("conditions", c10::IValue(join_attribute(i.conditions, ',')));
    ar.write("mean", to_tensor(i.norm.mean));
    ar.write("std", to_tensor(i.norm.std));
    ar.write("source_mean", to_tensor(i.norm.source_mean));
    ar.write("source_std", to_tensor(i.norm.source_std));
    ar.write("cond_mean", to_tensor(i.norm.cond_mean));
    ar.write("cond_std", to_tensor(i.norm.cond_std));
    ar.write("source", c10::IValue(i.source));
    ar.write("data", c10::IValue(i.data));
    ar.write("files", c10::IValue(join_attribute(i.files, '\n')));
    ar.write("target_time", c10::IValue(i.target_time));
    ar.write("time_origin", c10::IValue(i.time_origin));
    ar.write("time_scale", c10::IValue(i.time_scale));
    ar.write("beta_min", c10::IValue(i.beta_min));
    ar.write("beta_max", c10::IValue(i.beta_max));
    ar.write("vp_eps", c10::IValue(i.vp_eps));
    ar.write("corrector", c10::IValue(i.corrector));
    ar.write("step", c10::IValue(i.step));
    ar.write("deck", c10::IValue(i.deck));
}

ModelInfo read_info(torch::serialize::InputArchive& ar, const std::string& path) {
    c10::IValue v;
    if (!ar.try_read("kinflow_model", v)) throw Error("'" + path + "': not a kinflow model file");
    ModelInfo i;
    try {
        auto get = [&](const char* key) {
            c10::IValue x;
            ar.read(key, x);
            return x;
        };
        auto tensor = [&](const char* key) {
            torch::Tensor t;
            ar.read(key, t);
            return to_vector(t);
        };
        i.objective = parse_objective(get("objective").toStringRef());
        i.spec.dim = static_cast<int>(get("dim").toInt());
        i.spec.cond_dim = static_cast<int>(get("cond_dim").toInt());
        i.spec.hidden = static_cast<int>(get("hidden").toInt());
        i.spec.layers = static_cast<int>(get("layers").toInt());
        i.spec.activation = parse_activation(get("activation").toStringRef());
        i.spec.time_features = static_cast<int>(get("time_features").toInt());
        c10::IValue ti; // absent before meanflow: one time input
        if (ar.try_read("time_inputs", ti)) i.spec.time_inputs = static_cast<int>(ti.toInt());
        if (ar.try_read("time_max_frequency", ti)) i.spec.time_max_frequency = ti.toDouble(); // absent: 100
        c10::IValue emb; // absent in model files written before FiLM: concat
        i.spec.film = ar.try_read("condition_embedding", emb) && emb.toStringRef() == "film";
        if (i.spec.film) i.spec.film_width = static_cast<int>(get("film_width").toInt());
        c10::IValue sm; // absent before potential score models: vector
        i.spec.potential = ar.try_read("score_model", sm) && sm.toStringRef() == "potential";
        c10::IValue gv; // absent before train.time_gate: no gate
        if (ar.try_read("output_gate_column", gv)) {
            i.spec.gate_column = static_cast<int>(gv.toInt());
            i.spec.gate_origin = get("output_gate_origin").toDouble();
            i.spec.gate_scale = get("output_gate_scale").toDouble();
        }
        i.conditions = split_attribute(get("conditions").toStringRef(), ',');
        i.norm.mean = tensor("mean");
        i.norm.std = tensor("std");
        i.norm.source_mean = tensor("source_mean");
        i.norm.source_std = tensor("source_std");
        i.norm.cond_mean = tensor("cond_mean");
        i.norm.cond_std = tensor("cond_std");
        i.source = get("source").toStringRef();
        i.data = get("data").toStringRef();
        i.files = split_attribute(get("files").toStringRef(), '\n');
        i.target_time = get("target_time").toDouble();
        c10::IValue tv; // absent before tfm
        if (ar.try_read("time_origin", tv)) i.time_origin = tv.toDouble();
        if (ar.try_read("time_scale", tv)) i.time_scale = tv.toDouble();
        i.beta_min = get("beta_min").toDouble();
        i.beta_max = get("beta_max").toDouble();
        i.vp_eps = get("vp_eps").toDouble();
        c10::IValue cv; // absent before correctors
        if (ar.try_read("corrector", cv)) i.corrector = cv.toStringRef();
        i.step = get("step").toInt();
        i.deck = get("deck").toStringRef();
    } catch (const c10::Error& e) {
        throw Error("'" + path + "': damaged kinflow model file (" + e.what_without_backtrace() + ")");
    }
    if (!i.spec.gate_valid()) {
        throw Error("'" + path + "': damaged kinflow model file (output gate column " + std::to_string(i.spec.gate_column) +
                    " of " + std::to_string(i.spec.cond_dim) + " conditions, scale " + std::to_string(i.spec.gate_scale) + ")");
    }
    return i;
}

namespace {
/// Create the parent directory of `path`; returns the temporary name to write before renaming.
std::string temp_path_for(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec) throw Error("cannot create directory '" + parent.string() + "': " + ec.message());
    return path + ".tmp";
}
} // namespace

void save_archive(torch::serialize::OutputArchive& ar, const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const std::string tmp = temp_path_for(path);
    try {
        ar.save_to(tmp);
    } catch (const c10::Error& e) {
        throw Error("cannot write '" + tmp + "': " + e.what_without_backtrace());
    }
    fs::rename(tmp, path, ec);
    if (ec) throw Error("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
}

void load_archive(torch::serialize::InputArchive& ar, const std::string& path) {
    if (!std::filesystem::is_regular_file(path)) throw Error("'" + path + "': no such file");
    try {
        ar.load_from(path);
    } catch (const c10::Error& e) {
        throw Error("'" + path + "': not a kinflow model file (" + e.what_without_backtrace() + ")");
    }
}

void save_model_file(const std::string& path, const ModelInfo& info, const torch::Tensor& params) {
    torch::serialize::OutputArchive ar;
    write_info(ar, info);
    ar.write("params", params.detach().clone());
    save_archive(ar, path);
}

namespace {
/// A float32 [rows, cols] (cols = 0: 1D [rows]) or float64 dataset `name` in `group`, written whole.
void write_dataset(hid_t group, const std::string& name, hid_t type, const void* data, hsize_t rows, hsize_t cols) {
    const hsize_t dims[2] = {rows, cols};
    io::Handle space(H5Screate_simple(cols > 0 ? 2 : 1, dims, nullptr), H5Sclose, "H5Screate_simple");
    io::Handle d(H5Dcreate2(group, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
                 "create dataset " + name);
    if (rows * std::max<hsize_t>(cols, 1) > 0)
        io::h5check_status(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write " + name);
}

void write_tensor(hid_t group, const std::string& name, const torch::Tensor& t) {
    const auto c = t.detach().to(torch::kFloat32).contiguous();
    write_dataset(group, name, H5T_NATIVE_FLOAT, c.data_ptr<float>(), static_cast<hsize_t>(c.size(0)),
                  c.dim() == 2 ? static_cast<hsize_t>(c.size(1)) : 0);
}

void write_vector(hid_t group, const std::string& name, const std::vector<double>& v) {
    write_dataset(group, name, H5T_NATIVE_DOUBLE, v.data(), v.size(), 0);
}

io::Handle make_group(hid_t parent, const std::string& name) {
    return io::Handle(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                      "create group " + name);
}
} // namespace

void save_model_h5(const std::string& path, const ModelInfo& info, const torch::Tensor& params, std::uint64_t seed,
                   int mpi_ranks) {
    namespace fs = std::filesystem;
    const auto& s = info.spec;
    // The weights through the network's own layout: a model holding `params` names each layer's slice.
    MLP model(s);
    KINFLOW_REQUIRE(params.numel() == model->parameter_count(), "weights do not match the architecture");
    {
        torch::NoGradGuard no_grad;
        model->flat_parameters().copy_(params.detach().reshape({-1}));
    }
    std::error_code ec;
    const std::string tmp = temp_path_for(path);
    try {
        io::silence_hdf5_errors();
        io::Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate");
        io::checksummed_format(fapl);
        io::Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), H5Fclose, "create '" + tmp + "'");
        io::write_attr(file, "kinflow_model_h5", std::int64_t{1});
        io::write_attr(file, "kinflow_version", std::string(kVersion));
        io::write_attr(file, "producer", std::string("trainer"));
        io::write_attr(file, "deck", info.deck);
        io::write_attr(file, "seed", static_cast<std::int64_t>(seed));
        io::write_attr(file, "mpi_ranks", static_cast<std::int32_t>(mpi_ranks));
        io::write_attr(file, "dim", static_cast<std::int32_t>(s.dim));
        io::write_attr(file, "objective", std::string(to_string(info.objective)));
        io::write_attr(file, "activation", std::string(to_string(s.activation)));
        io::write_attr(file, "condition_embedding", std::string(s.film ? "film" : "concat"));
        io::write_attr(file, "cond_dim", static_cast<std::int64_t>(s.cond_dim));
        io::write_attr(file, "hidden", static_cast<std::int64_t>(s.hidden));
        io::write_attr(file, "layers", static_cast<std::int64_t>(s.layers));
        io::write_attr(file, "time_features", static_cast<std::int64_t>(s.time_features));
        io::write_attr(file, "time_inputs", static_cast<std::int64_t>(s.time_inputs));
        io::write_attr(file, "film_width", static_cast<std::int64_t>(s.film ? s.film_width : 0));
        std::vector<std::int64_t> widths{s.first_width()};
        for (int l = 0; l < s.layers; ++l) widths.push_back(s.hidden);
        widths.push_back(s.outputs());
        io::write_attr(file, "layer_widths", widths);
        io::write_attr(file, "score_model", std::string(s.potential ? "potential" : "vector"));
        io::write_attr(file, "output_gate_column", static_cast<std::int64_t>(s.gate_column));
        io::write_attr(file, "output_gate_origin", s.gate_origin);
        io::write_attr(file, "output_gate_scale", s.gate_scale);
        const std::string times = s.time_inputs == 2
                                      ? "sin(omega s), cos(omega s), sin(omega (t - s)), cos(omega (t - s)), cond"
                                      : "sin(omega t), cos(omega t), cond";
        io::write_attr(file, "input_layout", std::string(s.film ? "x | embed: " : "x, ") + times);
        io::write_attr(file, "conditions", join_attribute(info.conditions, ','));
        io::write_attr(file, "source", info.source);
        io::write_attr(file, "data", info.data);
        io::write_attr(file, "files", join_attribute(info.files, '\n'));
        io::write_attr(file, "target_time", info.target_time);
        io::write_attr(file, "time_origin", info.time_origin);
        io::write_attr(file, "time_scale", info.time_scale);
        io::write_attr(file, "beta_min", info.beta_min);
        io::write_attr(file, "beta_max", info.beta_max);
        io::write_attr(file, "vp_eps", info.vp_eps);
        io::write_attr(file, "step", info.step);
        io::write_attr(file, "corrector", info.corrector);

        auto net = make_group(file, "network");
        write_tensor(net, "time_frequencies", model->omega());
        auto layer = [&](const std::string& name, const torch::nn::Linear& lin) {
            auto g = make_group(net, name);
            write_tensor(g, "weight", lin->weight);
            write_tensor(g, "bias", lin->bias);
        };
        const auto& linears = model->linears();
        for (std::size_t l = 0; l < linears.size(); ++l) layer("linear" + std::to_string(l), linears[l]);
        if (s.film) {
            layer("embed", model->embed());
            layer("film", model->film());
        }
        auto norm = make_group(file, "normalization");
        write_vector(norm, "mean", info.norm.mean);
        write_vector(norm, "std", info.norm.std);
        write_vector(norm, "source_mean", info.norm.source_mean);
        write_vector(norm, "source_std", info.norm.source_std);
        write_vector(norm, "cond_mean", info.norm.cond_mean);
        write_vector(norm, "cond_std", info.norm.cond_std);
        io::h5check_status(H5Fflush(file, H5F_SCOPE_GLOBAL), "flush '" + tmp + "'");
    } catch (const Error& e) {
        fs::remove(tmp, ec);
        throw Error("cannot write '" + path + "': " + e.what());
    }
    fs::rename(tmp, path, ec);
    if (ec) throw Error("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
}

LoadedModel load_model_file(const std::string& path) {
    torch::serialize::InputArchive ar;
    load_archive(ar, path);
    LoadedModel m;
    m.info = read_info(ar, path);
    m.model = MLP(m.info.spec);
    torch::Tensor params;
    try {
        ar.read("params", params);
    } catch (const c10::Error& e) {
        throw Error("'" + path + "': damaged kinflow model file (no weights)");
    }
    if (params.numel() != m.model->parameter_count()) throw Error("'" + path + "': weights do not match the architecture");
    torch::NoGradGuard no_grad;
    m.model->flat_parameters().copy_(params);
    return m;
}

} // namespace kinflow::learn
