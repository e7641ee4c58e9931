// [train] and [sample] validation: defaults pass; every bad value is an OptionError naming the key.
#include <gtest/gtest.h>

#include <cmath>

#include "kinflow/core/error.hpp"
#include "kinflow/learn/dataset.hpp"
#include "kinflow/learn/options.hpp"
#include "kinflow/sample/options.hpp"

using namespace kinflow;

namespace {
std::string bad_key(const learn::TrainOptions& o) {
    try {
        learn::validate(o, 1);
    } catch (const OptionError& e) {
        return e.key();
    }
    return "";
}
std::string bad_sample_key(const sample::SampleOptions& o, const std::string& out = "x.h5") {
    try {
        sample::validate(o, 1, out);
    } catch (const OptionError& e) {
        return e.key();
    }
    return "";
}
} // namespace

TEST(LearnOptions, DefaultsValidateAndParseLists) {
    learn::TrainOptions o;
    const auto c = learn::validate(o, 7);
    EXPECT_EQ(c.objective, learn::Objective::FM);
    EXPECT_EQ(c.data.builtin, "eight_gaussians");
    EXPECT_EQ(c.seed, 7u);
    o.data = "a.h5, b.h5";
    o.snapshot = "-1, 3";
    o.source = "snapshot:0";
    o.condition = "time, ks.chi";
    o.objective = "w2map";
    const auto d = learn::validate(o, 1);
    EXPECT_EQ(d.data.files, (std::vector<std::string>{"a.h5", "b.h5"}));
    EXPECT_EQ(d.data.snapshots, (std::vector<int>{-1, 3}));
    EXPECT_EQ(d.data.source, learn::SourceKind::Snapshot);
    EXPECT_EQ(d.data.conditions, (std::vector<std::string>{"time", "ks.chi"}));
    EXPECT_EQ(d.time_features, 0); // a map has no time input
    learn::TrainOptions mf;
    mf.objective = "meanflow";
    mf.meanflow_fraction = 1.0;
    mf.meanflow_power = 0.0;
    const auto e = learn::validate(mf, 1);
    EXPECT_EQ(e.objective, learn::Objective::MeanFlow);
    EXPECT_EQ(e.meanflow_fraction, 1.0);
    EXPECT_EQ(e.meanflow_power, 0.0);
    EXPECT_EQ(c.meanflow_fraction, 0.5); // defaults
    EXPECT_EQ(c.meanflow_power, 0.0);
    EXPECT_EQ(c.time_max_frequency, 100.0); // time frequencies: fm [1, 100], meanflow [0.03, 3]
    EXPECT_EQ(e.time_max_frequency, 3.0);
    mf.objective = "flowmap"; // the meanflow network: two time inputs, frequencies up to 3
    const auto f = learn::validate(mf, 1);
    EXPECT_EQ(f.objective, learn::Objective::FlowMap);
    EXPECT_TRUE(learn::two_time(f.objective));
    EXPECT_EQ(f.time_max_frequency, 3.0);
    EXPECT_EQ(learn::parse_objective(learn::to_string(learn::Objective::FlowMap)), learn::Objective::FlowMap);
    // MODEL.h5 beside the model file unless train.model_h5 names it
    EXPECT_EQ(c.model_h5, "out/model.h5");
    EXPECT_EQ(learn::model_h5_path("run/m.pt"), "run/m.h5");
    EXPECT_EQ(learn::model_h5_path("run/model"), "run/model.h5");
    EXPECT_EQ(learn::model_h5_path("m.h5"), "m.h5.h5");
    o.model_h5 = "elsewhere/m.h5";
    EXPECT_EQ(learn::validate(o, 1).model_h5, "elsewhere/m.h5");
}

