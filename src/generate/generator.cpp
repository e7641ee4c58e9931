// kinflow-generate's samplers on generate::Network (generate/generate.hpp).
#include "kinflow/generate/generate.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "kinflow/generate/network.hpp"
#include "kinflow/learn/options.hpp"
#include "kinflow/sample/plan.hpp"

namespace kinflow::generate {

using sample::Method;

namespace {

/// One chunk of rows carried through the whole integration with its own stage buffers, the same
/// float32 steps as sample::Integrator (x <- x + a k with a rounded to float, as LibTorch's add_).
class Stepper {
  public:
    Stepper(const Network& net, const std::vector<float>& cond) : _net(net), _cond(cond) {}

    /// k = network(x) at time t (and gap) for the chunk's rows.
    void field(const float* x, double t, double gap, float* k) {
        const Call call = prepare(_net, t, _cond.data(), gap);
        evaluate(_net, call, x, _n, k, _scratch);
    }
    void reserve(std::int64_t n, int dim) {
        _n = n;
        _len = static_cast<std::size_t>(n * dim);
        for (auto* v : {&_k1, &_k2, &_k3, &_k4, &_tmp}) v->resize(_len);
    }
    static void axpy(float* y, const float* x, double a, std::size_t len) { // y += a x
        const float af = static_cast<float>(a);
        for (std::size_t i = 0; i < len; ++i) y[i] += af * x[i];
    }
    void add_out(float* out, const float* x, const float* k, double a) { // out = x + a k
        const float af = static_cast<float>(a);
        for (std::size_t i = 0; i < _len; ++i) out[i] = x[i] + af * k[i];
    }

    /// Integrator::ode: `steps` equal steps of `method` from t0 to t1, in place.
    void ode(Method method, std::int64_t steps, double t0, double t1, float* x) {
        const double h = (t1 - t0) / static_cast<double>(steps);
        float *k1 = _k1.data(), *k2 = _k2.data(), *k3 = _k3.data(), *k4 = _k4.data(), *tmp = _tmp.data();
        for (std::int64_t n = 0; n < steps; ++n) {
            const double t = t0 + static_cast<double>(n) * h;
            switch (method) {
            case Method::Euler:
            case Method::EulerMaruyama:
                field(x, t, 0.0, k1);
                axpy(x, k1, h, _len);
                break;
            case Method::Heun: // explicit trapezoidal rule (Heun 1900), second order
                field(x, t, 0.0, k1);
                add_out(tmp, x, k1, h);
                field(tmp, t + h, 0.0, k2);
                axpy(x, k1, 0.5 * h, _len);
                axpy(x, k2, 0.5 * h, _len);
                break;
            case Method::RK4: // classical Runge–Kutta, fourth order
                field(x, t, 0.0, k1);
                add_out(tmp, x, k1, 0.5 * h);
                field(tmp, t + 0.5 * h, 0.0, k2);
                add_out(tmp, x, k2, 0.5 * h);
                field(tmp, t + 0.5 * h, 0.0, k3);
                add_out(tmp, x, k3, h);
                field(tmp, t + h, 0.0, k4);
                axpy(k2, k3, 1.0, _len);
                axpy(x, k1, h / 6.0, _len);
                axpy(x, k2, h / 3.0, _len);
                axpy(x, k4, h / 6.0, _len);
                break;
            }
        }
    }
    /// Integrator::jumps: x <- x + (t' - t) u(x, t, t') on a uniform grid of `steps` intervals
    /// (mean-flow sampling, Geng et al. 2025).
    void jumps(std::int64_t steps, double t0, double t1, float* x) {
        const double h = (t1 - t0) / static_cast<double>(steps);
        for (std::int64_t n = 0; n < steps; ++n) {
            const double s = t0 + static_cast<double>(n) * h;
            const double t = n + 1 == steps ? t1 : t0 + static_cast<double>(n + 1) * h;
            field(x, s, t - s, _k1.data());
            axpy(x, _k1.data(), t - s, _len);
        }
    }
    /// w2map: x <- f(x), or x <- x + f(x) for a corrector.
    void map(bool corrector, float* x) {
        field(x, 0.0, 0.0, _k1.data());
        if (corrector) axpy(x, _k1.data(), 1.0, _len);
        else std::copy(_k1.begin(), _k1.end(), x);
    }

