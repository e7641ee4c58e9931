// ODE/SDE integrators over a trained model, and kinflow-sample's entry.
#include "kinflow/sample/sampler.hpp"

#include <chrono>
#include <cmath>
#include <memory>
#include <sstream>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "kinflow/learn/score.hpp"
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

namespace {
constexpr std::uint32_t kStreamInit = 4, kStreamSde = 5;
CounterRng stream(std::uint64_t seed, std::uint32_t k) {
    return CounterRng(seed, static_cast<RngPurpose>(static_cast<std::uint32_t>(RngPurpose::User) + k));
}

/// Standard normals (or unit-variance uniforms) for rows with global ids first..first+n-1.
void fill_noise(const CounterRng& rng, std::uint64_t step, std::int64_t first, bool uniform, torch::Tensor& z) {
    const std::int64_t n = z.size(0), d = z.size(1);
    float* p = z.data_ptr<float>();
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t b = 0; 4 * b < d; ++b) {
            double v[4];
            const auto id = static_cast<std::uint64_t>(first + i);
            if (uniform) {
                rng.uniform4(step, id, static_cast<std::uint32_t>(b), v);
                for (double& u : v) u = 1.7320508075688772 * (2.0 * u - 1.0);
            } else {
                rng.normal4(step, id, static_cast<std::uint32_t>(b), v);
            }
            for (std::int64_t k = 4 * b; k < std::min(d, 4 * b + 4); ++k) p[i * d + k] = static_cast<float>(v[k - 4 * b]);
        }
    }
}

