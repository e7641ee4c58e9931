#pragma once
// Deck keys of kinflow-train: [run] seed and the [train] section (names are a contract), and
// their validated form. No LibTorch here: the driver and the data loader include this.
#include <cstdint>
#include <string>
#include <vector>

#include <boost/program_options/options_description.hpp>

namespace kinflow::learn {

/// [train] as written in the deck.
struct TrainOptions {
    std::string objective = "fm";
    std::string data = "builtin:eight_gaussians";
    std::int64_t builtin_size = 100000;
    std::string snapshot = "-1";
    std::string source = "gaussian";
    std::string condition;
    std::string condition_embedding = "concat";
    int film_width = 32;
    std::int64_t parts_per_batch = 0;
    std::string coupling = "ot";
    std::string augment = "none";
    int hidden = 64;
    int layers = 3;
    std::string activation = "silu";
    int time_features = 16;
    double time_max_frequency = 0.0; ///< 0: the objective's default
    std::int64_t batch_size = 256;
    std::int64_t steps = 2000;
    double lr = 1e-3;
    std::string lr_schedule = "cosine";
    std::int64_t warmup = 0;
    std::string optimizer = "adam";
    double weight_decay = 0.0;
    double ema = 0.0;
    double beta_min = 0.1;
    double beta_max = 20.0;
    double vp_eps = 1e-3;
    double meanflow_fraction = 0.5;
    double meanflow_power = 0.0;
    std::string teacher;
    std::int64_t reflow_pairs = 20000;
    std::int64_t teacher_nfe = 100;
    std::string reflow_distill = "false";
    std::string corrector;
    std::string score_model = "vector";
    double fp_residual_weight = 0.0;
    double time_gate = 0.0;
    double tail_weight = 0.0;
    double tail_power = 2.0;
    int threads = 1;
    std::string device = "cpu";
    std::string model_file = "out/model.pt";
    std::string model_h5;  ///< empty: model_h5_path(model_file)
    std::string loss_file; ///< empty: model_file + ".loss.csv"
    std::int64_t checkpoint_every = 0;
    std::int64_t stop_after = 0;
};

enum class Objective { FM, OTFM, DSM, W2Map, TFM, MeanFlow, Reflow, FlowMap };
/// Objectives whose network has two time inputs (the time s of x and the gap t - s) and is sampled
/// by jumps x <- x + (t - s) u(x, s, t): meanflow's average velocity, flowmap's X(x, s, t) = x + (t - s) u.
inline bool two_time(Objective o) { return o == Objective::MeanFlow || o == Objective::FlowMap; }
enum class Activation { SiLU, GELU, Tanh };
enum class SourceKind { Gaussian, Uniform, Snapshot };
/// Exact-symmetry data augmentation (train.augment): none, a Haar-random rotation (SO(dim)) or
/// orthogonal map (O(dim): rotations and reflections) per minibatch row.
enum class Augment { None, Rotation, RotationReflection };
enum class LrSchedule { Cosine, Constant };
enum class Optimizer { Adam, AdamW };

const char* to_string(Objective o);
const char* to_string(Activation a);
Objective parse_objective(const std::string& s); ///< throws Error for an unknown name
Activation parse_activation(const std::string& s);

/// Where the training data come from (validated [train] data/snapshot/source/condition).
struct DataSpec {
    std::string builtin;            ///< builtin data set name (gaussian | eight_gaussians | checkerboard | ring_ellipse), or empty
    std::int64_t builtin_size = 0;  ///< rows generated for builtin data
    std::vector<std::string> files; ///< HDF5 files (one part per file and snapshot)
    std::vector<int> snapshots;     ///< target snapshot indices (negative counts from the end)
    SourceKind source = SourceKind::Gaussian;
    int source_snapshot = 0;             ///< with source = snapshot:<index>
    std::vector<std::string> conditions; ///< `time` or `section.key` of each file's deck
    std::uint64_t seed = 0;              ///< builtin data generation
    /// tfm: each target snapshot's source is the previous listed snapshot (the first one's is
    /// source_snapshot), and source and target share the target's normalisation.
    bool chain = false;
    /// The source rows take the targets' normalisation (tfm, and train.time_gate: a zero network
    /// output then maps a source point to itself in physical units, not by the affine change
    /// between the two normalisations).
    bool shared_normalization = false;
    /// > 0: each global minibatch holds rows of this many parts (drawn at random), an equal share
    /// each; 0: rows drawn uniformly over all parts.
    std::int64_t parts_per_batch = 0;
    /// Each minibatch row (target and, with a snapshot source, its paired source row alike) is
    /// mapped by its own Haar-random rotation (or orthogonal map) about the targets' mean;
    /// valid only for data whose law is isotropic about its mean.
    Augment augment = Augment::None;
};

/// The MLP: x (dim), sinusoidal time features, condition values -> dim outputs.
struct ModelSpec {
    int dim = 2;
    int cond_dim = 0;
    int hidden = 64;
    int layers = 3;
    Activation activation = Activation::SiLU;
    int time_features = 16; ///< 0: no time input (w2map)
    /// Times that each get time_features sinusoidal features: 1 (the path time t), or 2 for
    /// meanflow and flowmap (the time s of x and the gap t - s of the average velocity u(x, s, t)).
    int time_inputs = 1;
    double time_max_frequency = 100.0; ///< the time frequencies w_k are geometric in [1, time_max_frequency]
    /// false (`concat`): time features and conditions are extra inputs of the first layer;
    /// true (`film`): they feed an embedding MLP whose output scales and shifts every hidden
    /// layer (FiLM, Perez et al. 2018), and the first layer sees x only.
    bool film = false;
    int film_width = 32; ///< film: width of the embedding MLP's hidden layer
    /// dsm with train.score_model = potential: one output, a scalar potential phi(x, t) whose
    /// input gradient is the noise prediction, eps_hat = -grad_x phi (score = grad_x phi / sigma_t).
    bool potential = false;
    /// train.time_gate: the output is multiplied by g = -expm1(-(c_k - gate_origin) / gate_scale), c_k the
    /// normalised condition in column gate_column (the `time` condition), gate_origin its normalised
    /// value at the source snapshot's time (float32-rounded as the data's, so g = 0 exactly there) and
    /// gate_scale the gate's time constant in normalised units; -1: no gate.
    int gate_column = -1;
    double gate_origin = 0.0, gate_scale = 1.0;
    bool gated() const { return gate_column >= 0; }
    /// The gate of normalised condition value c, in float32 arithmetic as the tensor route's
    /// (learn::output_gate): (c - float(origin)) * float(-1 / scale), then -expm1; 1 without a gate.
    double gate(float c) const;
    /// The gate column within the conditions (or -1) and, for a gated model, a finite origin and a
    /// finite positive scale (what a model file must hold).
    bool gate_valid() const;
    int outputs() const { return potential ? 1 : dim; } ///< width of the last layer
    int time_width() const { return time_inputs * time_features; } ///< all time features
    int input_width() const { return dim + time_width() + cond_dim; }
    int embed_width() const { return time_width() + cond_dim; }     ///< inputs of the FiLM embedding
    int first_width() const { return film ? dim : input_width(); } ///< inputs of the first layer
};

/// Everything kinflow-train needs, checked.
struct TrainConfig {
    Objective objective = Objective::FM;
    DataSpec data;
    std::string data_text; ///< the deck value of train.data (recorded in the model file)
    std::string source_text;
    int hidden = 64, layers = 3, time_features = 16;
    double time_max_frequency = 100.0;
    bool film = false; ///< train.condition_embedding = film
    int film_width = 32;
    bool ot_coupling = true; ///< tfm: minibatch exact OT between consecutive snapshots (else the ids' pairing)
    Activation activation = Activation::SiLU;
    std::int64_t batch_size = 256, steps = 2000, warmup = 0;
    double lr = 1e-3;
    LrSchedule lr_schedule = LrSchedule::Cosine;
    Optimizer optimizer = Optimizer::Adam;
    double weight_decay = 0.0, ema = 0.0;
    double beta_min = 0.1, beta_max = 20.0, vp_eps = 1e-3;
    /// meanflow, flowmap: fraction of the rows with s < t (the others s = t, the fm loss); meanflow:
    /// the power p of the adaptive loss weight 1 / (l + 1e-3)^p (Geng et al. 2025).
    double meanflow_fraction = 0.5, meanflow_power = 0.0;
    /// dsm: score = grad_x of a scalar network (train.score_model = potential), and the weight of
    /// the log-density Fokker–Planck residual (train.fp_residual_weight; potential models only).
    bool potential = false;
    double fp_residual_weight = 0.0;
    /// train.time_gate: time constant tau > 0 (physical time units) of the output gate
    /// 1 - exp(-(t - t_source) / tau) on the `time` condition (0: none).
    double time_gate = 0.0;
    /// train.tail_weight / tail_power: fm, otfm, reflow and tfm weight each row's squared error by
    /// w = 1 + lambda (|x_t|^2 / dim)^(p / 2), x_t the network's input point (normalised coordinates).
    /// The weight is a function of the regressor, so the minimiser (the conditional expectation of
    /// the target given x_t) is unchanged; the fit's capacity moves towards the tails (0: off).
    double tail_weight = 0.0, tail_power = 2.0;
    /// reflow: the trained fm/otfm/reflow model whose ODE generates the (noise, sample) pairs, their
    /// count, and the teacher's RK4 evaluations per pair.
    std::string teacher;
    std::int64_t reflow_pairs = 20000, teacher_nfe = 100;
    /// reflow: distil to one step (Liu et al. 2022, sec. 2.3): regress v(x0, 0) on x1' - x0 only (t = 0).
    bool reflow_distill = false;
    /// w2map: the trained one-step model (meanflow or flowmap) whose one-jump samples the network
    /// corrects, x -> x + f(x) (train.corrector; empty: a plain w2map from the noise).
    std::string corrector;
    int threads = 1;
    std::string model_file;
    std::string model_h5;  ///< the same model as plain HDF5 (MODEL.h5, docs/model_h5.md), written by rank 0
    std::string loss_file; ///< CSV step,loss,lr written by rank 0 (appended on --resume)
    std::int64_t checkpoint_every = 0, stop_after = 0;
    std::uint64_t seed = 42;
    std::string deck; ///< resolved deck text (recorded in checkpoints and the model file)
};

void describe(boost::program_options::options_description& run, std::int64_t& seed);
void describe(boost::program_options::options_description& train, TrainOptions& o);
/// Check every key; throws OptionError naming the key.
TrainConfig validate(const TrainOptions& o, std::int64_t seed);

/// `cuda` is accepted only by a build against a CUDA-enabled LibTorch (KINFLOW_TORCH_CUDA);
/// throws OptionError naming `key` otherwise.
void check_device(const std::string& key, const std::string& device);

/// Path of the checkpoint that belongs to a model file.
std::string checkpoint_path(const std::string& model_file);
/// Default path of the plain-HDF5 copy of a model file: X.pt -> X.h5, any other name -> name + ".h5".
std::string model_h5_path(const std::string& model_file);

} // namespace kinflow::learn
