// Losses, the data-parallel trainer and kinflow-train's entry.
#include "kinflow/learn/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "kinflow/comm/allreduce.hpp"
#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/learn/loss.hpp"
#include "kinflow/learn/path.hpp"
#include "kinflow/learn/score.hpp"
#include "kinflow/learn/train.hpp"
#include "kinflow/metrics/assignment.hpp"

namespace kinflow::learn {

// ---- losses ------------------------------------------------------------------------------------

double mse_share(const torch::Tensor& y, const torch::Tensor& target, std::int64_t global_rows, torch::Tensor& grad_y) {
    if (y.size(0) == 0) return 0.0;
    const double scale = 1.0 / (static_cast<double>(global_rows) * static_cast<double>(y.size(1)));
    at::sub_out(grad_y, y, target);
    const double loss = grad_y.pow(2).sum().item<double>() * scale;
    grad_y.mul_(2.0 * scale);
    return loss;
}

std::vector<std::int64_t> grouped_assignment(const torch::Tensor& a, const torch::Tensor& b, const std::vector<int>& group) {
    const std::int64_t n = a.size(0);
    const int dim = static_cast<int>(a.size(1));
    std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
    const float* pa = a.data_ptr<float>();
    const float* pb = b.data_ptr<float>();
    bool one_group = true;
    for (std::int64_t i = 1; i < n; ++i) one_group = one_group && group[i] == group[0];
    if (one_group) {
        const auto p = metrics::exact_assignment(pa, pb, static_cast<std::size_t>(n), dim);
        for (std::int64_t i = 0; i < n; ++i) perm[i] = p[i];
        return perm;
    }
    std::vector<int> labels(group.begin(), group.end());
    std::sort(labels.begin(), labels.end());
    labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
    std::vector<float> ga, gb;
    std::vector<std::int64_t> rows;
    for (int g : labels) {
        rows.clear();
        ga.clear();
        gb.clear();
        for (std::int64_t i = 0; i < n; ++i) {
            if (group[i] != g) continue;
            rows.push_back(i);
            ga.insert(ga.end(), pa + i * dim, pa + (i + 1) * dim);
            gb.insert(gb.end(), pb + i * dim, pb + (i + 1) * dim);
        }
        const auto p = metrics::exact_assignment(ga.data(), gb.data(), rows.size(), dim);
        for (std::size_t i = 0; i < rows.size(); ++i) perm[rows[i]] = rows[p[i]];
    }
    return perm;
}

// ---- MeanFlow times ------------------------------------------------------------------------------

void meanflow_times(std::uint64_t seed, std::int64_t step, const std::vector<std::int64_t>& slots, double fraction,
                    float* s, float* t) {
    // Stream User + 6 (the dataset uses 1-3, kinflow-sample 4-5).
    const CounterRng rng(seed, static_cast<RngPurpose>(static_cast<std::uint32_t>(RngPurpose::User) + 6));
    constexpr double kMean = 0.0, kStd = 1.6;
    const auto st = static_cast<std::uint64_t>(step);
    for (std::size_t i = 0; i < slots.size(); ++i) {
        double z[4], u[4];
        rng.normal4(st, static_cast<std::uint64_t>(slots[i]), 0, z);
        rng.uniform4(st, static_cast<std::uint64_t>(slots[i]), 1, u);
        const double a = 1.0 / (1.0 + std::exp(-(kMean + kStd * z[0])));
        const double b = 1.0 / (1.0 + std::exp(-(kMean + kStd * z[1])));
        const bool apart = u[0] < fraction;
        s[i] = static_cast<float>(std::min(a, b));
        t[i] = apart ? static_cast<float>(std::max(a, b)) : s[i];
    }
}

// ---- reflow pairs ---------------------------------------------------------------------------------

namespace {
/// A model that turns standard normal noise into samples of `data` (reflow's teacher, a
/// corrector's first stage): unconditional, source = gaussian, the data's dimension and
/// normalisation (so both work in the same normalised coordinates). Throws Error otherwise.
LoadedModel load_noise_model(const std::string& path, const Dataset& data, const char* role) {
    auto m = load_model_file(path);
    const auto& ti = m.info;
    if (ti.spec.cond_dim > 0 || ti.source != "gaussian")
        throw Error(std::string(role) + " must be unconditional with source = gaussian");
    const int d = data.dim();
    if (ti.spec.dim != d) throw Error(std::string(role) + " has dim " + std::to_string(ti.spec.dim) + ", the data " + std::to_string(d));
    const auto& n = data.normalization();
    for (int k = 0; k < d; ++k) {
        if (std::fabs(ti.norm.mean[k] - n.mean[k]) > 1e-9 * (1.0 + std::fabs(n.mean[k])) ||
            std::fabs(ti.norm.std[k] - n.std[k]) > 1e-9 * n.std[k]) {
            throw Error(std::string(role) + " was trained on other data (its train.data = " + ti.data + "): normalisations differ");
        }
    }
    return m;
}

/// Standard normal rows [rows, d] of global indices [begin, begin + rows), keyed by (seed, index):
/// the same rows on any rank count (stream User + 7).
std::vector<float> keyed_noise(std::uint64_t seed, std::int64_t begin, std::int64_t rows, int d) {
    std::vector<float> x0(static_cast<std::size_t>(rows * d));
    const CounterRng rng(seed, static_cast<RngPurpose>(static_cast<std::uint32_t>(RngPurpose::User) + 7));
    for (std::int64_t i = 0; i < rows; ++i) {
        for (int b = 0; 4 * b < d; ++b) {
            double z[4];
            rng.normal4(0, static_cast<std::uint64_t>(begin + i), static_cast<std::uint32_t>(b), z);
            for (int k = 4 * b; k < std::min(d, 4 * b + 4); ++k) x0[i * d + k] = static_cast<float>(z[k - 4 * b]);
        }
    }
    return x0;
}
void first_stage(MLPWorkspace& ws, torch::Tensor& x) {
    // One jump x <- x + u(x, 0, 1) (meanflow's and flowmap's one-evaluation sample), in chunks.
    torch::NoGradGuard no_grad;
    const std::int64_t chunk = 4096;
    auto out = torch::empty({std::min<std::int64_t>(chunk, x.size(0)), x.size(1)});
    for (std::int64_t b = 0; b < x.size(0); b += chunk) {
        const std::int64_t len = std::min(chunk, x.size(0) - b);
        auto o = out.narrow(0, 0, len);
        ws.evaluate(x.narrow(0, b, len), 0.0, {}, o, 1.0);
        x.narrow(0, b, len).add_(o);
    }
}
} // namespace

void make_corrector_pairs(const TrainConfig& c, Dataset& data) {
    // Two-stage generation (Shen, Wang, Xin & Zhang, arXiv 2601.20024): the first stage's one-jump
    // samples y of fresh noise, one per data row, become the w2map network's source rows; the
    // minibatch W2 coupling re-pairs them with the data, so their pairing here is immaterial.
    auto first = load_noise_model(c.corrector, data, "the corrector's first stage");
    if (!two_time(first.info.objective))
        throw Error("a " + std::string(to_string(first.info.objective)) + " model; the first stage must be meanflow or flowmap");
    if (data.parts().size() != 1) throw Error("a corrector needs one data set (one file and snapshot, or builtin data)");
    const auto& p = data.parts().front();
    const int d = data.dim();
    std::vector<float> x0 = keyed_noise(c.seed, p.begin, p.end - p.begin, d);
    torch::NoGradGuard no_grad;
    torch::set_num_threads(c.threads);
    MLPWorkspace ws(first.model);
    auto x = torch::from_blob(x0.data(), {p.end - p.begin, d});
    first_stage(ws, x);
    data.set_pairs(data.n_global(), p.begin, p.end, std::move(x0), data.target());
}

void make_reflow_pairs(const comm::Communicator& comm, const TrainConfig& c, Dataset& data) {
    // Rectified flow (Liu, Gong, Liu 2022): fresh noise x0, the teacher's ODE carries it to x1';
    // fm on the coupling (x0, x1') learns a flow with straighter paths and the same end law.
    auto teacher = load_noise_model(c.teacher, data, "the teacher");
    const auto obj = teacher.info.objective;
    if (obj != Objective::FM && obj != Objective::OTFM && obj != Objective::Reflow) {
        throw Error("a " + std::string(to_string(obj)) + " model; reflow needs an fm, otfm or reflow teacher");
    }
    const int d = data.dim();
    const auto dec = comm::BlockDecomposition::make(c.reflow_pairs, comm.size(), comm.rank());
    const std::int64_t rows = dec.n_local();
    std::vector<float> x0 = keyed_noise(c.seed, dec.begin, rows, d);
    std::vector<float> x1(x0);
    torch::NoGradGuard no_grad;
    torch::set_num_threads(c.threads);
    MLPWorkspace ws(teacher.model);
    const std::int64_t steps = c.teacher_nfe / 4, chunk = 4096;
    const double h = 1.0 / static_cast<double>(steps);
    for (std::int64_t b = 0; b < rows; b += chunk) { // classical RK4, chunk by chunk
        const std::int64_t len = std::min(chunk, rows - b);
        auto x = torch::from_blob(x1.data() + b * d, {len, d});
        auto k1 = torch::empty_like(x), k2 = torch::empty_like(x), k3 = torch::empty_like(x), k4 = torch::empty_like(x);
        auto tmp = torch::empty_like(x);
        for (std::int64_t s = 0; s < steps; ++s) {
            const double t = static_cast<double>(s) * h;
            ws.evaluate(x, t, {}, k1);
            at::add_out(tmp, x, k1, 0.5 * h);
            ws.evaluate(tmp, t + 0.5 * h, {}, k2);
            at::add_out(tmp, x, k2, 0.5 * h);
            ws.evaluate(tmp, t + 0.5 * h, {}, k3);
            at::add_out(tmp, x, k3, h);
            ws.evaluate(tmp, t + h, {}, k4);
            k2.add_(k3);
            x.add_(k1, h / 6.0).add_(k2, h / 3.0).add_(k4, h / 6.0);
        }
    }
    data.set_pairs(c.reflow_pairs, dec.begin, dec.end, std::move(x0), std::move(x1));
}

// ---- trainer -----------------------------------------------------------------------------------

namespace {
MLP make_model(const TrainConfig& c, const Dataset& data) {
    torch::manual_seed(c.seed);
    ModelSpec spec;
    spec.dim = data.dim();
    spec.cond_dim = data.cond_dim();
    spec.hidden = c.hidden;
    spec.layers = c.layers;
    spec.activation = c.activation;
    spec.time_features = c.time_features;
    spec.time_inputs = two_time(c.objective) ? 2 : 1;
    spec.time_max_frequency = c.time_max_frequency;
    spec.film = c.film;
    spec.film_width = c.film_width;
    spec.potential = c.potential;
    MLP m(spec);
    if (!c.corrector.empty()) { // a near-identity corrector x + f(x): f = 0 at the start
        torch::NoGradGuard no_grad;
        m->linears().back()->weight.zero_();
        m->linears().back()->bias.zero_();
    }
    return m;
}

/// Rows of `src` reordered: out[i] = src[perm[i]].
void permute_rows(const torch::Tensor& src, const std::vector<std::int64_t>& perm, torch::Tensor& out) {
    const std::int64_t d = src.size(1);
    const float* s = src.data_ptr<float>();
    float* o = out.data_ptr<float>();
    for (std::size_t i = 0; i < perm.size(); ++i) std::copy(s + perm[i] * d, s + (perm[i] + 1) * d, o + i * d);
}

torch::Tensor rows_buffer(torch::Tensor& buf, std::int64_t rows, std::int64_t cols) {
    if (!buf.defined() || buf.size(0) < rows) buf = torch::empty({std::max<std::int64_t>(rows, 16), cols});
    return buf.narrow(0, 0, rows);
}
} // namespace

Trainer::Trainer(const comm::Communicator& comm, const TrainConfig& config, const Dataset& data)
    : _comm(comm), _cfg(config), _data(data), _model(make_model(config, data)), _ws(_model),
      _vp{config.beta_min, config.beta_max}, _global_batch(config.batch_size * comm.size()) {
    _info = make_model_info(config, data);
    auto& p = _model->flat_parameters();
    comm::broadcast(_comm, p.data_ptr<float>(), static_cast<std::size_t>(p.numel()));
    _m = torch::zeros_like(p);
    _v = torch::zeros_like(p);
    _denom = torch::empty_like(p);
    if (_cfg.ema > 0.0) _ema = p.clone();
}

double Trainer::lr_at(std::int64_t k) const {
    if (_cfg.warmup > 0 && k <= _cfg.warmup) return _cfg.lr * static_cast<double>(k) / static_cast<double>(_cfg.warmup);
    if (_cfg.lr_schedule == LrSchedule::Constant) return _cfg.lr;
    const double span = static_cast<double>(std::max<std::int64_t>(1, _cfg.steps - _cfg.warmup));
    const double progress = std::clamp(static_cast<double>(k - 1 - _cfg.warmup) / span, 0.0, 1.0);
    constexpr double kPi = 3.14159265358979323846;
    return _cfg.lr * 0.5 * (1.0 + std::cos(kPi * progress));
}

double Trainer::step_once() {
    torch::NoGradGuard no_grad;
    const std::int64_t k = _step + 1;
    const int d = _data.dim(), nc = _data.cond_dim();
    _data.draw(_cfg.seed, k, _global_batch, _batch);
    const std::int64_t rows = _batch.rows;
    const auto x1 = torch::from_blob(_batch.x1.data(), {rows, d});
    auto x0 = torch::from_blob(_batch.x0.data(), {rows, d});
    const auto u = torch::from_blob(_batch.u.data(), {rows});
    const auto cond = nc > 0 ? torch::from_blob(_batch.cond.data(), {rows, nc}) : torch::Tensor();
    auto target = rows_buffer(_target, rows, d);
    auto grad_y = rows_buffer(_grad_y, rows, d);
    torch::Tensor gap; // meanflow: t - s per row

    switch (_cfg.objective) {
    case Objective::OTFM: {
        // Minibatch OT coupling (Tong et al. 2024; Pooladian et al. 2023): re-pair the noise
        // with the data by the exact assignment within the local batch.
        auto perm = grouped_assignment(x1, x0, _batch.part);
        auto x0p = rows_buffer(_x0perm, rows, d);
        permute_rows(x0, perm, x0p);
        x0 = x0p;
        [[fallthrough]];
    }
    case Objective::FM:
    case Objective::Reflow: {
        auto xt = rows_buffer(_xt, rows, d);
        // reflow_distill: every row at t = 0, the one-step student x1' ~ x0 + v(x0, 0) (Liu et al. 2022).
        const auto tu = _cfg.reflow_distill ? torch::zeros_like(u) : u;
        condot_sample(x0, x1, tu, xt, target);
        _ws.set_features(xt, tu, cond);
        break;
    }
    case Objective::DSM: {
        // t uniform on [0, 1 - vp_eps]; x_t = alpha_t x_1 + sigma_t eps; the network predicts eps.
        const auto t = u * static_cast<float>(1.0 - _cfg.vp_eps);
        const auto sch = _vp(t.reshape({-1, 1}));
        auto xt = rows_buffer(_xt, rows, d);
        at::mul_out(xt, sch.alpha, x1);
        xt.addcmul_(sch.sigma, x0);
        target.copy_(x0);
        if (_cfg.potential) {
            auto tb = rows_buffer(_tphys, rows, 1).view({rows});
            tb.copy_(t);
        } else {
            _ws.set_features(xt, t, cond);
        }
        break;
    }
    case Objective::W2Map:
        _ws.set_features(x0, u, cond);
        break;
    case Objective::TFM: {
        // Flow matching in physical time: row i lies on the segment from its source x0 (snapshot
        // at t_s) to its target x1 (at t_e), at t = t_s + u (t_e - t_s); the regressed velocity is
        // the segment's (x1 - x0) / (t_e - t_s) in normalised time T = (t - origin) / scale. Its
        // flow carries each snapshot's law to the next one's (the flow-matching marginal
        // identity, Lipman et al. 2023, holds for any coupling of consecutive snapshots); the
        // minibatch OT coupling (coupling = ot) makes the segments short and the field smooth.
        if (_cfg.ot_coupling && rows > 0) {
            auto perm = grouped_assignment(x1, x0, _batch.part);
            auto x0p = rows_buffer(_x0perm, rows, d);
            permute_rows(x0, perm, x0p);
            x0 = x0p;
        }
        auto xt = rows_buffer(_xt, rows, d);
        auto tn = rows_buffer(_tphys, rows, 1).view({rows});
        auto rate = rows_buffer(_rate, rows, 1);
        const auto& parts = _data.parts();
        const double origin = _info.time_origin, scale = _info.time_scale;
        for (std::int64_t i = 0; i < rows; ++i) {
            const Part& p = parts[static_cast<std::size_t>(_batch.part[i])];
            const double ui = _batch.u[i];
            tn.data_ptr<float>()[i] = static_cast<float>((p.source_time + ui * (p.time - p.source_time) - origin) / scale);
            rate.data_ptr<float>()[i] = static_cast<float>(scale / (p.time - p.source_time));
        }
        at::sub_out(target, x1, x0);
        at::addcmul_out(xt, x0, target, u.reshape({-1, 1}));
        target.mul_(rate);
        _ws.set_features(xt, tn, cond);
        break;
    }
    case Objective::MeanFlow:
    case Objective::FlowMap: {
        // MeanFlow (Geng et al. 2025) on the CondOT path: x_s = x_0 + s (x_1 - x_0) with the
        // conditional velocity v = x_1 - x_0 (the target is linear in v, so its conditional
        // expectation is the marginal one, as in flow matching); the network u(x_s, s, t) sees s
        // and the gap t - s. flowmap: the same rows and times, X(x, s, t) = x + (t - s) u(x, s, t).
        auto s = rows_buffer(_tphys, rows, 1).view({rows});
        gap = rows_buffer(_gap, rows, 1).view({rows});
        meanflow_times(_cfg.seed, k, _batch.slot, _cfg.meanflow_fraction, s.data_ptr<float>(), gap.data_ptr<float>());
        gap.sub_(s);
        auto xt = rows_buffer(_xt, rows, d);
        condot_sample(x0, x1, s, xt, target);
        _ws.set_features(xt, s, cond, gap);
        break;
    }
    }
    const double scale = 1.0 / (static_cast<double>(_global_batch) * static_cast<double>(d));
    double loss_share = 0.0;
    if (_cfg.objective == Objective::W2Map) {
        const auto& y = _ws.forward();
        if (rows > 0 && !_cfg.corrector.empty()) {
            // Corrector (train.corrector): the sample is x_0 + f(x_0), x_0 the first stage's output;
            // couple it with the data by the exact minibatch W2 assignment and regress f on the
            // assigned point minus x_0.
            auto pred = rows_buffer(_xt, rows, d);
            at::add_out(pred, x0, y);
            const auto perm = grouped_assignment(pred, x1, _batch.part);
            permute_rows(x1, perm, target);
            target.sub_(x0);
        } else if (rows > 0) {
            // DeepParticle (Wang, Xin, Zhang 2022): couple f(x_0) with the data by the exact W2
            // assignment of the minibatch, then regress on the assigned points.
            const auto perm = grouped_assignment(y.contiguous(), x1, _batch.part);
            permute_rows(x1, perm, target);
        }
        loss_share = mse_share(y, target, _global_batch, grad_y);
        _ws.backward(grad_y);
    } else if (_cfg.potential) {
        loss_share = potential_step(_xt.narrow(0, 0, rows), _tphys.narrow(0, 0, rows).view({rows}), target, cond);
    } else if (_cfg.objective == Objective::FlowMap) {
        loss_share = flowmap_step(_xt.narrow(0, 0, rows), _tphys.narrow(0, 0, rows).view({rows}), gap, target, cond);
    } else if (_cfg.objective == Objective::MeanFlow) {
        const std::int64_t chunk = std::max<std::int64_t>(64, (std::int64_t{1} << 18) / _cfg.hidden);
        loss_share = _ws.meanflow_step(target, gap, _cfg.meanflow_power, scale, chunk);
    } else {
        // Chunks whose activation buffers hold at most 2^18 floats (1 MB, the L2 of one core of
        // the development machine): 4096 rows at width 64, 1024 at 256; memory independent of
        // the batch size.
        const std::int64_t chunk = std::max<std::int64_t>(64, (std::int64_t{1} << 18) / _cfg.hidden);
        loss_share = _ws.mse_step(target, scale, chunk, tail_weights(rows));
    }

    // One allreduce: the gradients and, in the trailing element, the loss.
    auto& g = _model->flat_gradients();
    const std::int64_t n = g.numel() - 1;
    g.data_ptr<float>()[n] = static_cast<float>(loss_share);
    comm::allreduce_sum(_comm, g.data_ptr<float>(), static_cast<std::size_t>(g.numel()));
    const double loss = g.data_ptr<float>()[n];
    if (!std::isfinite(loss)) {
        std::ostringstream os;
        os << "non-finite loss (" << loss << ") at step " << k << "; training stopped, weights of step " << _step
           << " kept; ";
        if (_last_checkpoint >= 0) os << "last good checkpoint: " << checkpoint_path(_cfg.model_file) << " (step " << _last_checkpoint << ")";
        else os << "no checkpoint was written (set train.checkpoint_every)";
        throw TrainingDiverged(os.str());
    }
    optimizer_update(k);
    _step = k;
    return loss;
}

torch::Tensor Trainer::tail_weights(std::int64_t rows) {
    if (_cfg.tail_weight <= 0.0 || rows == 0) return {};
    // Weighted least squares with a weight that depends on the regressor only (here the network's
    // input point x_t; the time and conditions are shared by both sides) has the same minimiser,
    // E[target | x_t], pointwise: the weight only decides where a finite network spends its error.
    const auto xt = _xt.narrow(0, 0, rows);
    auto w = rows_buffer(_weight, rows, 1).view({rows});
    at::sum_out(w, xt.pow(2), {1});
    w.div_(static_cast<double>(xt.size(1)));
    if (_cfg.tail_power != 2.0) w.pow_(0.5 * _cfg.tail_power);
    w.mul_(_cfg.tail_weight).add_(1.0);
    return w;
}

double Trainer::potential_step(const torch::Tensor& xt, const torch::Tensor& t, const torch::Tensor& eps,
                               const torch::Tensor& cond) {
    // DSM on the potential's noise prediction eps_hat = -grad_x phi, plus w mean (sigma_t^2 R / beta)^2 of the log-density
    // Fokker-Planck residual R of u = phi / sigma_t at the same noised points (Deveney et al.).
    // Both terms are shares of global means (divided by the global batch).
    auto& grads = _model->flat_gradients();
    const std::int64_t rows = xt.size(0), d = xt.size(1);
    if (rows == 0) {
        grads.zero_();
        return 0.0;
    }
    torch::AutoGradMode on(true);
    const double gb = static_cast<double>(_global_batch);
    const bool fp = _cfg.fp_residual_weight > 0.0;
    // phi's input gradient (and Laplacian and time derivative) in forward mode: one backward pass
    // for the parameter gradients (LearnScore.ForwardDerivativesMatchAutograd checks them).
    const auto p = potential_derivatives(_model, _vp, xt, t, cond, fp);
    auto loss = (p.grad + eps).pow(2).sum() / (gb * static_cast<double>(d)); // eps_hat = -grad phi
    if (fp) {
        const auto scaled = potential_fp_residual(p, xt, t, _vp) * vp_sigma(_vp, t).pow(2) / vp_beta(_vp, t);
        loss = loss + _cfg.fp_residual_weight * scaled.pow(2).sum() / gb;
    }
    return write_gradients(loss);
}

double Trainer::flowmap_step(const torch::Tensor& xs, const torch::Tensor& s, const torch::Tensor& gap, const torch::Tensor& v,
                             const torch::Tensor& cond) {
    // Lagrangian self-distillation (Boffi, Albergo & Vanden-Eijnden 2025, arXiv 2505.18825, the LSD
    // loss; GENERATIVE.md "Flow maps") for X(x, s, t) = x + (t - s) u(x, s, t): per row,
    // |dX/dt(x_s, s, t) - target|^2 with dX/dt = u + (t - s) du/dt, the target sg(u(X(x_s, s, t), t, t))
    // (the diagonal u(., t, t) is the velocity: the map's Lagrangian equation dX/dt = v_t(X)) on the
    // rows with s < t, and the conditional velocity v = x_1 - x_0 on the rows with s = t (where the
    // loss is fm's). du/dt is the derivative along the gap input, by LibTorch's forward-mode AD (a
    // dual gap with tangent 1), then one reverse pass through it for the parameter gradients.
    auto& grads = _model->flat_gradients();
    const std::int64_t rows = xs.size(0), d = xs.size(1);
    if (rows == 0) {
        grads.zero_();
        return 0.0;
    }
    const double scale = 1.0 / (static_cast<double>(_global_batch) * static_cast<double>(d));
    torch::Tensor target;
    {
        torch::NoGradGuard no_grad;
        const auto g = gap.reshape({-1, 1});
        const auto x_t = xs + g * _model->forward(xs, s, cond, gap);
        const auto teacher = _model->forward(x_t, s + gap, cond, torch::zeros_like(gap));
        target = torch::where(g > 0, teacher, v);
    }
    torch::AutoGradMode on(true);
    const auto level = torch::autograd::forward_ad::enter_dual_level();
    torch::Tensor loss;
    try {
        const auto dual = at::_make_dual(gap, torch::ones_like(gap), static_cast<std::int64_t>(level));
        const auto y = _model->forward(xs, s, cond, dual);
        const auto [u, du] = at::_unpack_dual(y, static_cast<std::int64_t>(level));
        loss = (u + gap.reshape({-1, 1}) * du - target).pow(2).sum() * scale;
    } catch (...) {
        torch::autograd::forward_ad::exit_dual_level(level);
        throw;
    }
    // The reverse pass after leaving the dual level: no tangents left to propagate through it.
    torch::autograd::forward_ad::exit_dual_level(level);
    return write_gradients(loss);
}

double Trainer::write_gradients(const torch::Tensor& loss) {
    std::vector<torch::Tensor> params;
    for (auto& q : _model->parameters()) params.push_back(q);
    const auto g = torch::autograd::grad({loss}, params, {}, false, false, true);
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < params.size(); ++i) {
        auto slot = params[i].mutable_grad(); // a view of the flat gradient buffer
        if (g[i].defined()) slot.copy_(g[i]);
        else slot.zero_();
    }
    return loss.item<double>();
}

