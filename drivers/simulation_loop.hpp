#pragma once
// The step loop every engine shares: step → (every k) diagnostics + snapshot → progress.
#include <cstdint>
#include <iostream>

#include "kinflow/core/error.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/core/progress.hpp"
#include "kinflow/io/run_options.hpp"
#include "kinflow/io/snapshot_writer.hpp"

namespace kinflow::drivers {

/// Run `run.steps` steps of `engine` from time 0, writing snapshot 0, every `out.every`-th
/// step and the last one. On an error the partial file is kept as FILE.incomplete.
template <class Engine>
void run_simulation(Engine& engine, ParticleSet& particles, const io::RunOptions& run, const io::OutputOptions& out,
                    io::SnapshotWriter& writer, bool progress_enabled) {
    Progress progress(std::cerr, run.steps, particles.n_global, progress_enabled);
    std::int64_t n = 0;
    try {
        writer.write(particles, 0.0, 0, engine.diagnostics(particles));
        for (n = 0; n < run.steps;) {
            engine.step(particles, n, run.dt);
            ++n;
            const double t = static_cast<double>(n) * run.dt;
            if (n % out.every == 0 || n == run.steps) writer.write(particles, t, n, engine.diagnostics(particles));
            progress.update(n, t);
        }
    } catch (const Error& e) {
        const std::string kept = writer.keep_partial();
        throw Error(std::string(e.what()) + " at step " + std::to_string(n) + "; snapshots so far kept in " + kept);
    }
    writer.finish();
    progress.finish(n, static_cast<double>(n) * run.dt);
}

} // namespace kinflow::drivers
