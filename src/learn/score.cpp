// Potential score models, the Fokker–Planck residual and the Jacobian-asymmetry diagnostic.
#include "kinflow/learn/score.hpp"

#include <cmath>
#include <random>

#include "kinflow/core/error.hpp"
#include "kinflow/learn/model_file.hpp"
#include "kinflow/learn/score_curl.hpp"

namespace kinflow::learn {

namespace ag = torch::autograd;

torch::Tensor vp_sigma(const VPScheduler& vp, const torch::Tensor& t) {
    const auto s = 1.0 - t;
    const auto log_a = -0.5 * (vp.beta_min * s + 0.5 * (vp.beta_max - vp.beta_min) * s * s);
    return torch::sqrt(-torch::expm1(2.0 * log_a));
}

torch::Tensor vp_beta(const VPScheduler& vp, const torch::Tensor& t) {
    return vp.beta_min + (1.0 - t) * (vp.beta_max - vp.beta_min);
}

namespace {
/// x itself when it already carries a graph, else a leaf that requires grad.
torch::Tensor differentiable(const torch::Tensor& x) { return x.requires_grad() ? x : x.detach().requires_grad_(true); }
} // namespace

torch::Tensor input_gradient(const ScalarField& u, const torch::Tensor& x, const torch::Tensor& t, bool create_graph) {
    torch::AutoGradMode on(true);
    const auto xr = differentiable(x);
    const auto value = u(xr, t);
    auto g = ag::grad({value.sum()}, {xr}, {}, create_graph, create_graph)[0];
    return create_graph ? g : g.detach();
}

torch::Tensor fp_residual(const ScalarField& u, const torch::Tensor& x, const torch::Tensor& t, const VPScheduler& vp,
                          bool create_graph) {
    torch::AutoGradMode on(true);
    const auto xr = differentiable(x);
    const auto tr = differentiable(t);
    const auto value = u(xr, tr);
    // Rows are independent: the gradients of the sum are the per-row gradients.
    const auto g = ag::grad({value.sum()}, {xr, tr}, {}, true, true, true);
    const auto gx = g[0];
    const auto dt_u = g[1].defined() ? g[1] : torch::zeros_like(tr);
    auto lap = torch::zeros_like(dt_u);
    const std::int64_t d = xr.size(1);
    for (std::int64_t k = 0; k < d; ++k) {
        const auto h = ag::grad({gx.select(1, k).sum()}, {xr}, {}, true, true, true)[0];
        if (h.defined()) lap = lap + h.select(1, k);
    }
    const auto beta = vp_beta(vp, tr.detach());
    // d_s u = -d_t u; div f = -beta d / 2; f . grad u = -beta x . grad u / 2; g^2 / 2 = beta / 2.
    const auto r = -dt_u - 0.5 * static_cast<double>(d) * beta - 0.5 * beta * (xr * gx).sum(1) -
                   0.5 * beta * (lap + gx.pow(2).sum(1));
    return create_graph ? r : r.detach();
}

torch::Tensor potential_phi(MLP& model, const VPScheduler& vp, const torch::Tensor& x, const torch::Tensor& t,
                            const torch::Tensor& cond) {
    return model->forward(x, t, cond).reshape({-1}) - 0.5 * vp_sigma(vp, t) * x.pow(2).sum(1);
}

ScalarField potential_log_density(MLP& model, const VPScheduler& vp, const torch::Tensor& cond) {
    MLP m = model;
    return [m, vp, cond](const torch::Tensor& x, const torch::Tensor& t) mutable {
        return potential_phi(m, vp, x, t, cond) / vp_sigma(vp, t);
    };
}

torch::Tensor potential_eps(MLP& model, const VPScheduler& vp, const torch::Tensor& x, const torch::Tensor& t,
                            const torch::Tensor& cond, bool create_graph) {
    KINFLOW_REQUIRE(model->spec().potential, "potential_eps needs a potential model");
    MLP m = model;
    const ScalarField phi = [m, vp, cond](const torch::Tensor& xr, const torch::Tensor& tr) mutable {
        return potential_phi(m, vp, xr, tr, cond);
    };
    return -input_gradient(phi, x, t, create_graph);
}

torch::Tensor field_jacobian(const MLP& model, const VPScheduler& vp, const torch::Tensor& x, const torch::Tensor& t,
                             const torch::Tensor& cond) {
    MLP m64(model->spec());
    {
        torch::NoGradGuard no_grad;
        m64->flat_parameters().copy_(model->flat_parameters());
    }
    m64->to(torch::kFloat64);
    torch::AutoGradMode on(true);
    const auto x64 = x.detach().to(torch::kFloat64).requires_grad_(true);
    const auto t64 = t.detach().to(torch::kFloat64);
    const auto c64 = cond.defined() ? cond.to(torch::kFloat64) : torch::Tensor();
    const torch::Tensor y = m64->spec().potential ? potential_eps(m64, vp, x64, t64, c64, true) : m64->forward(x64, t64, c64);
    const std::int64_t d = x.size(1);
    std::vector<torch::Tensor> rows;
    for (std::int64_t k = 0; k < d; ++k) {
        const auto g = ag::grad({y.select(1, k).sum()}, {x64}, {}, true, false, true)[0];
        rows.push_back(g.defined() ? g : torch::zeros_like(x64));
    }
    return torch::stack(rows, 1).detach(); // [B, k (output), j (input)]
}

torch::Tensor jacobian_asymmetry(const torch::Tensor& jac) {
    const auto num = (jac - jac.transpose(1, 2)).pow(2).sum({1, 2}).sqrt();
    const auto den = jac.pow(2).sum({1, 2}).sqrt();
    return torch::where(den > 0, num / den.clamp_min(1e-300), torch::zeros_like(num));
}

// ---- forward-mode value, gradient, Laplacian and time derivative -------------------------------

namespace {
/// act'(z) and act''(z) of the activations (silu = z s(z), s the logistic sigmoid; exact gelu
/// z Phi(z); tanh).
void activation_derivatives(Activation act, const torch::Tensor& z, torch::Tensor& d1, torch::Tensor& d2) {
    switch (act) {
    case Activation::SiLU: {
        const auto s = torch::sigmoid(z);
        d1 = s * (1.0 + z * (1.0 - s));
        d2 = s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s));
        return;
    }
    case Activation::GELU: {
        const auto pdf = torch::exp(-0.5 * z * z) * 0.3989422804014327; // standard normal density
        d1 = 0.5 * (1.0 + torch::erf(z * 0.7071067811865476)) + z * pdf;
        d2 = pdf * (2.0 - z * z);
        return;
    }
    case Activation::Tanh: {
        const auto a = torch::tanh(z);
        d1 = 1.0 - a * a;
        d2 = -2.0 * a * d1;
        return;
    }
    }
}