void Trainer::optimizer_update(std::int64_t k) {
    // Adam (Kingma & Ba 2015) / AdamW (Loshchilov & Hutter 2019) on the flat buffers, the same
    // arithmetic as torch.optim.Adam's single-tensor path.
    constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    auto& p = _model->flat_parameters();
    auto g = _model->flat_gradients().narrow(0, 0, p.numel());
    const double lr = lr_at(k);
    if (_cfg.weight_decay > 0.0) {
        if (_cfg.optimizer == Optimizer::Adam) g.add_(p, _cfg.weight_decay);
        else p.mul_(1.0 - lr * _cfg.weight_decay);
    }
    const double bc1 = 1.0 - std::pow(b1, static_cast<double>(k));
    const double bc2 = 1.0 - std::pow(b2, static_cast<double>(k));
    _m.mul_(b1).add_(g, 1.0 - b1);
    _v.mul_(b2).addcmul_(g, g, 1.0 - b2);
    at::sqrt_out(_denom, _v);
    _denom.div_(std::sqrt(bc2)).add_(eps);
    p.addcdiv_(_m, _denom, -lr / bc1);
    if (_ema.defined()) _ema.mul_(_cfg.ema).add_(p, 1.0 - _cfg.ema);
}

void Trainer::run(std::int64_t last, const std::function<void(std::int64_t, double)>& on_step) {
    while (_step < last) {
        const double loss = step_once();
        if (on_step) on_step(_step, loss);
        if (_cfg.checkpoint_every > 0 && _step % _cfg.checkpoint_every == 0) save_checkpoint(checkpoint_path(_cfg.model_file));
    }
}

