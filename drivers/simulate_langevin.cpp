// kinflow-simulate: the Langevin engine's entry.
#include <iostream>
#include <memory>

#include "driver_io.hpp"
#include "driver_main.hpp"
#include "engine_entry.hpp"
#include "kinflow/engines/langevin/langevin_engine.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "simulation_loop.hpp"

namespace kinflow::drivers {

namespace {
langevin::Options g_options;

void describe(io::Deck& deck) {
    langevin::describe(deck.section("langevin", "Langevin / Fokker-Planck engine (run.engine = langevin)"), g_options);
}

void run(const comm::Communicator& comm, const io::Deck& deck, const io::RunOptions& run_opts, const io::OutputOptions& out) {
    const auto& o = g_options;
    langevin::Params params;
    ParticleSet particles;
    try {
        params = langevin::validate(o, run_opts.dt);
        // position, velocity, id and the step's work arrays
        if (params.init != langevin::Init::File)
            check_particle_memory(comm, "langevin.particles", params.particles, 8.0 * (2 * params.dim + 5));
    } catch (const OptionError& e) {
        throw SetupError(deck.explain(e));
    }
    RunControl ctl(comm, deck, run_opts, out, "langevin", false);
    if (ctl.resuming()) {
        params.particles = ctl.checkpoint().header().n_global;
    } else if (params.init == langevin::Init::File) {
        particles = read_initial_particles(comm, deck, "langevin.init_file", o.init_file, o.init_snapshot, params.dim,
                                           params.particles);
    }
    langevin::LangevinEngine engine(comm, params, static_cast<std::uint64_t>(run_opts.seed));
    ctl.start(engine, particles);

    const auto writer = ctl.open_writer(params.dim);
    if (!run_simulation(engine, particles, run_opts, out, *writer, !deck.quiet() && comm.is_root(), ctl))
        ctl.report_stop();
    else if (comm.is_root() && !deck.quiet())
        std::cout << "kinflow: wrote " << out.file << std::endl;
}
} // namespace

EngineEntry langevin_entry() { return {"langevin", describe, run}; }

} // namespace kinflow::drivers
