#include "kinflow/learn/options.hpp"

#include <cstdlib>
#include <limits>
#include <sstream>

#include <boost/program_options.hpp>

#include "kinflow/core/options.hpp"

namespace kinflow::learn {

namespace po = boost::program_options;

/// meanflow's default largest time frequency (train.time_max_frequency = 0); measured, docs/learning.md.
constexpr double kMeanFlowMaxFrequency = 3.0;

namespace {
std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    const auto e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(trim(item));
    return out;
}

bool parse_int(const std::string& s, long long& v) {
    if (s.empty()) return false;
    char* end = nullptr;
    v = std::strtoll(s.c_str(), &end, 10);
    return *end == '\0';
}
} // namespace

const char* to_string(Objective o) {
    switch (o) {
    case Objective::FM: return "fm";
    case Objective::OTFM: return "otfm";
    case Objective::DSM: return "dsm";
    case Objective::W2Map: return "w2map";
    case Objective::TFM: return "tfm";
    case Objective::MeanFlow: return "meanflow";
    }
    return "?";
}

const char* to_string(Activation a) {
    switch (a) {
    case Activation::SiLU: return "silu";
    case Activation::GELU: return "gelu";
    case Activation::Tanh: return "tanh";
    }
    return "?";
}

Objective parse_objective(const std::string& s) {
    if (s == "fm") return Objective::FM;
    if (s == "otfm") return Objective::OTFM;
    if (s == "dsm") return Objective::DSM;
    if (s == "w2map") return Objective::W2Map;
    if (s == "tfm") return Objective::TFM;
    if (s == "meanflow") return Objective::MeanFlow;
    throw Error("unknown objective '" + s + "'");
}

Activation parse_activation(const std::string& s) {
    if (s == "silu") return Activation::SiLU;
    if (s == "gelu") return Activation::GELU;
    if (s == "tanh") return Activation::Tanh;
    throw Error("unknown activation '" + s + "'");
}

std::string checkpoint_path(const std::string& model_file) { return model_file + ".ckpt"; }

std::string model_h5_path(const std::string& model_file) {
    const std::string pt = ".pt";
    const bool is_pt =
        model_file.size() > pt.size() && model_file.compare(model_file.size() - pt.size(), pt.size(), pt) == 0;
    return (is_pt ? model_file.substr(0, model_file.size() - pt.size()) : model_file) + ".h5";
}

void check_device(const std::string& key, const std::string& device) {
    if (device != "cuda") return;
#ifdef KINFLOW_TORCH_CUDA
    throw OptionError(key, device,
                      "this LibTorch has CUDA, but kinflow's trainer and sampler run their hand-written passes on the "
                      "CPU only so far; use cpu");
#else
    throw OptionError(key, device,
                      "this kinflow is built against a CPU-only LibTorch (Debian's libtorch-dev); a GPU needs a "
                      "CUDA-enabled LibTorch (Torch_DIR); use cpu");
#endif
}

void describe(po::options_description& d, std::int64_t& seed) {
    d.add_options()("run.seed", po::value(&seed)->default_value(seed),
                    "master seed: parameter initialisation, minibatches, noise, builtin data; >= 0");
}

