// kinflow-generate DECK [--section.key=value ...]: kinflow-sample's deterministic samplers (flow
// ODEs, meanflow/flowmap jumps, w2map maps) on the MODEL.h5 that kinflow-train writes beside the
// model file, without LibTorch and, started alone, without MPI: a one-step generation costs the
// process start-up of a small C++ program. Same deck keys and output file as kinflow-sample.
#include <iomanip>
#include <iostream>
#include <string>

#include "driver_main.hpp"
#include "kinflow/generate/generate.hpp"
#include "kinflow/io/deck.hpp"
#include "kinflow/io/version_report.hpp"
#include "kinflow/sample/options.hpp"

namespace {

using namespace kinflow;
using drivers::SetupError;

int run(int argc, char** argv, const comm::Communicator& comm) {
    std::int64_t seed = 42;
    std::string output = "out/samples.h5";
    sample::SampleOptions opts;
    io::Deck deck("kinflow-generate",
                  "kinflow-generate DECK.ini [--section.key=value ...] [--quiet]\n"
                  "kinflow-sample's deck keys and output without LibTorch: sample.model_file names the model file "
                  "(its MODEL.h5 beside it, X.pt -> X.h5, is read) or the MODEL.h5 itself; fm, otfm, reflow, tfm "
                  "(euler | heun | rk4), meanflow, flowmap (jumps) and w2map models (dsm: use kinflow-sample); "
                  "sample.threads: threads over chunks of sample.batch rows; sample.device: cpu only. Started alone "
                  "(or by mpiexec -n 1) it does not initialise MPI; on several ranks the rows are split as in kinflow-sample");
    deck.section("run", "the run")
        .add_options()("run.seed", boost::program_options::value(&seed)->default_value(seed),
                       "seed of the source noise (as kinflow-sample's), >= 0");
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
            if (comm.is_root())
                std::cout << io::version_report("kinflow-generate")
                          << "kinflow-generate: LibTorch not linked (the line above is the build's; this driver reads MODEL.h5)\n";
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
        s = generate::run_generation(comm, config, deck.resolved({"run", "sample", "output"}));
    } catch (const sample::ModelError& e) {
        const std::string src = deck.source(e.key);
        throw SetupError((src == "default" ? deck.path() : src) + ": " + e.key + ": " + e.what());
    }
    if (comm.is_root() && !deck.quiet()) {
        std::cout << "kinflow-generate: " << s.objective << " model, " << s.count << " samples, method " << s.method << ", nfe "
                  << s.nfe << " (" << s.steps << " steps), " << std::setprecision(3) << s.seconds << " s ("
                  << static_cast<double>(s.count) / std::max(s.seconds, 1e-9) << " samples/s)\n"
                  << "kinflow: wrote " << config.output_file << "\n";
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return kinflow::drivers::driver_main(argc, argv, "kinflow-generate", run, kinflow::drivers::Mpi::WhenLaunched);
}