/// The [train] section of an INI text.
std::string train_section(const std::string& ini) {
    std::istringstream in(ini);
    std::string line, out;
    bool inside = false;
    while (std::getline(in, line)) {
        if (!line.empty() && line[0] == '[') inside = line.rfind("[train]", 0) == 0;
        if (inside) out += line + "\n";
    }
    return out;
}
} // namespace

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
        if (!learn::two_time(first.info.objective) || first.info.spec.dim != dim)
            throw ModelError("sample.model_file", "its first stage '" + info.corrector + "' is not a meanflow or flowmap model of dim " + std::to_string(dim));
    }
    if (cfg.condition.size() != info.conditions.size()) {
        std::string names;
        for (const auto& c : info.conditions) names += (names.empty() ? "" : ", ") + c;
        throw ModelError("sample.condition", "the model was trained with " + std::to_string(info.conditions.size()) +
                                                 " condition(s)" + (names.empty() ? "" : " (" + names + ")") + ", " +
                                                 std::to_string(cfg.condition.size()) + " value(s) given");
    }
    const bool jump_model = learn::two_time(info.objective);
    if (jump_model && cfg.method != Method::Euler) {
        throw ModelError("sample.method", "a " + std::string(learn::to_string(info.objective)) + " model takes sample.nfe average-velocity jumps x <- x + (t' - t) u(x, t, t') "
                                          "(one evaluation each); " + std::string(to_string(cfg.method)) + " does not apply (use euler)");
    }
    if (cfg.method == Method::EulerMaruyama && info.objective != learn::Objective::DSM) {
        throw ModelError("sample.method", "euler-maruyama integrates the reverse VP SDE of a dsm model; this model is " +
                                              std::string(learn::to_string(info.objective)) + " (use euler, heun or rk4)");
    }

    // Source rows: fresh noise, or a snapshot of the training run (rows in global-id order).
    std::int64_t count = cfg.count;
    std::vector<double> source_rows;
    const std::string kSnap = "snapshot:";
    const bool from_snapshot = info.source.rfind(kSnap, 0) == 0;
    comm::BlockDecomposition dec;
    double time = info.target_time;
    if (from_snapshot) {
        const std::string file = !cfg.source_file.empty() ? cfg.source_file : (info.files.empty() ? "" : info.files.front());
        const std::string key = !cfg.source_file.empty() ? "sample.source_file" : "sample.model_file";
        try {
            io::SnapshotReader reader(comm, file);
            const int index = reader.resolve(std::stoi(info.source.substr(kSnap.size())));
            const std::int64_t n = reader.n_global(index);
            if (count == 0) count = n;
            if (count > n) throw Error("'" + file + "' snapshot " + std::to_string(index) + " has " + std::to_string(n) + " particles, sample.count = " + std::to_string(count));
            dec = comm::BlockDecomposition::make(count, comm.size(), comm.rank());
            const ParticleSet p = reader.read(index, dec.begin, dec.end);
            if (p.dim != dim) throw Error("'" + file + "' has dim " + std::to_string(p.dim) + ", the model dim " + std::to_string(dim));
            auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.position);
            source_rows.assign(h.data(), h.data() + h.size());
        } catch (const Error& e) {
            throw ModelError(key, std::string("source snapshot: ") + e.what());
        }
    } else {
        if (count == 0) throw ModelError("sample.count", "0 (one sample per source particle) needs a model trained with source = snapshot:<index>");
        dec = comm::BlockDecomposition::make(count, comm.size(), comm.rank());
    }
    try { // per row: the state, the integrator's stages, the output position and id
        check_memory("sample.count", std::to_string(count), static_cast<double>(dec.n_local()) * (40.0 * dim + 8.0));
    } catch (const OptionError& e) {
        throw ModelError("sample.count", "'" + e.value() + "': " + e.reason());
    }
    std::vector<float> cond(cfg.condition.size());
    for (std::size_t c = 0; c < cond.size(); ++c) {
        cond[c] = static_cast<float>((cfg.condition[c] - info.norm.cond_mean[c]) / info.norm.cond_std[c]);
        if (info.conditions[c] == "time") time = cfg.condition[c];
    }
    const auto cond_row = torch::from_blob(cond.data(), {static_cast<std::int64_t>(cond.size())});
    // tfm: integrate the physical-time flow from the source snapshot's time to sample.time.
    double t_end = 1.0;
    if (info.objective == learn::Objective::TFM) {
        const double last = info.time_origin + info.time_scale;
        time = cfg.has_time ? cfg.time : last;
        const double tol = 1e-9 * std::max(1.0, std::fabs(last));
        if (time < info.time_origin - tol || time > last + tol) {
            std::ostringstream os;
            os << time << " is outside the trained time range [" << info.time_origin << ", " << last << "]";
            throw ModelError("sample.time", os.str());
        }
        t_end = (time - info.time_origin) / info.time_scale;
    } else if (cfg.has_time) {
        throw ModelError("sample.time", "only tfm models take a time (this model is " + std::string(learn::to_string(info.objective)) +
                                            "; a model conditioned on `time` takes it in sample.condition)");
    }

    const std::int64_t n_local = dec.n_local();
    auto x = torch::empty({n_local, dim});
    float* px = x.data_ptr<float>();
    if (from_snapshot) {
        for (std::int64_t i = 0; i < n_local * dim; ++i) {
            const int k = static_cast<int>(i % dim);
            px[i] = static_cast<float>((source_rows[i] - info.norm.source_mean[k]) / info.norm.source_std[k]);
        }
    } else {
        auto all = x;
        fill_noise(stream(cfg.seed, kStreamInit), 0, dec.begin, info.source == "uniform", all);
    }

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
        const std::int64_t first = dec.begin + b;
        const Noise noise = [&](std::int64_t step, torch::Tensor& z) { fill_noise(sde_rng, static_cast<std::uint64_t>(step), first, false, z); };
        if (jump_model) {
            Integrator integ;
            nfe = integ.jumps(cfg.nfe, 0.0, 1.0, chunk, average);
        } else {
            Integrator integ;
            const std::int64_t before = first_stage ? integ.jumps(1, 0.0, 1.0, chunk, first_stage) : 0;
            nfe = before + transport(info, net, cfg.method, cfg.nfe, chunk, noise, t_end);
        }
    }
    comm.barrier();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (n_local == 0) nfe = info.objective == learn::Objective::W2Map ? (first.model.is_empty() ? 1 : 2) : cfg.nfe;

    // Back to physical units, then the standard schema (producer = sampler).
    ParticleSet particles;
    particles.allocate(static_cast<std::size_t>(n_local), dim, 0, false, "kinflow::sample");
    particles.n_global = count;
    auto pos = Kokkos::create_mirror_view(particles.position);
    auto ids = Kokkos::create_mirror_view(particles.id);
    for (std::int64_t i = 0; i < n_local; ++i) {
        ids(i) = dec.begin + i;
        for (int k = 0; k < dim; ++k) pos(i, k) = static_cast<double>(px[i * dim + k]) * info.norm.std[k] + info.norm.mean[k];
    }
    Kokkos::deep_copy(particles.position, pos);
    Kokkos::deep_copy(particles.id, ids);
    const std::int64_t steps = info.objective == learn::Objective::W2Map ? 1 : cfg.nfe / evaluations_per_step(cfg.method);
    io::FileInfo finfo{"sampler", deck + "\n" + train_section(info.deck), static_cast<std::int64_t>(cfg.seed), dim};
    std::unique_ptr<io::SnapshotWriter> out;
    try {
        out = std::make_unique<io::SnapshotWriter>(comm, cfg.output_file, finfo);
    } catch (const Error& e) {
        throw ModelError("output.file", e.what());
    }
    auto& writer = *out;
    writer.write_root_attr("nfe", nfe); // network evaluations per sample
    writer.write(particles, time, steps, {{"nfe", static_cast<double>(nfe)}});
    writer.finish();

    SampleSummary s;
    s.count = count;
    s.nfe = nfe;
    s.steps = steps;
    s.seconds = seconds;
    s.objective = learn::to_string(info.objective);
    s.method = info.objective == learn::Objective::W2Map ? "map" : jump_model ? "average-velocity jumps" : to_string(cfg.method);
    return s;
}

} // namespace kinflow::sample