void describe(po::options_description& d, TrainOptions& o) {
    d.add_options()("train.objective", po::value(&o.objective)->default_value(o.objective),
                    "fm (conditional flow matching, linear CondOT path) | otfm (flow matching with minibatch exact OT "
                    "coupling) | dsm (denoising score matching on the VP SDE, lambda(t) = sigma_t^2) | w2map (DeepParticle "
                    "one-step map trained on minibatch exact W2) | tfm (flow matching in physical time: a velocity v(x, t) "
                    "regressed on straight segments between consecutive snapshots of a run, source = snapshot:<first>, "
                    "snapshot = the later ones in time order; kinflow-sample integrates it from the first snapshot's "
                    "particles to any sample.time in the trained range) | meanflow (average velocity u(x, s, t) over [s, t] on the "
                    "fm path, Geng et al. 2025: target v + (t - s)(v . grad_x u + du/ds) by an exact forward-mode JVP, "
                    "stop-gradient; kinflow-sample takes sample.nfe jumps x <- x + (t' - t) u(x, t, t'), 1 NFE = one "
                    "evaluation)")(
        "train.data", po::value(&o.data)->default_value(o.data),
        "target data: a kinflow HDF5 file, a comma list of files (one model for a parameter family, see condition), "
        "or builtin:<name> with name gaussian | eight_gaussians | checkerboard (2D, generated in the program)")(
        "train.builtin_size", po::value(&o.builtin_size)->default_value(o.builtin_size),
        "rows generated for builtin data, >= 1")(
        "train.snapshot", po::value(&o.snapshot)->default_value(o.snapshot),
        "target snapshot index in each file (negative counts from the end: -1 = last), or a comma list of indices")(
        "train.source", po::value(&o.source)->default_value(o.source),
        "source X_0: gaussian (standard normal) | uniform (box [-sqrt3, sqrt3]^dim, unit variance) | snapshot:<index> "
        "(another snapshot of the same file, paired row by row by particle id: the coupling the simulation produced); "
        "gaussian and uniform live in normalised coordinates")(
        "train.condition", po::value(&o.condition)->default_value(o.condition),
        "comma list of conditioning values per file and snapshot: `time` (the snapshot time) or a key `section.name` "
        "of the file's recorded deck (e.g. ks.chi); empty = unconditional. Conditions are normalised by the mean and "
        "standard deviation of the training values (recorded in the model file); `ks.chi,time` over several snapshots "
        "makes one model for any (chi, t) in the training range")(
        "train.condition_embedding", po::value(&o.condition_embedding)->default_value(o.condition_embedding),
        "how the network sees the time features and conditions: concat (extra inputs of the first layer) | film (an "
        "embedding MLP of width `film_width` maps [time features, conditions] to a scale and shift of every hidden layer, "
        "h -> act((W h + b) (1 + gamma) + beta), zero-initialised so training starts from the unmodulated network; "
        "FiLM, Perez et al. 2018). Needs time features or conditions")(
        "train.film_width", po::value(&o.film_width)->default_value(o.film_width),
        "film: hidden width of the embedding MLP, 1..4096 (its modulation layer costs film_width x 2 layers x hidden "
        "multiply-adds per row: 32 keeps a film step within ~2x a concat step at hidden 128)")(
        "train.parts_per_batch", po::value(&o.parts_per_batch)->default_value(o.parts_per_batch),
        "0: minibatch rows drawn uniformly over all (file, snapshot) parts; k >= 1: each global minibatch holds k "
        "parts drawn at random, global_batch / k rows each, so that the minibatch couplings of w2map, otfm and tfm "
        "(exact assignments within a part) pair groups of that size")(
        "train.coupling", po::value(&o.coupling)->default_value(o.coupling),
        "tfm: how the rows of consecutive snapshots are paired: ot (exact assignment within each part of the "
        "minibatch: straight, near-optimal segments) | id (the simulation's own pairing by particle id)")(
        "train.hidden", po::value(&o.hidden)->default_value(o.hidden), "MLP width, 1..4096")(
        "train.layers", po::value(&o.layers)->default_value(o.layers), "MLP hidden layers, 1..32")(
        "train.activation", po::value(&o.activation)->default_value(o.activation), "silu | gelu | tanh")(
        "train.time_features", po::value(&o.time_features)->default_value(o.time_features),
        "sinusoidal time features [sin(w_k t), cos(w_k t)], w_k geometric in [time_max_frequency / 100, "
        "time_max_frequency]; even, 2..256 (unused by w2map)")(
        "train.time_max_frequency", po::value(&o.time_max_frequency)->default_value(o.time_max_frequency),
        "largest time frequency w_k, in [0.01, 10000]; 0 = the objective's default: 100 (w_k in [1, 100]), meanflow "
        "3 (its target v + (t - s) du/ds differentiates the features, multiplying a component at frequency w by "
        "up to w (t - s): high frequencies make the stop-gradient regression unstable)")(
        "train.batch_size", po::value(&o.batch_size)->default_value(o.batch_size),
        "minibatch per rank, >= 1 (global batch = ranks x batch_size, drawn with replacement over the whole data set)")(
        "train.steps", po::value(&o.steps)->default_value(o.steps), "optimizer steps, >= 0")(
        "train.lr", po::value(&o.lr)->default_value(o.lr), "peak learning rate, > 0")(
        "train.lr_schedule", po::value(&o.lr_schedule)->default_value(o.lr_schedule),
        "cosine (decay to 0 at `steps`) | constant")(
        "train.warmup", po::value(&o.warmup)->default_value(o.warmup), "linear warm-up steps, >= 0")(
        "train.optimizer", po::value(&o.optimizer)->default_value(o.optimizer),
        "adam (weight_decay as L2 term) | adamw (decoupled weight decay); betas 0.9, 0.999, eps 1e-8")(
        "train.weight_decay", po::value(&o.weight_decay)->default_value(o.weight_decay), "weight decay, >= 0")(
        "train.ema", po::value(&o.ema)->default_value(o.ema),
        "EMA decay of the weights in [0, 1); 0 = off; the model file holds the EMA weights when on")(
        "train.beta_min", po::value(&o.beta_min)->default_value(o.beta_min), "VP SDE beta(s) at s = 0 (dsm), > 0")(
        "train.beta_max", po::value(&o.beta_max)->default_value(o.beta_max), "VP SDE beta(s) at s = 1 (dsm), >= beta_min")(
        "train.vp_eps", po::value(&o.vp_eps)->default_value(o.vp_eps),
        "dsm: smallest diffusion time (training and sampling stop at t = 1 - vp_eps), in (0, 0.5)")(
        "train.meanflow_fraction", po::value(&o.meanflow_fraction)->default_value(o.meanflow_fraction),
        "meanflow: fraction of the rows with s < t, in [0, 1] (s, t: two logit-normal(0, 1.6) draws, sorted; the "
        "other rows have s = t, where the loss is fm's); Geng et al. use 0.25 on ImageNet, 0.75 on CIFAR-10")(
        "train.meanflow_power", po::value(&o.meanflow_power)->default_value(o.meanflow_power),
        "meanflow: power p of the adaptive loss weight 1 / (sg(l) + 1e-3)^p of each row's squared error l, in [0, 4] "
        "(0 = plain squared error, the most accurate here on Gaussian data; Geng et al. use 1 on ImageNet, 0.75 on "
        "CIFAR-10)")(
        "train.score_model", po::value(&o.score_model)->default_value(o.score_model),
        "dsm: vector (the network predicts the noise eps_hat, score = -eps_hat / sigma_t) | potential (the network "
        "outputs a scalar phi(x, t), score = grad_x phi / sigma_t = grad_x u with u = phi / sigma_t ~ log p_t up to a "
        "function of t: conservative by construction; trained and sampled with LibTorch autograd, ~3-10x slower per "
        "step than vector)")(
        "train.fp_residual_weight", po::value(&o.fp_residual_weight)->default_value(o.fp_residual_weight),
        "dsm with score_model = potential: weight w >= 0 of the log-density Fokker-Planck residual of the VP SDE, "
        "loss = DSM + w mean (sigma_t^2 R / beta)^2 with R = d_s u + div f + f . grad u - (beta / 2)(lap u + |grad u|^2), "
        "f = -beta x / 2, s = 1 - t the diffusion time, at the minibatch's noised points (Deveney et al.; "
        "GENERATIVE.md; R / beta is the residual in the OU time int beta ds, sigma_t^2 DSM's weighting: score errors "
        "enter R as 1 / sigma_t^2); 0 = off. The exact Laplacian costs dim extra backward passes")(
        "train.threads", po::value(&o.threads)->default_value(o.threads), "LibTorch intra-op threads per rank, 1..256")(
        "train.device", po::value(&o.device)->default_value(o.device),
        "cpu | cuda; cuda is rejected with a one-line reason (Debian's libtorch-dev is CPU-only; the GPU training path is not written yet)")(
        "train.model_file", po::value(&o.model_file)->default_value(o.model_file),
        "trained model (LibTorch archive: weights, architecture, normalisation, objective, schedule, conditions); "
        "the checkpoint is MODEL_FILE.ckpt")(
        "train.model_h5", po::value(&o.model_h5)->default_value(o.model_h5),
        "the same trained model as plain HDF5 for tools without LibTorch (float32 weights, architecture, objective, "
        "normalisation, conditions; schema docs/model_h5.md; postprocess/kinflow_model.py evaluates it with numpy); "
        "empty = MODEL_FILE with .pt replaced by .h5 (or + .h5)")(
        "train.loss_file", po::value(&o.loss_file)->default_value(o.loss_file),
        "loss history, CSV `step,loss,lr` (one row per step, written by rank 0, appended by --resume); empty = "
        "MODEL_FILE.loss.csv")(
        "train.checkpoint_every", po::value(&o.checkpoint_every)->default_value(o.checkpoint_every),
        "checkpoint interval in steps (0 = only at the end); a checkpoint holds model, optimizer, step, RNG state, "
        "normalisation and deck; `kinflow-train DECK --resume` continues from it")(
        "train.stop_after", po::value(&o.stop_after)->default_value(o.stop_after),
        "stop after this many steps in this invocation, writing a checkpoint (for job time limits; 0 = run to `steps`)");
}