ModelInfo Trainer::info() const {
    ModelInfo i = _info;
    i.step = _step;
    return i;
}

namespace {
/// Rank 0 runs `write`; every rank gets its error, if any.
template <class F>
void on_root(const comm::Communicator& comm, F&& write) {
    std::string err;
    if (comm.is_root()) {
        try {
            write();
        } catch (const std::exception& e) {
            err = e.what();
        }
    }
    comm.broadcast(err);
    if (!err.empty()) throw Error(err);
}
} // namespace

void Trainer::save_checkpoint(const std::string& path) {
    on_root(_comm, [&] {
        torch::serialize::OutputArchive ar;
        write_info(ar, info());
        ar.write("params", _model->flat_parameters().clone());
        ar.write("adam_m", _m.clone());
        ar.write("adam_v", _v.clone());
        if (_ema.defined()) ar.write("ema", _ema.clone());
        // The minibatch/noise generator is counter-based: its whole state is (seed, step).
        ar.write("rng_seed", c10::IValue(static_cast<std::int64_t>(_cfg.seed)));
        ar.write("torch_rng", torch::globalContext().defaultGenerator(torch::kCPU).get_state());
        save_archive(ar, path);
    });
    _last_checkpoint = _step;
}

void Trainer::save_model(const std::string& path, const std::string& h5_path) {
    on_root(_comm, [&] {
        const auto& params = _ema.defined() ? _ema : _model->flat_parameters();
        save_model_file(path, info(), params);
        if (!h5_path.empty()) save_model_h5(h5_path, info(), params, _cfg.seed, _comm.size());
    });
}

