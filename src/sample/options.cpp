#include "kinflow/sample/options.hpp"

#include <algorithm>
#include <limits>

#include <boost/program_options.hpp>

#include "kinflow/core/options.hpp"
#include "kinflow/learn/options.hpp"

namespace kinflow::sample {

namespace po = boost::program_options;

const char* to_string(Method m) {
    switch (m) {
    case Method::Euler: return "euler";
    case Method::Heun: return "heun";
    case Method::RK4: return "rk4";
    case Method::EulerMaruyama: return "euler-maruyama";
    }
    return "?";
}

int evaluations_per_step(Method m) {
    switch (m) {
    case Method::Heun: return 2;
    case Method::RK4: return 4;
    default: return 1;
    }
}

void describe(po::options_description& d, SampleOptions& o) {
    d.add_options()("sample.model_file", po::value(&o.model_file)->default_value(o.model_file),
                    "model written by kinflow-train (train.model_file)")(
        "sample.count", po::value(&o.count)->default_value(o.count),
        "samples to draw, >= 0 (0: one per particle of the source snapshot when the model was trained with "
        "source = snapshot:<index>); split over ranks in blocks")(
        "sample.method", po::value(&o.method)->default_value(o.method),
        "ODE: euler | heun | rk4 (flow matching velocity, or the VP probability-flow ODE for dsm); SDE: "
        "euler-maruyama (reverse VP SDE, dsm only; the last step adds no noise); ignored by w2map (one evaluation); "
        "meanflow, flowmap: euler only (their own jumps, see nfe)")(
        "sample.nfe", po::value(&o.nfe)->default_value(o.nfe),
        "network evaluations per sample, >= 1: steps = nfe / (1 euler, 2 heun, 4 rk4, 1 euler-maruyama); meanflow, "
        "flowmap: nfe jumps x <- x + (t' - t) u(x, t, t') = X(x, t, t') on a uniform grid of [0, 1] (1 | 2 | 4 | ...). Recorded as the "
        "output's root attribute nfe")(
        "sample.condition", po::value(&o.condition)->default_value(o.condition),
        "condition values, one per name in the model's train.condition (raw units, e.g. 0.5 or the time)")(
        "sample.time", po::value(&o.time)->default_value(o.time),
        "tfm models: the physical time to generate, within the trained range [first, last snapshot time] (empty: the "
        "last); the flow is integrated from the source snapshot's time to it with sample.method and sample.nfe")(
        "sample.source_file", po::value(&o.source_file)->default_value(o.source_file),
        "file holding the source snapshot for models trained with source = snapshot:<index> (default: the "
        "training data file)")(
        "sample.batch", po::value(&o.batch)->default_value(o.batch), "rows per network evaluation (memory), >= 1")(
        "sample.threads", po::value(&o.threads)->default_value(o.threads),
        "threads per rank, 1..256 (kinflow-sample: LibTorch intra-op threads; kinflow-generate: worker threads "
        "over 64-row blocks)")(
        "sample.device", po::value(&o.device)->default_value(o.device),
        "cpu | cuda; cuda is rejected with a one-line reason (Debian's libtorch-dev is CPU-only; the GPU sampling path is not written yet)")(
        "sample.conserve", po::value(&o.conserve)->default_value(o.conserve),
        "none | momentum_energy: models trained with source = snapshot:<index> only. momentum_energy projects the "
        "generated set onto the source rows' mean and mean square, v -> u0 + s (v - u), u the generated mean, u0 the "
        "source's, s = sqrt((<|v0|^2> - |u0|^2) / <|v - u|^2>) over all ranks: the momentum and energy per particle of "
        "equal-mass particles, which a spatially homogeneous collision process (the Boltzmann equation, DSMC) "
        "conserves exactly and a learned flow only approximately. The factor s is written to the output's "
        "/diagnostics/conserve_scale");
}

void describe_output(po::options_description& d, std::string& file) {
    d.add_options()("output.file", po::value(&file)->default_value(file),
                    "HDF5 output (kinflow schema, producer = sampler, one snapshot; written as FILE.tmp, renamed when complete)");
}

SampleConfig validate(const SampleOptions& o, std::int64_t seed, const std::string& output_file) {
    SampleConfig c;
    check_range("run.seed", seed, std::int64_t{0}, std::numeric_limits<std::int64_t>::max());
    c.seed = static_cast<std::uint64_t>(seed);
    if (o.model_file.empty()) throw OptionError("sample.model_file", o.model_file, "must not be empty");
    c.model_file = o.model_file;
    check_range("sample.count", o.count, std::int64_t{0}, std::int64_t{1} << 40);
    c.count = o.count;
    check_choice("sample.method", o.method, {"euler", "heun", "rk4", "euler-maruyama"});
    c.method = o.method == "euler" ? Method::Euler : o.method == "heun" ? Method::Heun : o.method == "rk4" ? Method::RK4 : Method::EulerMaruyama;
    check_range("sample.nfe", o.nfe, std::int64_t{1}, std::int64_t{1} << 30);
    const int per = evaluations_per_step(c.method);
    if (o.nfe % per != 0) {
        throw OptionError("sample.nfe", std::to_string(o.nfe),
                          std::string(to_string(c.method)) + " makes " + std::to_string(per) + " evaluations per step: nfe must be a multiple of " + std::to_string(per));
    }
    c.nfe = o.nfe;
    c.condition_text = o.condition;
    if (o.condition.find_first_not_of(" \t") != std::string::npos) {
        const int n = 1 + static_cast<int>(std::count(o.condition.begin(), o.condition.end(), ','));
        c.condition = parse_vector("sample.condition", o.condition, n);
    }
    if (o.time.find_first_not_of(" \t") != std::string::npos) {
        c.time = parse_vector("sample.time", o.time, 1).front();
        c.has_time = true;
    }
    c.source_file = o.source_file;
    check_range("sample.batch", o.batch, std::int64_t{1}, std::int64_t{1} << 30);
    c.batch = o.batch;
    check_range("sample.threads", static_cast<std::int64_t>(o.threads), 1, 256);
    c.threads = o.threads;
    check_choice("sample.device", o.device, {"cpu", "cuda"});
    learn::check_device("sample.device", o.device);
    check_choice("sample.conserve", o.conserve, {"none", "momentum_energy"});
    c.conserve = o.conserve == "momentum_energy";
    if (output_file.empty()) throw OptionError("output.file", output_file, "must not be empty");
    c.output_file = output_file;
    return c;
}

} // namespace kinflow::sample