TrainConfig validate(const TrainOptions& o, std::int64_t seed) {
    TrainConfig c;
    check_range("run.seed", seed, std::int64_t{0}, std::numeric_limits<std::int64_t>::max());
    c.seed = static_cast<std::uint64_t>(seed);
    check_choice("train.objective", o.objective, {"fm", "otfm", "dsm", "w2map", "tfm", "meanflow"});
    c.objective = parse_objective(o.objective);

    // data: builtin:<name> or a comma list of files
    c.data_text = o.data;
    const std::string kBuiltin = "builtin:";
    if (o.data.rfind(kBuiltin, 0) == 0) {
        c.data.builtin = o.data.substr(kBuiltin.size());
        check_choice("train.data", o.data, {"builtin:gaussian", "builtin:eight_gaussians", "builtin:checkerboard"});
        check_range("train.builtin_size", o.builtin_size, std::int64_t{1}, std::int64_t{1} << 34);
        c.data.builtin_size = o.builtin_size;
    } else {
        c.data.files = split_list(o.data);
        if (c.data.files.empty()) throw OptionError("train.data", o.data, "must name an HDF5 file or builtin:<name>");
        for (const auto& f : c.data.files) {
            if (f.empty()) throw OptionError("train.data", o.data, "empty entry in the file list");
        }
    }
    for (const auto& s : split_list(o.snapshot)) {
        long long v = 0;
        if (!parse_int(s, v) || v < -1000000 || v > 1000000) {
            throw OptionError("train.snapshot", o.snapshot, "expected an integer index or a comma list of them");
        }
        c.data.snapshots.push_back(static_cast<int>(v));
    }
    if (c.data.snapshots.empty()) throw OptionError("train.snapshot", o.snapshot, "expected an integer index");

    c.source_text = o.source;
    const std::string kSnap = "snapshot:";
    if (o.source == "gaussian") {
        c.data.source = SourceKind::Gaussian;
    } else if (o.source == "uniform") {
        c.data.source = SourceKind::Uniform;
    } else if (o.source.rfind(kSnap, 0) == 0) {
        long long v = 0;
        if (!parse_int(o.source.substr(kSnap.size()), v) || v < -1000000 || v > 1000000) {
            throw OptionError("train.source", o.source, "expected snapshot:<index>");
        }
        c.data.source = SourceKind::Snapshot;
        c.data.source_snapshot = static_cast<int>(v);
        if (!c.data.builtin.empty()) throw OptionError("train.source", o.source, "a snapshot source needs HDF5 data, not " + o.data);
    } else {
        throw OptionError("train.source", o.source, "expected one of gaussian | uniform | snapshot:<index>");
    }
    if (c.objective == Objective::DSM && c.data.source != SourceKind::Gaussian) {
        throw OptionError("train.source", o.source, "objective dsm diffuses to a standard normal: source must be gaussian");
    }

    if (!trim(o.condition).empty()) {
        for (const auto& name : split_list(o.condition)) {
            if (name != "time" && (name.find('.') == std::string::npos || name.front() == '.' || name.back() == '.')) {
                throw OptionError("train.condition", o.condition, "'" + name + "' is neither `time` nor a deck key `section.name`");
            }
            c.data.conditions.push_back(name);
        }
        if (!c.data.builtin.empty()) throw OptionError("train.condition", o.condition, "conditioning needs HDF5 data files, not " + o.data);
    }
    c.data.seed = c.seed;
    if (c.objective == Objective::TFM) {
        if (c.data.source != SourceKind::Snapshot) {
            throw OptionError("train.source", o.source, "tfm flows from a run's first snapshot: set snapshot:<index>");
        }
        for (const auto& name : c.data.conditions) {
            if (name == "time") {
                throw OptionError("train.condition", o.condition,
                                  "tfm's network input is the physical time itself; request a time with sample.time");
            }
        }
        c.data.chain = true;
    }
    check_range("train.parts_per_batch", o.parts_per_batch, std::int64_t{0}, std::int64_t{1} << 20);
    c.data.parts_per_batch = o.parts_per_batch;
    check_choice("train.coupling", o.coupling, {"ot", "id"});
    c.ot_coupling = o.coupling == "ot";

    check_range("train.hidden", static_cast<std::int64_t>(o.hidden), 1, 4096);
    check_range("train.layers", static_cast<std::int64_t>(o.layers), 1, 32);
    check_choice("train.activation", o.activation, {"silu", "gelu", "tanh"});
    check_range("train.time_features", static_cast<std::int64_t>(o.time_features), 2, 256);
    if (o.time_features % 2 != 0) throw OptionError("train.time_features", std::to_string(o.time_features), "must be even");
    c.hidden = o.hidden;
    c.layers = o.layers;
    c.activation = parse_activation(o.activation);
    c.time_features = c.objective == Objective::W2Map ? 0 : o.time_features;
    if (o.time_max_frequency != 0.0 && !(o.time_max_frequency >= 0.01 && o.time_max_frequency <= 1e4))
        throw OptionError("train.time_max_frequency", format_number(o.time_max_frequency), "must be 0 (default) or in [0.01, 10000]");
    c.time_max_frequency = o.time_max_frequency != 0.0 ? o.time_max_frequency
                           : c.objective == Objective::MeanFlow ? kMeanFlowMaxFrequency
                                                                : 100.0;
    check_choice("train.condition_embedding", o.condition_embedding, {"concat", "film"});
    c.film = o.condition_embedding == "film";
    check_range("train.film_width", static_cast<std::int64_t>(o.film_width), 1, 4096);
    c.film_width = o.film_width;
    if (c.film && c.time_features == 0 && c.data.conditions.empty()) {
        throw OptionError("train.condition_embedding", o.condition_embedding,
                          "film modulates the network by time and conditions; a w2map model without train.condition has "
                          "neither (use concat)");
    }

    check_range("train.batch_size", o.batch_size, std::int64_t{1}, std::int64_t{1} << 24);
    check_range("train.steps", o.steps, std::int64_t{0}, std::int64_t{1} << 40);
    check_positive("train.lr", o.lr);
    check_range("train.lr", o.lr, 0.0, 1e30);
    check_choice("train.lr_schedule", o.lr_schedule, {"cosine", "constant"});
    check_range("train.warmup", o.warmup, std::int64_t{0}, std::int64_t{1} << 40);
    check_choice("train.optimizer", o.optimizer, {"adam", "adamw"});
    check_range("train.weight_decay", o.weight_decay, 0.0, 1e6);
    if (!(o.ema >= 0.0 && o.ema < 1.0)) throw OptionError("train.ema", format_number(o.ema), "must be in [0, 1)");
    c.batch_size = o.batch_size;
    c.steps = o.steps;
    c.lr = o.lr;
    c.lr_schedule = o.lr_schedule == "cosine" ? LrSchedule::Cosine : LrSchedule::Constant;
    c.warmup = o.warmup;
    c.optimizer = o.optimizer == "adam" ? Optimizer::Adam : Optimizer::AdamW;
    c.weight_decay = o.weight_decay;
    c.ema = o.ema;

    check_positive("train.beta_min", o.beta_min);
    check_range("train.beta_min", o.beta_min, 0.0, 1e3);
    check_range("train.beta_max", o.beta_max, o.beta_min, 1e3);
    if (!(o.vp_eps > 0.0 && o.vp_eps < 0.5)) throw OptionError("train.vp_eps", format_number(o.vp_eps), "must be in (0, 0.5)");
    c.beta_min = o.beta_min;
    c.beta_max = o.beta_max;
    c.vp_eps = o.vp_eps;
    if (!(o.meanflow_fraction >= 0.0 && o.meanflow_fraction <= 1.0))
        throw OptionError("train.meanflow_fraction", format_number(o.meanflow_fraction), "must be in [0, 1]");
    if (!(o.meanflow_power >= 0.0 && o.meanflow_power <= 4.0))
        throw OptionError("train.meanflow_power", format_number(o.meanflow_power), "must be in [0, 4]");
    c.meanflow_fraction = o.meanflow_fraction;
    c.meanflow_power = o.meanflow_power;
    check_choice("train.score_model", o.score_model, {"vector", "potential"});
    c.potential = o.score_model == "potential";
    if (c.potential && c.objective != Objective::DSM) {
        throw OptionError("train.score_model", o.score_model,
                          "a potential score model needs objective = dsm (this deck trains " + o.objective + ")");
    }
    if (!(o.fp_residual_weight >= 0.0 && o.fp_residual_weight <= 1e6))
        throw OptionError("train.fp_residual_weight", format_number(o.fp_residual_weight), "must be in [0, 1e6]");
    if (o.fp_residual_weight > 0.0 && !c.potential) {
        throw OptionError("train.fp_residual_weight", format_number(o.fp_residual_weight),
                          "the Fokker-Planck residual needs the log-density: set objective = dsm and score_model = potential");
    }
    c.fp_residual_weight = o.fp_residual_weight;

    check_range("train.threads", static_cast<std::int64_t>(o.threads), 1, 256);
    c.threads = o.threads;
    check_choice("train.device", o.device, {"cpu", "cuda"});
    check_device("train.device", o.device);
    if (o.model_file.empty()) throw OptionError("train.model_file", o.model_file, "must not be empty");
    c.model_file = o.model_file;
    c.loss_file = o.loss_file.empty() ? o.model_file + ".loss.csv" : o.loss_file;
    c.model_h5 = o.model_h5.empty() ? model_h5_path(o.model_file) : o.model_h5;
    if (c.model_h5 == c.model_file || c.model_h5 == checkpoint_path(c.model_file) || c.model_h5 == c.loss_file) {
        throw OptionError("train.model_h5", c.model_h5,
                          "must differ from the model file, its checkpoint and the loss file");
    }
    check_range("train.checkpoint_every", o.checkpoint_every, std::int64_t{0}, std::numeric_limits<std::int64_t>::max());
    check_range("train.stop_after", o.stop_after, std::int64_t{0}, std::numeric_limits<std::int64_t>::max());
    c.checkpoint_every = o.checkpoint_every;
    c.stop_after = o.stop_after;
    return c;
}

} // namespace kinflow::learn