torch::Tensor activation_value(Activation act, const torch::Tensor& z) {
    switch (act) {
    case Activation::SiLU: return torch::silu(z);
    case Activation::GELU: return torch::gelu(z);
    case Activation::Tanh: return torch::tanh(z);
    }
    return z;
}
} // namespace

PotentialDerivatives potential_derivatives(MLP& model, const VPScheduler& vp, const torch::Tensor& x,
                                           const torch::Tensor& t, const torch::Tensor& cond, bool second) {
    const auto& s = model->spec();
    KINFLOW_REQUIRE(s.potential && s.time_inputs == 1, "potential_derivatives needs a potential model");
    const auto& lin = model->linears();
    const std::int64_t B = x.size(0), d = s.dim;
    const int H = s.hidden;
    const auto act = s.activation;
    // Inputs: x (gradient: identity), time features (time derivative w cos, -w sin), conditions.
    torch::Tensor feat, dfeat;
    if (s.time_features > 0) {
        const auto w = model->omega().to(x.scalar_type());
        const auto a = t.reshape({-1, 1}) * w;
        const auto sn = torch::sin(a), cs = torch::cos(a);
        feat = torch::cat({sn, cs}, 1);
        dfeat = torch::cat({cs * w, -sn * w}, 1);
    }
    std::vector<torch::Tensor> emb_parts, demb_parts;
    if (feat.defined()) {
        emb_parts.push_back(feat);
        demb_parts.push_back(dfeat);
    }
    if (s.cond_dim > 0) {
        emb_parts.push_back(cond);
        demb_parts.push_back(torch::zeros_like(cond));
    }
    const auto emb = emb_parts.empty() ? torch::Tensor() : torch::cat(emb_parts, 1);
    const auto demb = demb_parts.empty() ? torch::Tensor() : torch::cat(demb_parts, 1);
    torch::Tensor gb, dgb; // film: modulation [gamma_0, beta_0, ...] and its time derivative
    if (s.film) {
        const auto ze = torch::addmm(model->embed()->bias, emb, model->embed()->weight.t());
        torch::Tensor e1, e2;
        activation_derivatives(act, ze, e1, e2);
        const auto e = activation_value(act, ze);
        gb = torch::addmm(model->film()->bias, e, model->film()->weight.t());
        dgb = (e1 * demb.matmul(model->embed()->weight.t())).matmul(model->film()->weight.t());
    }
    // First layer: z = W0 [x, emb] + b; grad_x z = W0[:, :d]^T (the same for every row); lap z = 0.
    const auto& w0 = lin[0]->weight;
    torch::Tensor z, gz, lz, tz;
    if (s.film || !emb.defined()) {
        z = torch::addmm(lin[0]->bias, x, w0.narrow(1, 0, d).t());
        tz = torch::zeros_like(z);
    } else {
        z = torch::addmm(lin[0]->bias, torch::cat({x, emb}, 1), w0.t());
        tz = demb.matmul(w0.narrow(1, d, w0.size(1) - d).t());
    }
    gz = w0.narrow(1, 0, d).t().unsqueeze(0).expand({B, d, H}); // [B, d, H]
    bool lap_zero = true;
    for (int l = 0; l < s.layers; ++l) {
        if (l > 0) {
            const auto wt = lin[l]->weight.t();
            z = torch::addmm(lin[l]->bias, z, wt);
            gz = gz.matmul(wt);
            tz = tz.matmul(wt);
            if (second && !lap_zero) lz = lz.matmul(wt);
        }
        if (s.film) { // m = z (1 + gamma) + beta: d/dt m = (dz/dt) (1 + gamma) + z dgamma/dt + dbeta/dt
            const auto g1 = 1.0 + gb.narrow(1, 2 * l * H, H), bt = gb.narrow(1, (2 * l + 1) * H, H);
            tz = tz * g1 + z * dgb.narrow(1, 2 * l * H, H) + dgb.narrow(1, (2 * l + 1) * H, H);
            z = z * g1 + bt;
            gz = gz * g1.unsqueeze(1);
            if (second && !lap_zero) lz = lz * g1;
        }
        // a = act(z): grad a = act'(z) grad z; lap a = act'(z) lap z + act''(z) |grad z|^2; d/dt a = act'(z) dz/dt.
        torch::Tensor d1, d2;
        activation_derivatives(act, z, d1, d2);
        if (second) {
            const auto curv = d2 * gz.pow(2).sum(1);
            lz = lap_zero ? curv : d1 * lz + curv;
            lap_zero = false;
        }
        gz = gz * d1.unsqueeze(1);
        tz = tz * d1;
        z = activation_value(act, z);
    }
    const auto& wl = lin[s.layers]->weight; // [1, hidden]
    // plus the quadratic base -sigma |x|^2 / 2: gradient -sigma x, Laplacian -sigma d, d/dt -sigma' |x|^2 / 2
    // with sigma' = -alpha^2 beta / (2 sigma)
    const auto sigma = vp_sigma(vp, t), r2 = x.pow(2).sum(1);
    PotentialDerivatives r;
    r.phi = torch::addmm(lin[s.layers]->bias, z, wl.t()).reshape({-1}) - 0.5 * sigma * r2;
    r.grad = gz.matmul(wl.t()).reshape({B, d}) - sigma.reshape({-1, 1}) * x;
    if (second) {
        const auto dsigma = -(1.0 - sigma * sigma) * vp_beta(vp, t) / (2.0 * sigma);
        r.dt = tz.matmul(wl.t()).reshape({-1}) - 0.5 * dsigma * r2;
        r.lap = lz.matmul(wl.t()).reshape({-1}) - sigma * static_cast<double>(d);
    }
    return r;
}

