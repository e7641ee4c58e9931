// kinflow-simulate: the Keller–Segel engine's entry. Its own step loop (not run_simulation):
// adaptive time steps accumulate the true simulated time, and a collapse to the blob scale
// ends the run early and cleanly (final snapshot, message, exit 0).
#include <cstdio>
#include <iostream>
#include <memory>

#include "driver_io.hpp"
#include "driver_main.hpp"
#include "engine_entry.hpp"
#include "kinflow/core/progress.hpp"
#include "kinflow/engines/ks/ks_engine.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "run_control.hpp"

namespace kinflow::drivers {

namespace {
ks::Options g_options;

void describe(io::Deck& deck) {
    ks::describe(deck.section("ks", "Keller-Segel blob particles (run.engine = ks)"), g_options);
}

/// step → (every out.every steps, the last and a collapse) diagnostics + snapshot → progress →
/// checkpoint, from ctl.start_step() and its time. Returns the collapse step (or -1) and sets
/// `time` to the simulated time reached; `stopped` when a signal stopped the run.
std::int64_t run_loop(ks::KsEngine& engine, ParticleSet& particles, const io::RunOptions& run,
                      const io::OutputOptions& out, io::SnapshotWriter& writer, bool progress_enabled, double& time,
                      double& core_fraction, RunControl& ctl, bool& stopped) {
    Progress progress(std::cerr, run.steps, particles.n_global, progress_enabled, 5.0, ctl.start_step());
    std::int64_t n = ctl.start_step(), collapsed = -1;
    time = ctl.start_time();
    stopped = false;
    try {
        if (n == 0) writer.write(particles, time, 0, engine.diagnostics(particles, run.dt));
        while (n < run.steps) {
            const ks::StepResult r = engine.step(particles, n, run.dt);
            if (!r.advanced) { // the state at step n has collapsed: write it (unless just written) and stop
                collapsed = n;
                core_fraction = r.core_fraction;
                if (n % out.every != 0)
                    writer.write(particles, time, n, engine.diagnostics(particles, run.dt));
                break;
            }
            ++n;
            time += r.dt;
            if (n % out.every == 0 || n == run.steps)
                writer.write(particles, time, n, engine.diagnostics(particles, run.dt));
            progress.update(n, time);
            if (ctl.after_step(n, time, particles, writer, engine)) {
                stopped = true;
                return -1;
            }
        }
    } catch (const Error& e) {
        const std::string kept = writer.keep_partial();
        throw Error(std::string(e.what()) + " at step " + std::to_string(n) + "; snapshots so far kept in " + kept);
    }
    writer.finish();
    ctl.completed();
    progress.finish(n, time);
    return collapsed;
}

void run(const comm::Communicator& comm, const io::Deck& deck, const io::RunOptions& run_opts,
         const io::OutputOptions& out) {
    const auto& o = g_options;
    ks::Params params;
    ParticleSet particles;
    try {
        params = ks::validate(o, run_opts.dt);
        // position, drift and pair-sum work arrays per particle; exchange = allgather puts every
        // position on every rank
        if (params.init != ks::Init::File) {
            check_particle_memory(comm, "ks.particles", params.particles, 8.0 * (3 * params.dim + 4),
                                  params.exchange == ks::Exchange::Allgather ? 8.0 * params.dim : 0.0);
        }
    } catch (const OptionError& e) {
        throw SetupError(deck.explain(e));
    }
    RunControl ctl(comm, deck, run_opts, out, "ks", false);
    if (ctl.resuming()) {
        params.particles = ctl.checkpoint().header().n_global;
    } else if (params.init == ks::Init::File) {
        particles = read_initial_particles(comm, deck, "ks.init_file", o.init_file, o.init_snapshot, params.dim,
                                           params.particles);
    }
    ks::KsEngine engine(comm, params, static_cast<std::uint64_t>(run_opts.seed));
    ctl.start(engine, particles);

    const auto writer = ctl.open_writer(params.dim);
    const bool verbose = !deck.quiet() && comm.is_root();
    double time = 0.0, core_fraction = 0.0;
    bool stopped = false;
    const std::int64_t collapsed =
        run_loop(engine, particles, run_opts, out, *writer, verbose, time, core_fraction, ctl, stopped);
    if (stopped) {
        ctl.report_stop();
        return;
    }
    if (collapsed >= 0 && comm.is_root()) { // reported even with --quiet: it changes what the file holds
        char buf[512];
        std::snprintf(
            buf, sizeof buf,
            "kinflow: ks: collapse to the blob scale at t = %.9g (step %lld): %.3g of the mass within delta = %g "
            "of the densest particle (ks.blowup_fraction = %g); final snapshot written, run stopped",
            time, static_cast<long long>(collapsed), core_fraction, params.delta, params.blowup_fraction);
        std::cout << buf << std::endl;
    }
    if (verbose)
        std::cout << "kinflow: wrote " << out.file << std::endl;
}
} // namespace

EngineEntry ks_entry() { return {"ks", describe, run}; }

} // namespace kinflow::drivers
