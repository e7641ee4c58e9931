// ODE/SDE integrators over a trained model, and kinflow-sample's entry.
#include "kinflow/sample/sampler.hpp"

#include <chrono>
#include <cmath>
#include <memory>
#include <sstream>

#include <Kokkos_Core.hpp>

#include "kinflow/learn/score.hpp"
#include "kinflow/sample/plan.hpp"
#include "kinflow/sample/sample.hpp"

namespace kinflow::sample {

// ---- integrators -------------------------------------------------------------------------------

void Integrator::reserve(const torch::Tensor& x) {
    if (_k1.defined() && _k1.sizes() == x.sizes()) return;
    for (torch::Tensor* t : {&_k1, &_k2, &_k3, &_k4, &_tmp}) *t = torch::empty_like(x);
}

std::int64_t Integrator::ode(Method method, std::int64_t steps, double t0, double t1, torch::Tensor& x, const Field& f) {
    torch::NoGradGuard no_grad;
    reserve(x);
    const double h = (t1 - t0) / static_cast<double>(steps);
    std::int64_t evals = 0;
    for (std::int64_t n = 0; n < steps; ++n) {
        const double t = t0 + static_cast<double>(n) * h;
        switch (method) {
        case Method::Euler:
        case Method::EulerMaruyama:
            f(x, t, _k1);
            x.add_(_k1, h);
            evals += 1;
            break;
        case Method::Heun: // explicit trapezoidal rule (Heun 1900), second order
            f(x, t, _k1);
            at::add_out(_tmp, x, _k1, h);
            f(_tmp, t + h, _k2);
            x.add_(_k1, 0.5 * h).add_(_k2, 0.5 * h);
            evals += 2;
            break;
        case Method::RK4: // classical Runge–Kutta, fourth order
            f(x, t, _k1);
            at::add_out(_tmp, x, _k1, 0.5 * h);
            f(_tmp, t + 0.5 * h, _k2);
            at::add_out(_tmp, x, _k2, 0.5 * h);
            f(_tmp, t + 0.5 * h, _k3);
            at::add_out(_tmp, x, _k3, h);
            f(_tmp, t + h, _k4);
            _k2.add_(_k3);
            x.add_(_k1, h / 6.0).add_(_k2, h / 3.0).add_(_k4, h / 6.0);
            evals += 4;
            break;
        }
    }
    return evals;
}

std::int64_t Integrator::sde(std::int64_t steps, double t0, double t1, torch::Tensor& x, const Field& drift,
                             const std::function<double(double)>& g, const Noise& noise) {
    torch::NoGradGuard no_grad;
    reserve(x);
    const double h = (t1 - t0) / static_cast<double>(steps);
    for (std::int64_t n = 0; n < steps; ++n) {
        const double t = t0 + static_cast<double>(n) * h;
        drift(x, t, _k1);
        x.add_(_k1, h);
        if (n + 1 < steps) {
            noise(n, _k2);
            x.add_(_k2, g(t) * std::sqrt(h));
        }
    }
    return steps;
}

std::int64_t Integrator::jumps(std::int64_t steps, double t0, double t1, torch::Tensor& x, const AverageField& u) {
    torch::NoGradGuard no_grad;
    reserve(x);
    const double h = (t1 - t0) / static_cast<double>(steps);
    for (std::int64_t n = 0; n < steps; ++n) {
        // The grid points as t0 + n h (not accumulated), and the last exactly t1.
        const double s = t0 + static_cast<double>(n) * h;
        const double t = n + 1 == steps ? t1 : t0 + static_cast<double>(n + 1) * h;
        u(x, s, t, _k1);
        x.add_(_k1, t - s);
    }
    return steps;
}

double straightness(const Field& v, torch::Tensor& x, std::int64_t steps) {
    torch::NoGradGuard no_grad;
    const auto x0 = x.clone();
    auto k = torch::empty_like(x);
    auto kinetic = torch::zeros({x.size(0)}, torch::kFloat64);
    const double h = 1.0 / static_cast<double>(steps);
    for (std::int64_t n = 0; n < steps; ++n) {
        v(x, static_cast<double>(n) * h, k);
        kinetic.add_(k.to(torch::kFloat64).pow(2).sum(1), h);
        x.add_(k, h);
    }
    return (kinetic - (x - x0).to(torch::kFloat64).pow(2).sum(1)).mean().item<double>();
}

Field ode_field(learn::Objective objective, const learn::VPScheduler& vp, Network net) {
    if (objective != learn::Objective::DSM) return net;
    return [vp, net](const torch::Tensor& x, double t, torch::Tensor& out) {
        net(x, t, out);
        const double beta = vp.beta(t), sigma = vp.sigma(t);
        out.mul_(-0.5 * beta / sigma).add_(x, 0.5 * beta); // beta (x + score) / 2, score = -eps / sigma
    };
}

Field sde_drift(const learn::VPScheduler& vp, Network net) {
    return [vp, net](const torch::Tensor& x, double t, torch::Tensor& out) {
        net(x, t, out);
        const double beta = vp.beta(t), sigma = vp.sigma(t);
        out.mul_(-beta / sigma).add_(x, 0.5 * beta); // beta (x / 2 + score)
    };
}

std::int64_t transport(const learn::ModelInfo& info, const Network& net, Method method, std::int64_t nfe, torch::Tensor& x,
                       const Noise& noise, double t_end) {
    torch::NoGradGuard no_grad;
    KINFLOW_REQUIRE(!learn::two_time(info.objective), "a meanflow or flowmap model is sampled by Integrator::jumps");
    if (info.objective == learn::Objective::W2Map) {
        auto out = torch::empty_like(x);
        net(x, 0.0, out);
        if (info.corrector.empty()) x.copy_(out);
        else x.add_(out); // a corrector: x + f(x), x the first stage's sample (run_sampling)
        return 1;
    }
    const std::int64_t steps = nfe / evaluations_per_step(method);
    const learn::VPScheduler vp{info.beta_min, info.beta_max};
    const double t1 = info.objective == learn::Objective::DSM ? 1.0 - info.vp_eps : t_end;
    Integrator integ;
    if (method == Method::EulerMaruyama) {
        KINFLOW_REQUIRE(info.objective == learn::Objective::DSM, "euler-maruyama needs a dsm model");
        return integ.sde(steps, 0.0, t1, x, sde_drift(vp, net), [vp](double t) { return std::sqrt(vp.beta(t)); }, noise);
    }
    return integ.ode(method, steps, 0.0, t1, x, ode_field(info.objective, vp, net));
}

Network network(learn::MLPWorkspace& ws, const torch::Tensor& cond_row, std::int64_t batch) {
    return [&ws, cond_row, batch](const torch::Tensor& x, double t, torch::Tensor& out) {
        const std::int64_t n = x.size(0);
        for (std::int64_t b = 0; b < n; b += batch) {
            const std::int64_t len = std::min(batch, n - b);
            auto o = out.narrow(0, b, len);
            ws.evaluate(x.narrow(0, b, len), t, cond_row, o);
        }
    };
}

Network potential_network(learn::MLP model, const learn::VPScheduler& vp, const torch::Tensor& cond_row,
                          std::int64_t batch) {
    return [model, vp, cond_row, batch](const torch::Tensor& x, double t, torch::Tensor& out) mutable {
        const std::int64_t n = x.size(0);
        for (std::int64_t b = 0; b < n; b += batch) {
            const std::int64_t len = std::min(batch, n - b);
            const auto c = cond_row.defined() && cond_row.numel() > 0 ? cond_row.reshape({1, -1}).expand({len, -1})
                                                                    : torch::Tensor();
            torch::NoGradGuard no_grad; // phi's input gradient in forward mode (learn::potential_derivatives)
            const auto p = learn::potential_derivatives(model, vp, x.narrow(0, b, len), torch::full({len}, static_cast<float>(t)), c,
                                                        false);
            auto o = out.narrow(0, b, len);
            at::neg_out(o, p.grad);
        }
    };
}

Network model_network(const learn::ModelInfo& info, learn::MLPWorkspace& ws, const torch::Tensor& cond_row,
                      std::int64_t batch) {
    if (info.spec.potential) return potential_network(ws.model(), {info.beta_min, info.beta_max}, cond_row, batch);
    return network(ws, cond_row, batch);
}

AverageField average_network(learn::MLPWorkspace& ws, const torch::Tensor& cond_row, std::int64_t batch) {
    return [&ws, cond_row, batch](const torch::Tensor& x, double s, double t, torch::Tensor& out) {
        const std::int64_t n = x.size(0);
        for (std::int64_t b = 0; b < n; b += batch) {
            const std::int64_t len = std::min(batch, n - b);
            auto o = out.narrow(0, b, len);
            ws.evaluate(x.narrow(0, b, len), s, cond_row, o, t - s);
        }
    };
}

// ---- kinflow-sample's entry ----------------------------------------------------------------------

SampleSummary run_sampling(const comm::Communicator& comm, const SampleConfig& cfg, const std::string& deck) {
    torch::set_num_threads(cfg.threads);
    learn::LoadedModel m;
    try {
        m = learn::load_model_file(cfg.model_file);
    } catch (const Error& e) {
        throw ModelError("sample.model_file", e.what());
    }
    const auto& info = m.info;
    const int dim = info.spec.dim;
    // A w2map corrector (train.corrector): its first stage, a meanflow or flowmap model, makes one jump first.
    learn::LoadedModel first;
    if (!info.corrector.empty()) {
        try {
            first = learn::load_model_file(info.corrector);
        } catch (const Error& e) {
            throw ModelError("sample.model_file", "its first stage (train.corrector): " + std::string(e.what()));
        }
        check_first_stage(info, first.info);
    }
    const Plan p = plan(cfg, info);
    SourceRows rows = source_rows(comm, cfg, info);
    const auto cond_row = torch::from_blob(const_cast<float*>(p.cond.data()), {static_cast<std::int64_t>(p.cond.size())});

    const std::int64_t n_local = rows.dec.n_local();
    auto x = torch::from_blob(rows.x.data(), {n_local, dim});
    learn::MLPWorkspace ws(m.model);
    const auto net = model_network(info, ws, cond_row, cfg.batch);
    const auto average = average_network(ws, cond_row, cfg.batch);
    std::unique_ptr<learn::MLPWorkspace> first_ws;
    AverageField first_stage;
    if (!first.model.is_empty()) {
        first_ws = std::make_unique<learn::MLPWorkspace>(first.model);
        first_stage = average_network(*first_ws, cond_row, cfg.batch);
    }
    const auto sde_rng = stream(cfg.seed, kStreamSde);
    std::int64_t nfe = 0;
    const auto t0 = std::chrono::steady_clock::now();
    // Chunks of `batch` rows go through the whole integration (stage buffers stay in cache).
    for (std::int64_t b = 0; b < n_local; b += cfg.batch) {
        const std::int64_t len = std::min(cfg.batch, n_local - b);
        auto chunk = x.narrow(0, b, len);
        const std::int64_t first = rows.dec.begin + b;
        const Noise noise = [&](std::int64_t step, torch::Tensor& z) {
            fill_noise(sde_rng, static_cast<std::uint64_t>(step), first, z.size(0), static_cast<int>(z.size(1)), false, z.data_ptr<float>());
        };
        if (p.jump_model) {
            Integrator integ;
            nfe = integ.jumps(cfg.nfe, 0.0, 1.0, chunk, average);
        } else {
            Integrator integ;
            const std::int64_t before = first_stage ? integ.jumps(1, 0.0, 1.0, chunk, first_stage) : 0;
            nfe = before + transport(info, net, cfg.method, cfg.nfe, chunk, noise, p.t_end);
        }
    }
    comm.barrier();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (n_local == 0) nfe = info.objective == learn::Objective::W2Map ? (first.model.is_empty() ? 1 : 2) : cfg.nfe;
    write_samples(comm, cfg, deck, info, p, rows, rows.x.data(), nfe);

    return summary(info, p, rows, nfe, seconds);
}

} // namespace kinflow::sample