torch::Tensor potential_fp_residual(const PotentialDerivatives& p, const torch::Tensor& x, const torch::Tensor& t,
                                    const VPScheduler& vp) {
    // u = phi / sigma: grad u = grad phi / sigma, lap u = lap phi / sigma,
    // d_t u = d_t phi / sigma - phi sigma' / sigma^2 with sigma' = d sigma / dt = -alpha^2 beta / (2 sigma).
    const auto sigma = vp_sigma(vp, t), beta = vp_beta(vp, t);
    const auto alpha2 = 1.0 - sigma * sigma;
    const auto dsigma = -alpha2 * beta / (2.0 * sigma);
    const auto gu = p.grad / sigma.reshape({-1, 1});
    const auto dt_u = p.dt / sigma - p.phi * dsigma / (sigma * sigma);
    const auto d = static_cast<double>(x.size(1));
    return -dt_u - 0.5 * d * beta - 0.5 * beta * (x * gu).sum(1) - 0.5 * beta * (p.lap / sigma + gu.pow(2).sum(1));
}

ScoreCurl score_curl(const std::string& model_file, const std::vector<double>& points, int dim,
                     const std::vector<double>& times, std::uint64_t seed) {
    auto m = load_model_file(model_file);
    const auto& info = m.info;
    const auto obj = info.objective;
    if (obj != Objective::DSM && obj != Objective::FM && obj != Objective::OTFM && obj != Objective::Reflow) {
        throw Error("'" + model_file + "': --score-curl needs a dsm, fm, otfm or reflow model (this one is " +
                    std::string(to_string(obj)) + ")");
    }
    if (info.spec.cond_dim > 0) throw Error("'" + model_file + "': --score-curl takes unconditional models only");
    if (info.spec.dim != dim) {
        throw Error("'" + model_file + "' has dim " + std::to_string(info.spec.dim) + ", the points dim " +
                    std::to_string(dim));
    }
    const double t_max = obj == Objective::DSM ? 1.0 - info.vp_eps : 1.0;
    for (double t : times) {
        if (!(t >= 0.0 && t <= t_max)) {
            throw Error("--curl-times: " + std::to_string(t) + " is outside the model's time range [0, " + std::to_string(t_max) + "]");
        }
    }
    const auto n = static_cast<std::int64_t>(points.size()) / dim;
    KINFLOW_REQUIRE(n > 0, "no points");
    auto x = torch::tensor(points, torch::kFloat64).reshape({n, dim});
    for (int k = 0; k < dim; ++k) x.select(1, k).sub_(info.norm.mean[k]).div_(info.norm.std[k]);
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> normal;
    std::vector<double> e(points.size());
    const VPScheduler vp{info.beta_min, info.beta_max};
    ScoreCurl r;
    r.objective = to_string(obj);
    r.score_model = info.spec.potential ? "potential" : "vector";
    r.points = n;
    double total = 0.0;
    for (double t : times) {
        for (double& v : e) v = normal(gen);
        const auto eps = torch::tensor(e, torch::kFloat64).reshape({n, dim});
        const double a = obj == Objective::DSM ? vp.alpha(t) : t;
        const double s = obj == Objective::DSM ? vp.sigma(t) : 1.0 - t;
        const auto xt = a * x + s * eps;
        const auto ratio = jacobian_asymmetry(field_jacobian(m.model, vp, xt, torch::full({n}, t, torch::kFloat64), {}));
        r.times.push_back(t);
        r.mean.push_back(ratio.mean().item<double>());
        r.max.push_back(ratio.max().item<double>());
        total += ratio.sum().item<double>();
    }
    r.mean_all = total / static_cast<double>(n * static_cast<std::int64_t>(times.size()));
    return r;
}

} // namespace kinflow::learn
