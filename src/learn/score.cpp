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

ScalarField potential_log_density(MLP& model, const VPScheduler& vp, const torch::Tensor& cond) {
    MLP m = model;
    return [m, vp, cond](const torch::Tensor& x, const torch::Tensor& t) mutable {
        return m->forward(x, t, cond).reshape({-1}) / vp_sigma(vp, t);
    };
}

torch::Tensor potential_eps(MLP& model, const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                            bool create_graph) {
    KINFLOW_REQUIRE(model->spec().potential, "potential_eps needs a potential model");
    MLP m = model;
    const ScalarField phi = [m, cond](const torch::Tensor& xr, const torch::Tensor& tr) mutable {
        return m->forward(xr, tr, cond).reshape({-1});
    };
    return -input_gradient(phi, x, t, create_graph);
}

torch::Tensor field_jacobian(const MLP& model, const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond) {
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
    const torch::Tensor y = m64->spec().potential ? potential_eps(m64, x64, t64, c64, true) : m64->forward(x64, t64, c64);
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

ScoreCurl score_curl(const std::string& model_file, const std::vector<double>& points, int dim,
                     const std::vector<double>& times, std::uint64_t seed) {
    auto m = load_model_file(model_file);
    const auto& info = m.info;
    const auto obj = info.objective;
    if (obj != Objective::DSM && obj != Objective::FM && obj != Objective::OTFM) {
        throw Error("'" + model_file + "': --score-curl needs a dsm, fm or otfm model (this one is " +
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
        const auto ratio = jacobian_asymmetry(field_jacobian(m.model, xt, torch::full({n}, t, torch::kFloat64), {}));
        r.times.push_back(t);
        r.mean.push_back(ratio.mean().item<double>());
        r.max.push_back(ratio.max().item<double>());
        total += ratio.sum().item<double>();
    }
    r.mean_all = total / static_cast<double>(n * static_cast<std::int64_t>(times.size()));
    return r;
}

} // namespace kinflow::learn
