// kinflow-simulate: the DSMC engine's entry. The loop is run_simulation's with one more line:
// DSMC redistributes particles over the ranks, so before every snapshot they are brought back
// into block order (engine.to_blocks), which the writer and the reproducible sums need.
#include <iostream>
#include <memory>

#include "driver_io.hpp"
#include "driver_main.hpp"
#include "engine_entry.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/core/progress.hpp"
#include "kinflow/engines/dsmc/adjoint.hpp"
#include "kinflow/engines/dsmc/dsmc_engine.hpp"
#include "kinflow/engines/dsmc/spatial.hpp"
#include "kinflow/io/hdf5.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "run_control.hpp"

namespace kinflow::drivers {

namespace {
dsmc::Options g_options;
dsmc::AdjointOptions g_adjoint;

void describe(io::Deck& deck) {
    dsmc::describe(deck.section("dsmc", "DSMC engine for the Boltzmann equation, homogeneous or on a grid (run.engine = dsmc)"),
                   g_options);
    dsmc::describe(deck.section("adjoint", "adjoint DSMC gradients after the run (run.engine = dsmc)"), g_adjoint);
}

/// After the run: the [adjoint] replicas (forward + backward each; replica 0 repeats the run
/// above with its seed), reported on rank 0 and written as root attributes of the output file.
void run_adjoint(const comm::Communicator& comm, const io::Deck& deck, const dsmc::Params& params,
                 const dsmc::AdjointParams& a, const io::RunOptions& run, const io::OutputOptions& out) {
    const auto r = dsmc::run_adjoint(comm, params, a, static_cast<std::uint64_t>(run.seed), run.steps, run.dt);
    if (!comm.is_root())
        return;
    if (!deck.quiet()) {
        std::cout << "kinflow: adjoint " << g_adjoint.objective << " at t = " << format_number(run.steps * run.dt)
                  << ": J = " << format_number(r.J) << " +- " << format_number(r.J_se) << " (" << a.replicas
                  << " replicas)" << std::endl;
        for (std::size_t q = 0; q < a.names.size(); ++q)
            std::cout << "kinflow: adjoint dJ/d" << a.names[q] << " = " << format_number(r.gradient[q]) << " +- "
                      << format_number(r.gradient_se[q]) << std::endl;
        std::cout << "kinflow: adjoint cost: forward " << format_number(r.forward_rate) << " particle-steps/s, backward "
                  << format_number(r.backward_rate) << " particle-steps/s (backward/forward time "
                  << format_number(r.forward_rate / r.backward_rate) << ")" << std::endl;
    }
    io::Handle file(H5Fopen(out.file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose, "open " + out.file);
    io::write_attr(file, "adjoint_objective", r.J);
    io::write_attr(file, "adjoint_objective_se", r.J_se);
    for (std::size_t q = 0; q < a.names.size(); ++q) {
        io::write_attr(file, "adjoint_gradient_" + a.names[q], r.gradient[q]);
        io::write_attr(file, "adjoint_gradient_" + a.names[q] + "_se", r.gradient_se[q]);
    }
}

/// step → (every k) to_blocks + diagnostics + snapshot → progress → checkpoint; snapshot 0 at
/// time 0. Returns false when a signal stopped the run (checkpoint written).
bool run_loop(dsmc::DsmcEngine& engine, ParticleSet& particles, const io::RunOptions& run, const io::OutputOptions& out,
              io::SnapshotWriter& writer, bool progress_enabled, RunControl& ctl) {
    Progress progress(std::cerr, run.steps, particles.n_global, progress_enabled, 5.0, ctl.start_step());
    std::int64_t n = ctl.start_step();
    try {
        if (n == 0) {
            engine.to_blocks(particles);
            writer.write(particles, 0.0, 0, engine.diagnostics(particles));
        }
        while (n < run.steps) {
            engine.step(particles, n, run.dt);
            ++n;
            const double t = static_cast<double>(n) * run.dt;
            if (n % out.every == 0 || n == run.steps) {
                engine.to_blocks(particles);
                writer.write(particles, t, n, engine.diagnostics(particles));
            }
            progress.update(n, t);
            if (ctl.after_step(n, t, particles, writer, engine)) return false;
        }
    } catch (const Error& e) {
        const std::string kept = writer.keep_partial();
        throw Error(std::string(e.what()) + " at step " + std::to_string(n) + "; snapshots so far kept in " + kept);
    }
    writer.finish();
    ctl.completed();
    progress.finish(n, static_cast<double>(n) * run.dt);
    return true;
}

/// dsmc.space = grid: step → (every k) cell fields, diagnostics and optional particle snapshot →
/// progress → checkpoint (output.checkpoint_every, SIGTERM/SIGUSR1; --resume on any rank count:
/// the engine moves the checkpoint's rows to the ranks owning their cells).
void run_spatial(const comm::Communicator& comm, const io::Deck& deck, const io::RunOptions& run,
                 const io::OutputOptions& out, dsmc::Params params) {
    if (!g_adjoint.objective.empty())
        throw SetupError(deck.source("adjoint.objective") + ": the adjoint needs dsmc.space = homogeneous");
    RunControl ctl(comm, deck, run, out, "dsmc", false, true);
    const bool from_file = params.init[0] == dsmc::Init::File;
    ParticleSet particles;
    if (from_file) { // on --resume too: the weight derived from the file's count
        std::int64_t n = 0;
        auto rows = read_initial_particles(comm, deck, "dsmc.init_file", g_options.init_file, g_options.init_snapshot,
                                           3, n);
        if (!ctl.resuming())
            particles = rows;
        if (!(params.grid.weight > 0.0)) {
            double volume = 1.0;
            for (int k = 0; k < 3; ++k)
                volume *= params.grid.hi[k] - params.grid.lo[k];
            params.grid.weight = params.number_density * volume / static_cast<double>(n);
        }
    } else if (!ctl.resuming()) {
        check_particle_memory(comm, "dsmc.particles", params.particles, 200.0);
    }
    dsmc::SpatialEngine engine(comm, params, static_cast<std::uint64_t>(run.seed));
    try {
        ctl.start(engine, particles);
    } catch (const Error& e) {
        if (from_file && !ctl.resuming())
            throw SetupError(deck.source("dsmc.init_file") + ": dsmc.init_file = '" + g_options.init_file + "': " +
                             e.what());
        throw;
    }
    const auto writer = ctl.open_writer(3);
    io::GridInfo grid;
    for (int k = 0; k < 3; ++k) {
        grid.lo[k] = params.grid.lo[k];
        grid.hi[k] = params.grid.hi[k];
        grid.cells[k] = params.grid.cells[k];
    }
    writer->write_grid(grid);
    const bool with_particles = out.particles == "true";
    auto write = [&](std::int64_t n, double t) {
        const auto f = engine.fields(particles);
        const std::vector<io::CellField> fields{
            {"number_density", 1, &f.number_density}, {"velocity", 3, &f.velocity},
            {"temperature", 1, &f.temperature},       {"temperature_x", 1, &f.temperature_x},
            {"temperature_y", 1, &f.temperature_y},   {"temperature_z", 1, &f.temperature_z},
            {"pressure", 1, &f.pressure},             {"heat_flux", 3, &f.heat_flux},
            {"shear_stress_xy", 1, &f.shear_stress_xy}, {"particles_per_cell", 1, &f.particles_per_cell}};
        writer->write_fields(t, n, f.samples, fields, engine.diagnostics(particles), with_particles ? &particles : nullptr);
    };
    const bool progress_enabled = !deck.quiet() && comm.is_root();
    std::int64_t n = ctl.start_step();
    Progress progress(std::cerr, run.steps, particles.n_global, progress_enabled, 5.0, n);
    try {
        if (n == 0)
            write(0, 0.0);
        std::int64_t rebalances = engine.rebalances();
        while (n < run.steps) {
            engine.step(particles, n, run.dt);
            ++n;
            const double t = static_cast<double>(n) * run.dt;
            if (engine.rebalances() != rebalances && comm.is_root() && !deck.quiet())
                std::cout << "kinflow: step " << n << ": slabs rebalanced, largest rank "
                          << format_number(engine.imbalance_before()) << " -> "
                          << format_number(engine.imbalance_after()) << " x the mean particles" << std::endl;
            rebalances = engine.rebalances();
            if (n % out.every == 0 || n == run.steps)
                write(n, t);
            progress.update(n, t);
            if (ctl.after_step(n, t, particles, *writer, engine)) {
                ctl.report_stop();
                return;
            }
        }
    } catch (const Error& e) {
        const std::string kept = writer->keep_partial();
        throw Error(std::string(e.what()) + " at step " + std::to_string(n) + "; output so far kept in " + kept);
    }
    writer->finish();
    ctl.completed();
    progress.finish(n, static_cast<double>(n) * run.dt);
    const std::int64_t collisions = engine.collisions();
    const std::int64_t np = comm.sum(static_cast<std::int64_t>(particles.size()));
    if (comm.is_root() && !deck.quiet())
        std::cout << "kinflow: wrote " << out.file << " (" << np << " particles, " << collisions << " collisions)"
                  << std::endl;
}

void run(const comm::Communicator& comm, const io::Deck& deck, const io::RunOptions& run_opts,
         const io::OutputOptions& out) {
    const auto& o = g_options;
    dsmc::Params params;
    dsmc::AdjointParams adjoint;
    ParticleSet particles;
    try {
        params = dsmc::validate(o, run_opts.dt);
        if (params.grid.enabled) {
            run_spatial(comm, deck, run_opts, out, params);
            return;
        }
        if (!g_adjoint.objective.empty())
            adjoint = dsmc::validate(g_adjoint, params);
        // velocity, id, species, and the collision groups' sort keys and gathered velocities
        if (params.init[0] != dsmc::Init::File) check_particle_memory(comm, "dsmc.particles", params.particles, 112.0);
    } catch (const OptionError& e) {
        throw SetupError(deck.explain(e));
    }
    RunControl ctl(comm, deck, run_opts, out, "dsmc", true);
    if (ctl.resuming()) {
        params.particles = ctl.checkpoint().header().n_global;
    } else if (params.init[0] == dsmc::Init::File) {
        particles = read_initial_particles(comm, deck, "dsmc.init_file", o.init_file, o.init_snapshot, 0, params.particles);
    }
    dsmc::DsmcEngine engine(comm, params, static_cast<std::uint64_t>(run_opts.seed));
    try {
        ctl.start(engine, particles);
    } catch (const OptionError& e) {
        throw SetupError(deck.explain(e));
    } catch (const Error& e) {
        if (params.init[0] == dsmc::Init::File && !ctl.resuming())
            throw SetupError(deck.source("dsmc.init_file") + ": " + e.what());
        throw;
    }

    const auto writer = ctl.open_writer(3);
    if (!run_loop(engine, particles, run_opts, out, *writer, !deck.quiet() && comm.is_root(), ctl)) {
        ctl.report_stop();
        return;
    }
    const std::int64_t collisions = engine.collisions(); // collective
    if (comm.is_root() && !deck.quiet())
        std::cout << "kinflow: wrote " << out.file << " (" << collisions << " collisions)" << std::endl;
    if (!g_adjoint.objective.empty())
        run_adjoint(comm, deck, params, adjoint, run_opts, out);
}
} // namespace

EngineEntry dsmc_entry() { return {"dsmc", describe, run}; }

} // namespace kinflow::drivers