TEST(LearnOptions, BadValuesNameTheKey) {
    auto with = [](auto f) {
        learn::TrainOptions o;
        f(o);
        return bad_key(o);
    };
    EXPECT_EQ(with([](auto& o) { o.objective = "gan"; }), "train.objective");
    EXPECT_EQ(with([](auto& o) { o.data = "builtin:moons"; }), "train.data");
    EXPECT_EQ(with([](auto& o) { o.snapshot = "last"; }), "train.snapshot");
    EXPECT_EQ(with([](auto& o) { o.source = "laplace"; }), "train.source");
    EXPECT_EQ(with([](auto& o) { o.source = "snapshot:x"; }), "train.source");
    EXPECT_EQ(with([](auto& o) { o.source = "snapshot:0"; }), "train.source"); // builtin data have no snapshots
    EXPECT_EQ(with([](auto& o) { o.objective = "dsm"; o.source = "uniform"; }), "train.source");
    EXPECT_EQ(with([](auto& o) { o.condition = "time"; }), "train.condition"); // builtin data
    EXPECT_EQ(with([](auto& o) { o.data = "f.h5"; o.condition = "chi"; }), "train.condition");
    EXPECT_EQ(with([](auto& o) { o.activation = "relu"; }), "train.activation");
    EXPECT_EQ(with([](auto& o) { o.hidden = 0; }), "train.hidden");
    EXPECT_EQ(with([](auto& o) { o.layers = 0; }), "train.layers");
    EXPECT_EQ(with([](auto& o) { o.time_features = 15; }), "train.time_features");
    EXPECT_EQ(with([](auto& o) { o.batch_size = 0; }), "train.batch_size");
    EXPECT_EQ(with([](auto& o) { o.lr = -1; }), "train.lr");
    EXPECT_EQ(with([](auto& o) { o.lr_schedule = "step"; }), "train.lr_schedule");
    EXPECT_EQ(with([](auto& o) { o.optimizer = "sgd"; }), "train.optimizer");
    EXPECT_EQ(with([](auto& o) { o.ema = 1.0; }), "train.ema");
    EXPECT_EQ(with([](auto& o) { o.beta_max = 0.01; }), "train.beta_max");
    EXPECT_EQ(with([](auto& o) { o.objective = "meanflow"; o.meanflow_fraction = -0.1; }), "train.meanflow_fraction");
    EXPECT_EQ(with([](auto& o) { o.meanflow_fraction = 1.5; }), "train.meanflow_fraction");
    EXPECT_EQ(with([](auto& o) { o.meanflow_fraction = std::nan(""); }), "train.meanflow_fraction");
    EXPECT_EQ(with([](auto& o) { o.meanflow_power = -1; }), "train.meanflow_power");
    EXPECT_EQ(with([](auto& o) { o.meanflow_power = 5; }), "train.meanflow_power");
    EXPECT_EQ(with([](auto& o) { o.meanflow_power = std::nan(""); }), "train.meanflow_power");
    EXPECT_EQ(with([](auto& o) { o.time_max_frequency = -1; }), "train.time_max_frequency");
    EXPECT_EQ(with([](auto& o) { o.time_max_frequency = 0.001; }), "train.time_max_frequency");
    EXPECT_EQ(with([](auto& o) { o.time_max_frequency = 1e5; }), "train.time_max_frequency");
    EXPECT_EQ(with([](auto& o) { o.vp_eps = 0; }), "train.vp_eps");
    EXPECT_EQ(with([](auto& o) { o.threads = 0; }), "train.threads");
    EXPECT_EQ(with([](auto& o) { o.model_file = ""; }), "train.model_file");
    EXPECT_EQ(with([](auto& o) { o.model_h5 = o.model_file; }), "train.model_h5");
    EXPECT_EQ(with([](auto& o) { o.model_h5 = o.model_file + ".loss.csv"; }), "train.model_h5");
    EXPECT_EQ(with([](auto& o) { o.checkpoint_every = -1; }), "train.checkpoint_every");
    EXPECT_EQ(with([](auto& o) { o.condition_embedding = "adaln"; }), "train.condition_embedding");
    // film needs something to modulate by: an unconditional map has no time input and no condition
    EXPECT_EQ(with([](auto& o) { o.objective = "w2map"; o.condition_embedding = "film"; }), "train.condition_embedding");
    EXPECT_EQ(with([](auto& o) { o.condition_embedding = "film"; }), ""); // fm: time features
    EXPECT_EQ(with([](auto& o) { o.condition_embedding = "film"; o.film_width = 0; }), "train.film_width");
    EXPECT_EQ(with([](auto& o) { o.device = "tpu"; }), "train.device");
    EXPECT_EQ(with([](auto& o) { o.objective = "tfm"; o.data = "f.h5"; }), "train.source"); // tfm flows from a snapshot
    EXPECT_EQ(with([](auto& o) { o.objective = "tfm"; o.data = "f.h5"; o.source = "snapshot:0"; o.condition = "time"; }),
              "train.condition"); // tfm's own input is the time
    EXPECT_EQ(with([](auto& o) { o.objective = "tfm"; o.data = "f.h5"; o.source = "snapshot:0"; }), "");
    EXPECT_EQ(with([](auto& o) { o.coupling = "random"; }), "train.coupling");
    EXPECT_EQ(with([](auto& o) { o.parts_per_batch = -1; }), "train.parts_per_batch");
    EXPECT_EQ(with([](auto& o) { o.augment = "mirror"; }), "train.augment");
    EXPECT_EQ(with([](auto& o) { o.augment = "rotation"; }), "train.augment"); // builtin sets are not isotropic
    EXPECT_EQ(with([](auto& o) { o.data = "f.h5"; o.augment = "rotation"; }), "");
    EXPECT_EQ(with([](auto& o) { o.data = "f.h5"; o.augment = "rotation_reflection"; }), "");
    EXPECT_EQ(with([](auto& o) { o.device = "cuda"; }), "train.device"); // CPU-only LibTorch, or no GPU path yet
    // potential score models and the Fokker-Planck residual: dsm only, weight >= 0, potential only
    // flowmap, reflow_distill, corrector, ring_ellipse
    EXPECT_EQ(with([](auto& o) { o.objective = "flowmap"; }), "");
    EXPECT_EQ(with([](auto& o) { o.data = "builtin:ring_ellipse"; }), "");
    EXPECT_EQ(with([](auto& o) { o.objective = "flowmap"; o.meanflow_fraction = 2; }), "train.meanflow_fraction");
    EXPECT_EQ(with([](auto& o) { o.reflow_distill = "1"; }), "train.reflow_distill");
    EXPECT_EQ(with([](auto& o) { o.reflow_distill = "true"; }), "train.reflow_distill"); // fm
    EXPECT_EQ(with([](auto& o) { o.objective = "reflow"; o.teacher = "t.pt"; o.reflow_distill = "true"; }), "");
    EXPECT_EQ(with([](auto& o) { o.corrector = "m.pt"; }), "train.corrector"); // fm
    EXPECT_EQ(with([](auto& o) { o.objective = "w2map"; o.corrector = "m.pt"; }), "");
    EXPECT_EQ(with([](auto& o) { o.objective = "w2map"; o.corrector = "m.pt"; o.source = "uniform"; }), "train.source");
    EXPECT_EQ(with([](auto& o) { o.score_model = "scalar"; }), "train.score_model");
    EXPECT_EQ(with([](auto& o) { o.score_model = "potential"; }), "train.score_model"); // fm
    EXPECT_EQ(with([](auto& o) { o.objective = "meanflow"; o.score_model = "potential"; }), "train.score_model");
    EXPECT_EQ(with([](auto& o) { o.objective = "dsm"; o.score_model = "potential"; }), "");
    EXPECT_EQ(with([](auto& o) { o.objective = "dsm"; o.score_model = "potential"; o.fp_residual_weight = -0.1; }),
              "train.fp_residual_weight");
    EXPECT_EQ(with([](auto& o) { o.objective = "dsm"; o.score_model = "potential"; o.fp_residual_weight = std::nan(""); }),
              "train.fp_residual_weight");
    EXPECT_EQ(with([](auto& o) { o.objective = "dsm"; o.fp_residual_weight = 0.1; }), "train.fp_residual_weight"); // vector
    EXPECT_EQ(with([](auto& o) { o.objective = "dsm"; o.score_model = "potential"; o.fp_residual_weight = 1; }), "");
    // reflow: a teacher, Gaussian noise, no condition; nfe a multiple of 4
    EXPECT_EQ(with([](auto& o) { o.objective = "reflow"; }), "train.teacher");
    EXPECT_EQ(with([](auto& o) { o.objective = "reflow"; o.teacher = "m.pt"; }), "");
    EXPECT_EQ(with([](auto& o) { o.teacher = "m.pt"; }), "train.teacher"); // fm has none
    EXPECT_EQ(with([](auto& o) { o.objective = "reflow"; o.teacher = "m.pt"; o.source = "uniform"; }), "train.source");
    EXPECT_EQ(with([](auto& o) { o.objective = "reflow"; o.teacher = "m.pt"; o.reflow_pairs = 0; }), "train.reflow_pairs");
    EXPECT_EQ(with([](auto& o) { o.objective = "reflow"; o.teacher = "m.pt"; o.teacher_nfe = 10; }), "train.teacher_nfe");
    // time_gate: >= 0; fm | otfm | meanflow | flowmap from a snapshot source with a `time` condition
    auto gated = [](learn::TrainOptions& o) {
        o.data = "run.h5";
        o.source = "snapshot:0";
        o.condition = "time";
        o.time_gate = 1.0;
    };
    EXPECT_EQ(with([&](auto& o) { gated(o); }), "");
    EXPECT_EQ(with([&](auto& o) { gated(o); o.objective = "meanflow"; }), "");
    EXPECT_EQ(with([&](auto& o) { gated(o); o.objective = "otfm"; }), "");
    EXPECT_EQ(with([&](auto& o) { gated(o); o.time_gate = -1; }), "train.time_gate");
    EXPECT_EQ(with([&](auto& o) { gated(o); o.time_gate = std::nan(""); }), "train.time_gate");
    EXPECT_EQ(with([&](auto& o) { gated(o); o.objective = "tfm"; o.condition = ""; }), "train.time_gate");
    EXPECT_EQ(with([&](auto& o) { gated(o); o.source = "gaussian"; }), "train.time_gate");
    EXPECT_EQ(with([&](auto& o) { gated(o); o.condition = "ks.chi"; }), "train.time_gate");
    EXPECT_EQ(with([&](auto& o) { gated(o); o.objective = "w2map"; }), "train.time_gate");
    // tail_weight: lambda in [0, 1e6], power in [0, 8], on the flow-matching regressions only
    EXPECT_EQ(with([](auto& o) { o.tail_weight = 0.5; }), "");
    EXPECT_EQ(with([](auto& o) { o.tail_weight = 0.5; o.tail_power = 4; o.objective = "otfm"; }), "");
    EXPECT_EQ(with([](auto& o) { o.tail_weight = -1; }), "train.tail_weight");
    EXPECT_EQ(with([](auto& o) { o.tail_weight = std::nan(""); }), "train.tail_weight");
    EXPECT_EQ(with([](auto& o) { o.tail_weight = 1; o.tail_power = 9; }), "train.tail_power");
    EXPECT_EQ(with([](auto& o) { o.tail_power = -1; }), "train.tail_power");
    EXPECT_EQ(with([](auto& o) { o.tail_weight = 1; o.objective = "dsm"; }), "train.tail_weight");
    EXPECT_EQ(with([](auto& o) { o.tail_weight = 1; o.objective = "w2map"; }), "train.tail_weight");
    EXPECT_EQ(with([](auto& o) { o.tail_weight = 1; o.objective = "meanflow"; }), "train.tail_weight");
}

