// kinflow-sample DECK [--section.key=value ...]: draw samples from a model trained by
// kinflow-train (ODE or SDE integration, or one map evaluation) into a kinflow HDF5 file.
#include <iomanip>
#include <iostream>
#include <string>

#include "driver_main.hpp"
#include "kinflow/io/deck.hpp"
#include "kinflow/io/version_report.hpp"
#include "kinflow/sample/options.hpp"
#include "kinflow/sample/sample.hpp"

namespace {

using namespace kinflow;
using drivers::SetupError;

int run(int argc, char** argv, const comm::Communicator& comm) {
    std::int64_t seed = 42;
    std::string output = "out/samples.h5";
    sample::SampleOptions opts;
    io::Deck deck("kinflow-sample", "kinflow-sample DECK.ini [--section.key=value ...] [--quiet]");
    deck.section("run", "the run")
        .add_options()("run.seed", boost::program_options::value(&seed)->default_value(seed),
                       "seed of the source noise and the SDE noise, >= 0");
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
            if (comm.is_root()) std::cout << io::version_report("kinflow-sample");
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
        s = sample::run_sampling(comm, config, deck.resolved({"run", "sample", "output"}));
    } catch (const sample::ModelError& e) {
        const std::string src = deck.source(e.key);
        throw SetupError((src == "default" ? deck.path() : src) + ": " + e.key + ": " + e.what());
    }
    if (comm.is_root() && !deck.quiet()) {
        std::cout << "kinflow-sample: " << s.objective << " model, " << s.count << " samples, method " << s.method << ", nfe "
                  << s.nfe << " (" << s.steps << " steps), " << std::setprecision(3) << s.seconds << " s ("
                  << static_cast<double>(s.count) / std::max(s.seconds, 1e-9) << " samples/s)\n"
                  << "kinflow: wrote " << config.output_file << "\n";
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) { return kinflow::drivers::driver_main(argc, argv, "kinflow-sample", run); }
