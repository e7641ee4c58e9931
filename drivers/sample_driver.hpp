#pragma once
// The driver body kinflow-sample and kinflow-generate share: one deck ([run] seed, [sample],
// [output] file), --help and --version, one-line errors naming the deck key, and the summary line.
// They differ only in the sampler they call (LibTorch's network or MODEL.h5 without LibTorch).
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <string>

#include "driver_main.hpp"
#include "kinflow/io/deck.hpp"
#include "kinflow/io/version_report.hpp"
#include "kinflow/sample/options.hpp"
#include "kinflow/sample/sample.hpp"

namespace kinflow::drivers {

struct SampleDriverText {
    const char* name;         ///< the program's name
    std::string usage;        ///< --help's usage line(s)
    const char* seed_help;    ///< run.seed's description
    std::string version_note; ///< appended to --version (empty: none)
};

/// `sampler(comm, config, resolved_deck)` draws the samples and returns their summary; it may throw
/// sample::ModelError (reported with the deck source of its key).
template <class Sampler>
int sample_driver(int argc, char** argv, const comm::Communicator& comm, const SampleDriverText& text, Sampler&& sampler) {
    std::int64_t seed = 42;
    std::string output = "out/samples.h5";
    sample::SampleOptions opts;
    io::Deck deck(text.name, text.usage);
    deck.section("run", "the run").add_options()("run.seed", boost::program_options::value(&seed)->default_value(seed), text.seed_help);
    sample::describe(deck.section("sample", "sampling"), opts);
    sample::describe_output(deck.section("output", "HDF5 output"), output);
    sample::SampleConfig config;
    try {
        const auto status = deck.parse(argc, argv);
        if (status == io::Deck::Status::Help) {
            if (comm.is_root()) std::cout << deck.help();
            return 0;
        }
        if (status == io::Deck::Status::Version) {
            if (comm.is_root()) std::cout << io::version_report(text.name) << text.version_note;
            return 0;
        }
        config = sample::validate(opts, seed, output);
    } catch (const OptionError& e) {
        throw SetupError(deck.explain(e));
    } catch (const SetupError&) {
        throw;
    } catch (const Error& e) {
        throw SetupError(e.what());
    }
    sample::SampleSummary s;
    try {
        s = sampler(comm, config, deck.resolved({"run", "sample", "output"}));
    } catch (const sample::ModelError& e) {
        const std::string src = deck.source(e.key);
        throw SetupError((src == "default" ? deck.path() : src) + ": " + e.key + ": " + e.what());
    }
    if (comm.is_root() && !deck.quiet()) {
        std::cout << text.name << ": " << s.objective << " model, " << s.count << " samples, method " << s.method << ", nfe "
                  << s.nfe << " (" << s.steps << " steps), " << std::setprecision(3) << s.seconds << " s ("
                  << static_cast<double>(s.count) / std::max(s.seconds, 1e-9) << " samples/s)\n"
                  << "kinflow: wrote " << config.output_file << "\n";
    }
    return 0;
}

} // namespace kinflow::drivers
