#pragma once
// The step loop every engine shares: step → (every k) diagnostics + snapshot → progress.
#include <cstdint>
#include <iostream>

#include "kinflow/core/error.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/core/progress.hpp"
#include "kinflow/io/run_options.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "run_control.hpp"

namespace kinflow::drivers {

/// Run `engine` from step ctl.start_step() (0, or the checkpoint's) to `run.steps`, writing
/// snapshot 0 (fresh runs), every `out.every`-th step and the last one, and the checkpoints ctl
/// asks for. Returns false when a signal stopped the run (checkpoint written, output suspended).
/// On an error the partial file is kept as FILE.incomplete.
template <class Engine>
bool run_simulation(Engine& engine, ParticleSet& particles, const io::RunOptions& run, const io::OutputOptions& out,
                    io::SnapshotWriter& writer, bool progress_enabled, RunControl& ctl) {
    Progress progress(std::cerr, run.steps, particles.n_global, progress_enabled, 5.0, ctl.start_step());
    std::int64_t n = ctl.start_step();
    try {
        if (n == 0) writer.write(particles, 0.0, 0, engine.diagnostics(particles));
        while (n < run.steps) {
            engine.step(particles, n, run.dt);
            ++n;
            const double t = static_cast<double>(n) * run.dt;
            if (n % out.every == 0 || n == run.steps) writer.write(particles, t, n, engine.diagnostics(particles));
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

} // namespace kinflow::drivers
