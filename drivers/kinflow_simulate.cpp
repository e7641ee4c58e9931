// kinflow-simulate DECK [--section.key=value ...]: run a physics engine from an input deck.
#include <iostream>
#include <string>
#include <vector>

#include "driver_main.hpp"
#include "engine_entry.hpp"
#include "kinflow/io/version_report.hpp"
#include "run_control.hpp"

namespace {

using namespace kinflow;
using drivers::SetupError;

std::vector<drivers::EngineEntry> engines() {
    return {
        drivers::langevin_entry(),
#ifdef KINFLOW_HAVE_KS
        drivers::ks_entry(),
#endif
#ifdef KINFLOW_HAVE_DSMC
        drivers::dsmc_entry(),
#endif
    };
}

int run(int argc, char** argv, const comm::Communicator& comm) {
    io::RunOptions run_opts;
    io::OutputOptions out;
    io::Deck deck("kinflow-simulate", "kinflow-simulate DECK.ini [--section.key=value ...] [--quiet] [--resume]");
    deck.allow_resume();
    drivers::g_command_line = "kinflow-simulate";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a != "--resume") drivers::g_command_line += " " + a;
    }
    io::describe(deck.section("run", "the run"), run_opts);
    io::describe(deck.section("output", "HDF5 output"), out);
    const auto entries = engines();
    for (const auto& e : entries) e.describe(deck);
    try {
        const auto status = deck.parse(argc, argv);
        if (status == io::Deck::Status::Help) {
            if (comm.is_root()) std::cout << deck.help();
            return 0;
        }
        if (status == io::Deck::Status::Version) {
            if (comm.is_root()) std::cout << io::version_report("kinflow-simulate");
            return 0;
        }
        std::vector<const char*> names;
        for (const auto& e : entries) names.push_back(e.name);
        io::validate(run_opts, names);
        io::validate(out);
    } catch (const OptionError& e) {
        throw SetupError(deck.explain(e));
    } catch (const SetupError&) {
        throw;
    } catch (const Error& e) {
        throw SetupError(e.what());
    }
    for (const auto& e : entries) {
        if (run_opts.engine == e.name) e.run(comm, deck, run_opts, out);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) { return kinflow::drivers::driver_main(argc, argv, "kinflow-simulate", run); }
