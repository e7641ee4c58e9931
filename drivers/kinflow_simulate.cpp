// kinflow-simulate DECK [--section.key=value ...]: run a physics engine from an input deck.
#include <iostream>
#include <string>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/version.hpp"
#include "kinflow/engines/langevin/langevin_engine.hpp"
#include "kinflow/io/deck.hpp"
#include "kinflow/io/run_options.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "driver_main.hpp"
#include "simulation_loop.hpp"

namespace {

using namespace kinflow;
using drivers::SetupError;

struct AllOptions {
    io::RunOptions run;
    io::OutputOptions output;
    langevin::Options langevin;
};

void run_langevin(const comm::Communicator& comm, const io::Deck& deck, AllOptions& o) {
    langevin::Params params;
    ParticleSet particles;
    try {
        params = langevin::validate(o.langevin, o.run.dt);
    } catch (const OptionError& e) {
        throw SetupError(deck.explain(e));
    }
    if (params.init == langevin::Init::File) {
        try {
            io::SnapshotReader reader(comm, o.langevin.init_file);
            const int index = reader.resolve(o.langevin.init_snapshot);
            params.particles = reader.n_global(index);
            const auto dec = comm::BlockDecomposition::make(params.particles, comm.size(), comm.rank());
            particles = reader.read(index, dec.begin, dec.end);
        } catch (const Error& e) {
            throw SetupError(deck.source("langevin.init_file") + ": langevin.init_file: " + e.what());
        }
    }
    langevin::LangevinEngine engine(comm, params, static_cast<std::uint64_t>(o.run.seed));
    engine.init(particles);

    io::FileInfo info{"langevin", deck.resolved({"run", "output", "langevin"}), o.run.seed, params.dim};
    std::unique_ptr<io::SnapshotWriter> writer;
    try {
        writer = std::make_unique<io::SnapshotWriter>(comm, o.output.file, info);
    } catch (const Error& e) {
        throw SetupError(deck.source("output.file") + ": " + e.what());
    }
    drivers::run_simulation(engine, particles, o.run, o.output, *writer, !deck.quiet() && comm.is_root());
    if (comm.is_root() && !deck.quiet()) std::cout << "kinflow: wrote " << o.output.file << std::endl;
}

int run(int argc, char** argv, const comm::Communicator& comm) {
    AllOptions o;
    io::Deck deck("kinflow-simulate", "kinflow-simulate DECK.ini [--section.key=value ...] [--quiet]");
    io::describe(deck.section("run", "the run"), o.run);
    io::describe(deck.section("output", "HDF5 output"), o.output);
    langevin::describe(deck.section("langevin", "Langevin / Fokker-Planck engine (run.engine = langevin)"), o.langevin);
    try {
        const auto status = deck.parse(argc, argv);
        if (status == io::Deck::Status::Help) {
            if (comm.is_root()) std::cout << deck.help();
            return 0;
        }
        if (status == io::Deck::Status::Version) {
            if (comm.is_root()) std::cout << "kinflow-simulate " << kVersion << "\n";
            return 0;
        }
        io::validate(o.run, {"langevin"});
        io::validate(o.output);
    } catch (const OptionError& e) {
        throw SetupError(deck.explain(e));
    } catch (const SetupError&) {
        throw;
    } catch (const Error& e) {
        throw SetupError(e.what());
    }
    if (o.run.engine == "langevin") run_langevin(comm, deck, o);
    return 0;
}

} // namespace

int main(int argc, char** argv) { return kinflow::drivers::driver_main(argc, argv, "kinflow-simulate", run); }
