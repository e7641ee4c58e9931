// The torch-free part of sampling: request checks, source rows, output file (sample/plan.hpp).
#include "kinflow/sample/plan.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>

#include <Kokkos_Core.hpp>

#include "kinflow/core/options.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"

namespace kinflow::sample {

namespace {
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

/// sample.conserve = momentum_energy on this rank's physical rows `pos` (collective): the global
/// mean u and centred mean square w of the rows become the source's u0 and <|v0|^2> - |u0|^2 by
/// v -> u0 + s (v - u); returns s.
template <class View>
double conserve(const comm::Communicator& comm, const SourceRows& rows, int dim, const View& pos) {
    const auto n_local = static_cast<std::size_t>(rows.dec.n_local());
    const auto n = static_cast<double>(rows.count);
    std::vector<double> src = rows.sums, gen(static_cast<std::size_t>(dim), 0.0);
    comm.sum(src);
    for (std::size_t i = 0; i < n_local; ++i)
        for (int k = 0; k < dim; ++k) gen[k] += pos(i, k);
    comm.sum(gen);
    double u0sq = 0.0, centred = 0.0;
    for (int k = 0; k < dim; ++k) {
        src[k] /= n;
        gen[k] /= n;
        u0sq += src[k] * src[k];
    }
    for (std::size_t i = 0; i < n_local; ++i)
        for (int k = 0; k < dim; ++k) centred += (pos(i, k) - gen[k]) * (pos(i, k) - gen[k]);
    centred = comm.sum(centred) / n;
    const double target = src[dim] / n - u0sq;
    if (!(centred > 0.0) || !(target > 0.0) || !std::isfinite(centred)) {
        throw ModelError("sample.conserve", "the generated or the source rows have no spread about their mean (mean square " +
                                                std::to_string(centred) + ", source " + std::to_string(target) + ")");
    }
    const double s = std::sqrt(target / centred);
    for (std::size_t i = 0; i < n_local; ++i)
        for (int k = 0; k < dim; ++k) pos(i, k) = src[k] + s * (pos(i, k) - gen[k]);
    return s;
}
} // namespace

Plan plan(const SampleConfig& cfg, const learn::ModelInfo& info) {
    Plan p;
    if (cfg.condition.size() != info.conditions.size()) {
        std::string names;
        for (const auto& c : info.conditions) names += (names.empty() ? "" : ", ") + c;
        throw ModelError("sample.condition", "the model was trained with " + std::to_string(info.conditions.size()) +
                                                 " condition(s)" + (names.empty() ? "" : " (" + names + ")") + ", " +
                                                 std::to_string(cfg.condition.size()) + " value(s) given");
    }
    p.jump_model = learn::two_time(info.objective);
    if (p.jump_model && cfg.method != Method::Euler) {
        throw ModelError("sample.method", "a " + std::string(learn::to_string(info.objective)) + " model takes sample.nfe average-velocity jumps x <- x + (t' - t) u(x, t, t') "
                                          "(one evaluation each); " + std::string(to_string(cfg.method)) + " does not apply (use euler)");
    }
    if (cfg.method == Method::EulerMaruyama && info.objective != learn::Objective::DSM) {
        throw ModelError("sample.method", "euler-maruyama integrates the reverse VP SDE of a dsm model; this model is " +
                                              std::string(learn::to_string(info.objective)) + " (use euler, heun or rk4)");
    }
    p.time = info.target_time;
    p.cond.resize(cfg.condition.size());
    for (std::size_t c = 0; c < p.cond.size(); ++c) {
        p.cond[c] = static_cast<float>((cfg.condition[c] - info.norm.cond_mean[c]) / info.norm.cond_std[c]);
        if (info.conditions[c] == "time") p.time = cfg.condition[c];
    }
    // tfm: integrate the physical-time flow from the source snapshot's time to sample.time.
    if (info.objective == learn::Objective::TFM) {
        const double last = info.time_origin + info.time_scale;
        p.time = cfg.has_time ? cfg.time : last;
        const double tol = 1e-9 * std::max(1.0, std::fabs(last));
        if (p.time < info.time_origin - tol || p.time > last + tol) {
            std::ostringstream os;
            os << p.time << " is outside the trained time range [" << info.time_origin << ", " << last << "]";
            throw ModelError("sample.time", os.str());
        }
        p.t_end = (p.time - info.time_origin) / info.time_scale;
    } else if (cfg.has_time) {
        throw ModelError("sample.time", "only tfm models take a time (this model is " + std::string(learn::to_string(info.objective)) +
                                            "; a model conditioned on `time` takes it in sample.condition)");
    }
    if (cfg.conserve && info.source.rfind("snapshot:", 0) != 0) {
        throw ModelError("sample.conserve", "momentum_energy keeps the source snapshot's momentum and energy; this model's source is " +
                                                info.source + " (needs a model trained with source = snapshot:<index>)");
    }
    const bool map = info.objective == learn::Objective::W2Map;
    p.steps = map ? 1 : cfg.nfe / evaluations_per_step(cfg.method);
    p.method = map ? "map" : p.jump_model ? "average-velocity jumps" : to_string(cfg.method);
    return p;
}

void check_first_stage(const learn::ModelInfo& info, const learn::ModelInfo& first) {
    if (!learn::two_time(first.objective) || first.spec.dim != info.spec.dim)
        throw ModelError("sample.model_file", "its first stage '" + info.corrector + "' is not a meanflow or flowmap model of dim " + std::to_string(info.spec.dim));
}

CounterRng stream(std::uint64_t seed, std::uint32_t k) {
    return CounterRng(seed, static_cast<RngPurpose>(static_cast<std::uint32_t>(RngPurpose::User) + k));
}

void fill_noise(const CounterRng& rng, std::uint64_t step, std::int64_t first, std::int64_t n, int dim, bool uniform,
                float* z) {
    const std::int64_t d = dim;
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
            for (std::int64_t k = 4 * b; k < std::min(d, 4 * b + 4); ++k) z[i * d + k] = static_cast<float>(v[k - 4 * b]);
        }
    }
}

