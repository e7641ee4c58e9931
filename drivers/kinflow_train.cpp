// kinflow-train DECK [--resume] [--section.key=value ...]: train a flow-matching, score or
// W2-map model on kinflow HDF5 data (or a builtin data set), data-parallel over MPI ranks.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "driver_main.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/core/version.hpp"
#include "kinflow/io/deck.hpp"
#include "kinflow/io/version_report.hpp"
#include "kinflow/learn/dataset.hpp"
#include "kinflow/learn/options.hpp"
#include "kinflow/learn/train.hpp"

namespace {

using namespace kinflow;
using drivers::SetupError;

/// Empty if `path` can be written (parent directories are created), else the reason.
std::string check_writable(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec) return "cannot create directory '" + parent.string() + "': " + ec.message();
    if (fs::is_directory(path)) return "is a directory";
    const std::string probe = path + ".tmp";
    std::ofstream out(probe);
    if (!out) return "cannot write '" + probe + "'";
    out.close();
    fs::remove(probe, ec);
    return "";
}

int run(int argc, char** argv, const comm::Communicator& comm) {
    // --resume is ours, not a deck key.
    bool resume = false;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (i > 0 && std::string(argv[i]) == "--resume") resume = true;
        else args.push_back(argv[i]);
    }
    std::int64_t seed = 42;
    learn::TrainOptions opts;
    io::Deck deck("kinflow-train", "kinflow-train DECK.ini [--resume] [--section.key=value ...] [--quiet]");
    learn::describe(deck.section("run", "the run"), seed);
    learn::describe(deck.section("train", "training: objective, data, model, optimizer, checkpoints"), opts);
    learn::TrainConfig config;
    try {
        const auto status = deck.parse(static_cast<int>(args.size()), args.data());
        if (status == io::Deck::Status::Help) {
            if (comm.is_root()) {
                std::cout << deck.help()
                          << "\n--resume continues from train.model_file + '.ckpt' (model, optimizer, step, RNG state)\n"
                             "to the same result as an uninterrupted run.\n";
            }
            return 0;
        }
        if (status == io::Deck::Status::Version) {
            if (comm.is_root()) std::cout << io::version_report("kinflow-train");
            return 0;
        }
        config = learn::validate(opts, seed);
        if (!config.data.builtin.empty()) { // the generated rows and their normalised copy
            const double rows = std::ceil(static_cast<double>(config.data.builtin_size) / comm.size());
            check_memory("train.builtin_size", std::to_string(config.data.builtin_size), rows * 24.0);
        }
    } catch (const OptionError& e) {
        throw SetupError(deck.explain(e));
    } catch (const SetupError&) {
        throw;
    } catch (const Error& e) {
        throw SetupError(e.what());
    }
    config.deck = deck.resolved({"run", "train"});

    // The model files' directories must be writable before any work is done (rank 0 checks).
    for (const auto& [key, path] : {std::pair<std::string, std::string>{"train.model_file", config.model_file},
                                    std::pair<std::string, std::string>{"train.model_h5", config.model_h5}}) {
        std::string err;
        if (comm.is_root()) err = check_writable(path);
        comm.broadcast(err);
        if (!err.empty()) {
            const std::string src = deck.source(key);
            throw SetupError((src == "default" ? deck.path() : src) + ": " + key + " = '" + path + "': " + err);
        }
    }

    std::unique_ptr<learn::Dataset> data;
    try {
        data = std::make_unique<learn::Dataset>(comm, config.data);
    } catch (const Error& e) {
        const std::string src = deck.source("train.data");
        throw SetupError((src == "default" ? deck.path() : src) + ": train.data = '" + opts.data + "': " + e.what());
    }
    if (config.objective == learn::Objective::Reflow) { // the teacher's (noise, sample) pairs replace the rows
        try {
            learn::make_reflow_pairs(comm, config, *data);
        } catch (const Error& e) {
            const std::string src = deck.source("train.teacher");
            throw SetupError((src == "default" ? deck.path() : src) + ": train.teacher = '" + config.teacher + "': " + e.what());
        }
    }
    if (!config.corrector.empty()) { // the first stage's samples replace the source
        try {
            learn::make_corrector_pairs(config, *data);
        } catch (const Error& e) {
            const std::string src = deck.source("train.corrector");
            throw SetupError((src == "default" ? deck.path() : src) + ": train.corrector = '" + config.corrector + "': " + e.what());
        }
    }
    const bool talk = comm.is_root() && !deck.quiet();
    learn::TrainSummary s;
    try {
        s = learn::train(comm, config, *data, resume, talk ? &std::cerr : nullptr);
    } catch (const learn::TrainingDiverged& e) {
        throw SetupError(e.what());
    } catch (const learn::ResumeError& e) {
        throw SetupError(e.what());
    }
    if (talk) {
        const double steps = static_cast<double>(s.step - s.first_step);
        std::cout << "kinflow-train: " << opts.objective << ", " << s.parameters << " parameters, global batch "
                  << s.global_batch << " (" << comm.size() << " rank" << (comm.size() > 1 ? "s" : "") << " x "
                  << config.batch_size << "), steps " << s.first_step << " -> " << s.step << " in " << std::setprecision(3)
                  << s.seconds << " s (" << steps / std::max(s.seconds, 1e-9) << " steps/s), loss " << std::setprecision(5)
                  << s.loss << "\n";
        if (s.finished) {
            std::cout << "kinflow: wrote " << config.model_file << " and " << config.model_h5 << " (checkpoint "
                      << learn::checkpoint_path(config.model_file) << ")\n";
        } else {
            std::cout << "kinflow: stopped at step " << s.step << " of " << config.steps << " (train.stop_after); checkpoint "
                      << learn::checkpoint_path(config.model_file) << "; continue with --resume\n";
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) { return kinflow::drivers::driver_main(argc, argv, "kinflow-train", run); }