  private:
    const Network& _net;
    const std::vector<float>& _cond;
    Scratch _scratch;
    std::int64_t _n = 0;
    std::size_t _len = 0;
    std::vector<float> _k1, _k2, _k3, _k4, _tmp;
};

Network load(const std::string& model_file, const std::string& what) {
    try {
        return load_network(model_h5_for(model_file));
    } catch (const Error& e) {
        throw sample::ModelError("sample.model_file", what + e.what());
    }
}

} // namespace

std::string model_h5_for(const std::string& model_file) {
    const std::string h5 = ".h5";
    const bool is_h5 = model_file.size() > h5.size() && model_file.compare(model_file.size() - h5.size(), h5.size(), h5) == 0;
    return is_h5 ? model_file : learn::model_h5_path(model_file);
}

sample::SampleSummary run_generation(const comm::Communicator& comm, const sample::SampleConfig& cfg,
                                     const std::string& deck) {
    const Network net = load(cfg.model_file, "");
    const auto& info = net.info;
    if (info.objective == learn::Objective::DSM) {
        throw sample::ModelError("sample.model_file", "'" + net.path + "' is a dsm model; kinflow-generate runs the flow, jump "
                                                      "and map models (fm, otfm, reflow, tfm, meanflow, flowmap, w2map): use kinflow-sample");
    }
    Network first;
    if (!info.corrector.empty()) {
        first = load(info.corrector, "its first stage (train.corrector): ");
        sample::check_first_stage(info, first.info);
    }
    const sample::Plan p = sample::plan(cfg, info);
    sample::SourceRows rows = sample::source_rows(comm, cfg, info);
    const int dim = info.spec.dim;
    const std::int64_t n_local = rows.dec.n_local();
    const std::int64_t chunks = (n_local + cfg.batch - 1) / cfg.batch;
    const bool map = info.objective == learn::Objective::W2Map;
    const std::int64_t nfe = map ? (first.linears.empty() ? 1 : 2) : cfg.nfe;

    const auto t0 = std::chrono::steady_clock::now();
    // Chunks of `batch` rows go through the whole integration (stage buffers stay in cache);
    // sample.threads threads take every threads-th chunk.
    auto work = [&](int tid, int nthreads) {
        Stepper step(net, p.cond), first_step(first, p.cond);
        for (std::int64_t c = tid; c < chunks; c += nthreads) {
            const std::int64_t b = c * cfg.batch, len = std::min(cfg.batch, n_local - b);
            float* x = rows.x.data() + b * dim;
            step.reserve(len, dim);
            if (p.jump_model) {
                step.jumps(cfg.nfe, 0.0, 1.0, x);
            } else if (map) {
                if (!first.linears.empty()) {
                    first_step.reserve(len, dim);
                    first_step.jumps(1, 0.0, 1.0, x);
                }
                step.map(!info.corrector.empty(), x);
            } else {
                step.ode(cfg.method, p.steps, 0.0, p.t_end, x);
            }
        }
    };
    const int nthreads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(cfg.threads, chunks)));
    if (nthreads == 1) {
        work(0, 1);
    } else {
        std::vector<std::thread> pool;
        for (int t = 0; t < nthreads; ++t) pool.emplace_back(work, t, nthreads);
        for (auto& t : pool) t.join();
    }
    comm.barrier();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sample::write_samples(comm, cfg, deck, info, p, rows, rows.x.data(), nfe);

    return sample::summary(info, p, rows, nfe, seconds);
}

} // namespace kinflow::generate