void Trainer::load_checkpoint(const std::string& path) {
    torch::serialize::InputArchive ar;
    load_archive(ar, path);
    const ModelInfo ck = read_info(ar, path);
    auto mismatch = [&](const std::string& what, const std::string& theirs, const std::string& ours) {
        throw Error("'" + path + "' was written for " + what + " = " + theirs + ", the deck says " + ours);
    };
    const auto& s = _model->spec();
    if (ck.objective != _cfg.objective) mismatch("train.objective", to_string(ck.objective), to_string(_cfg.objective));
    if (ck.spec.hidden != s.hidden) mismatch("train.hidden", std::to_string(ck.spec.hidden), std::to_string(s.hidden));
    if (ck.spec.layers != s.layers) mismatch("train.layers", std::to_string(ck.spec.layers), std::to_string(s.layers));
    if (ck.spec.activation != s.activation) mismatch("train.activation", to_string(ck.spec.activation), to_string(s.activation));
    if (ck.spec.time_features != s.time_features)
        mismatch("train.time_features", std::to_string(ck.spec.time_features), std::to_string(s.time_features));
    if (ck.spec.potential != s.potential)
        mismatch("train.score_model", ck.spec.potential ? "potential" : "vector", s.potential ? "potential" : "vector");
    if (ck.spec.film != s.film || (s.film && ck.spec.film_width != s.film_width))
        mismatch("train.condition_embedding/film_width", ck.spec.film ? "film/" + std::to_string(ck.spec.film_width) : "concat",
                 s.film ? "film/" + std::to_string(s.film_width) : "concat");
    if (ck.spec.dim != s.dim || ck.spec.cond_dim != s.cond_dim || ck.data != _info.data)
        mismatch("train.data", ck.data + " (dim " + std::to_string(ck.spec.dim) + ")", _info.data + " (dim " + std::to_string(s.dim) + ")");
    torch::Tensor params, m, v, ema, rng;
    c10::IValue seed;
    try {
        ar.read("params", params);
        ar.read("adam_m", m);
        ar.read("adam_v", v);
        ar.read("rng_seed", seed);
        ar.read("torch_rng", rng);
        if (_ema.defined()) ar.read("ema", ema);
    } catch (const c10::Error&) {
        throw Error("'" + path + "': not a checkpoint (no optimizer state" + std::string(_ema.defined() ? " or EMA" : "") + ")");
    }
    if (static_cast<std::uint64_t>(seed.toInt()) != _cfg.seed)
        mismatch("run.seed", std::to_string(seed.toInt()), std::to_string(_cfg.seed));
    torch::NoGradGuard no_grad;
    _model->flat_parameters().copy_(params);
    _m.copy_(m);
    _v.copy_(v);
    if (_ema.defined()) _ema.copy_(ema);
    auto gen = torch::globalContext().defaultGenerator(torch::kCPU);
    gen.set_state(rng);
    _step = ck.step;
    _last_checkpoint = _step;
}