TEST(SampleOptions, BadValuesNameTheKey) {
    sample::SampleOptions o;
    EXPECT_EQ(bad_sample_key(o), "");
    auto with = [](auto f) {
        sample::SampleOptions o;
        f(o);
        return bad_sample_key(o);
    };
    EXPECT_EQ(with([](auto& o) { o.method = "midpoint"; }), "sample.method");
    EXPECT_EQ(with([](auto& o) { o.method = "rk4"; o.nfe = 10; }), "sample.nfe"); // 4 evaluations per step
    EXPECT_EQ(with([](auto& o) { o.nfe = 0; }), "sample.nfe");
    EXPECT_EQ(with([](auto& o) { o.count = -1; }), "sample.count");
    EXPECT_EQ(with([](auto& o) { o.condition = "0.5, x"; }), "sample.condition");
    EXPECT_EQ(with([](auto& o) { o.device = "cuda"; }), "sample.device");
    EXPECT_EQ(with([](auto& o) { o.device = "gpu"; }), "sample.device");
    EXPECT_EQ(with([](auto& o) { o.time = "late"; }), "sample.time");
    EXPECT_EQ(bad_sample_key(o, ""), "output.file");
    o.condition = "0.5, 2";
    EXPECT_EQ(sample::validate(o, 1, "x.h5").condition, (std::vector<double>{0.5, 2.0}));
}

TEST(LearnOptions, DeckValueReadsRecordedDecks) {
    const std::string ini = "[run]\nseed = 4\n\n[ks]\nchi = 2.5   # comment\nname = abc\n[langevin]\nchi = 9\n";
    EXPECT_EQ(learn::deck_value(ini, "ks.chi"), 2.5);
    EXPECT_EQ(learn::deck_value(ini, "langevin.chi"), 9.0);
    EXPECT_THROW(learn::deck_value(ini, "ks.name"), Error);
    EXPECT_THROW(learn::deck_value(ini, "ks.beta"), Error);
}