SourceRows source_rows(const comm::Communicator& comm, const SampleConfig& cfg, const learn::ModelInfo& info) {
    // Source rows: fresh noise, or a snapshot of the training run (rows in global-id order).
    SourceRows r;
    r.count = cfg.count;
    const int dim = info.spec.dim;
    std::vector<double> snapshot;
    const std::string kSnap = "snapshot:";
    const bool from_snapshot = info.source.rfind(kSnap, 0) == 0;
    if (from_snapshot) {
        const std::string file = !cfg.source_file.empty() ? cfg.source_file : (info.files.empty() ? "" : info.files.front());
        const std::string key = !cfg.source_file.empty() ? "sample.source_file" : "sample.model_file";
        try {
            io::SnapshotReader reader(comm, file);
            const int index = reader.resolve(std::stoi(info.source.substr(kSnap.size())));
            const std::int64_t n = reader.n_global(index);
            if (r.count == 0) r.count = n;
            if (r.count > n) throw Error("'" + file + "' snapshot " + std::to_string(index) + " has " + std::to_string(n) + " particles, sample.count = " + std::to_string(r.count));
            r.dec = comm::BlockDecomposition::make(r.count, comm.size(), comm.rank());
            const ParticleSet p = reader.read(index, r.dec.begin, r.dec.end);
            if (p.dim != dim) throw Error("'" + file + "' has dim " + std::to_string(p.dim) + ", the model dim " + std::to_string(dim));
            auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.position);
            snapshot.resize(h.size());
            r.sums.assign(static_cast<std::size_t>(dim) + 1, 0.0);
            for (std::size_t i = 0; i < h.extent(0); ++i) {
                for (int k = 0; k < dim; ++k) {
                    const double v = h(i, k);
                    snapshot[i * dim + k] = v;
                    r.sums[k] += v;
                    r.sums[dim] += v * v;
                }
            }
        } catch (const Error& e) {
            throw ModelError(key, std::string("source snapshot: ") + e.what());
        }
    } else {
        if (r.count == 0) throw ModelError("sample.count", "0 (one sample per source particle) needs a model trained with source = snapshot:<index>");
        r.dec = comm::BlockDecomposition::make(r.count, comm.size(), comm.rank());
    }
    const std::int64_t n_local = r.dec.n_local();
    try { // per row: the state, the integrator's stages, the output position and id
        check_memory("sample.count", std::to_string(r.count), static_cast<double>(n_local) * (40.0 * dim + 8.0));
    } catch (const OptionError& e) {
        throw ModelError("sample.count", "'" + e.value() + "': " + e.reason());
    }
    r.x.resize(static_cast<std::size_t>(n_local * dim));
    if (from_snapshot) {
        for (std::int64_t i = 0; i < n_local * dim; ++i) {
            const int k = static_cast<int>(i % dim);
            r.x[i] = static_cast<float>((snapshot[i] - info.norm.source_mean[k]) / info.norm.source_std[k]);
        }
    } else {
        fill_noise(stream(cfg.seed, kStreamInit), 0, r.dec.begin, n_local, dim, info.source == "uniform", r.x.data());
    }
    return r;
}

void write_samples(const comm::Communicator& comm, const SampleConfig& cfg, const std::string& deck,
                   const learn::ModelInfo& info, const Plan& plan, const SourceRows& rows, const float* x,
                   std::int64_t nfe) {
    // Back to physical units, then the standard schema (producer = sampler).
    const int dim = info.spec.dim;
    const std::int64_t n_local = rows.dec.n_local();
    ParticleSet particles;
    particles.allocate(static_cast<std::size_t>(n_local), dim, 0, false, "kinflow::sample");
    particles.n_global = rows.count;
    auto pos = Kokkos::create_mirror_view(particles.position);
    auto ids = Kokkos::create_mirror_view(particles.id);
    for (std::int64_t i = 0; i < n_local; ++i) {
        ids(i) = rows.dec.begin + i;
        for (int k = 0; k < dim; ++k) pos(i, k) = static_cast<double>(x[i * dim + k]) * info.norm.std[k] + info.norm.mean[k];
    }
    Diagnostics diag{{"nfe", static_cast<double>(nfe)}};
    if (cfg.conserve) diag.emplace_back("conserve_scale", conserve(comm, rows, dim, pos));
    Kokkos::deep_copy(particles.position, pos);
    Kokkos::deep_copy(particles.id, ids);
    io::FileInfo finfo{"sampler", deck + "\n" + train_section(info.deck), static_cast<std::int64_t>(cfg.seed), dim};
    std::unique_ptr<io::SnapshotWriter> out;
    try {
        out = std::make_unique<io::SnapshotWriter>(comm, cfg.output_file, finfo);
    } catch (const Error& e) {
        throw ModelError("output.file", e.what());
    }
    auto& writer = *out;
    writer.write_root_attr("nfe", nfe); // network evaluations per sample
    writer.write(particles, plan.time, plan.steps, diag);
    writer.finish();
}

SampleSummary summary(const learn::ModelInfo& info, const Plan& plan, const SourceRows& rows, std::int64_t nfe,
                      double seconds) {
    SampleSummary s;
    s.count = rows.count;
    s.nfe = nfe;
    s.steps = plan.steps;
    s.seconds = seconds;
    s.objective = learn::to_string(info.objective);
    s.method = plan.method;
    return s;
}

} // namespace kinflow::sample