// ---- kinflow-train's entry ----------------------------------------------------------------------

TrainSummary train(const comm::Communicator& comm, const TrainConfig& config, const Dataset& data, bool resume,
                   std::ostream* progress) {
    torch::set_num_threads(config.threads);
    Trainer trainer(comm, config, data);
    const std::string ckpt = checkpoint_path(config.model_file);
    if (resume) {
        try {
            trainer.load_checkpoint(ckpt);
        } catch (const Error& e) {
            throw ResumeError(std::string("--resume: ") + e.what());
        }
    }
    TrainSummary s;
    s.first_step = trainer.step();
    s.global_batch = trainer.global_batch();
    s.parameters = trainer.model()->parameter_count();
    if (s.first_step > config.steps) {
        throw ResumeError("--resume: '" + ckpt + "' is at step " + std::to_string(s.first_step) + ", beyond train.steps = " +
                          std::to_string(config.steps));
    }
    std::int64_t last = config.steps;
    if (config.stop_after > 0) last = std::min(last, s.first_step + config.stop_after);

    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    double last_print = 0.0;
    auto report = [&](std::int64_t step, double loss, bool final) {
        if (!progress) return;
        const double secs = elapsed();
        if (!final && secs - last_print < 5.0) return;
        last_print = secs;
        const double rate = static_cast<double>(step - s.first_step) / std::max(secs, 1e-9);
        *progress << "kinflow-train: step " << step << "/" << config.steps << "  loss " << std::setprecision(5) << loss
                  << "  lr " << std::setprecision(3) << trainer.lr_at(step) << "  " << std::setprecision(4) << rate
                  << " steps/s  " << rate * static_cast<double>(s.global_batch) << " samples/s" << std::endl;
    };
    // Loss history: rank 0 writes one row per step (the loss is the allreduced global one, the same
    // on every rank); a resumed run appends to the rows its checkpoint's steps already wrote.
    // Rows past the checkpoint (written by an interrupted run after its last checkpoint) are dropped.
    std::ofstream loss_log;
    if (comm.rank() == 0) {
        std::string kept = "step,loss,lr\n";
        if (resume && s.first_step > 0) {
            std::ifstream old(config.loss_file);
            std::string line;
            std::getline(old, line); // header
            while (std::getline(old, line)) {
                if (line.empty() || std::stoll(line) > s.first_step) break;
                kept += line + '\n';
            }
        }
        loss_log.open(config.loss_file, std::ios::trunc);
        if (!loss_log) throw Error("train.loss_file: cannot open '" + config.loss_file + "' for writing");
        loss_log << kept << std::setprecision(9);
    }
    double loss = 0.0;
    trainer.run(last, [&](std::int64_t step, double l) {
        loss = l;
        if (loss_log.is_open()) loss_log << step << ',' << l << ',' << trainer.lr_at(step) << '\n';
        report(step, l, false);
    });
    if (loss_log.is_open()) {
        loss_log.flush();
        if (!loss_log) throw Error("train.loss_file: write to '" + config.loss_file + "' failed");
    }
    s.seconds = elapsed();
    s.step = trainer.step();
    s.loss = loss;
    if (s.step > s.first_step) report(s.step, loss, true);
    // The end of this invocation: a checkpoint, and the model file when training is complete.
    if (trainer.last_checkpoint_step() != s.step) trainer.save_checkpoint(ckpt);
    if (s.step == config.steps) {
        trainer.save_model(config.model_file, config.model_h5);
        s.finished = true;
    }
    return s;
}

} // namespace kinflow::learn
