#include "kinflow/io/run_options.hpp"

#include <limits>

#include <boost/program_options.hpp>

#include "kinflow/core/options.hpp"

namespace kinflow::io {

namespace po = boost::program_options;

void describe(po::options_description& d, RunOptions& o) {
    d.add_options()("run.engine", po::value(&o.engine)->default_value(o.engine), "physics engine: langevin | ks | dsmc (those built in; see the sections below)")(
        "run.seed", po::value(&o.seed)->default_value(o.seed), "master seed of the counter-based RNG, >= 0")(
        "run.steps", po::value(&o.steps)->default_value(o.steps), "number of time steps, >= 0")(
        "run.dt", po::value(&o.dt)->default_value(o.dt), "time step (model time units), > 0")(
        "run.kill_at_step", po::value(&o.kill_at_step)->default_value(o.kill_at_step),
        "testing: after this step (before its checkpoint) every rank sends itself run.kill_signal, as a job "
        "scheduler would; -1 = never")(
        "run.kill_signal", po::value(&o.kill_signal)->default_value(o.kill_signal),
        "testing: the signal of run.kill_at_step: KILL | TERM | USR1 | INT");
}

void describe(po::options_description& d, OutputOptions& o) {
    d.add_options()("output.file", po::value(&o.file)->default_value(o.file),
                    "HDF5 output path (parent directories are created; written as FILE.tmp, renamed when complete)")(
        "output.every", po::value(&o.every)->default_value(o.every),
        "snapshot interval in steps, >= 1 (step 0 and the last step are always written)")(
        "output.checkpoint_every", po::value(&o.checkpoint_every)->default_value(o.checkpoint_every),
        "steps between checkpoints FILE.ckpt (complete engine state, written atomically; removed when the run "
        "completes), >= 0; 0 = only when SIGTERM or SIGUSR1 asks for one. Continue with --resume")(
        "output.particles", po::value(&o.particles)->default_value(o.particles),
        "dsmc.space = grid: also write particle snapshots beside the cell fields (true | false); the other "
        "engines always write particles");
}

void validate(const RunOptions& o, const std::vector<const char*>& engines) {
    check_choice("run.engine", o.engine, engines);
    check_range("run.seed", o.seed, std::int64_t{0}, std::numeric_limits<std::int64_t>::max());
    check_range("run.steps", o.steps, std::int64_t{0}, std::int64_t{4000000000});
    check_positive("run.dt", o.dt);
    check_range("run.kill_at_step", o.kill_at_step, std::int64_t{-1}, std::numeric_limits<std::int64_t>::max());
    check_choice("run.kill_signal", o.kill_signal, {"KILL", "TERM", "USR1", "INT"});
}

void validate(const OutputOptions& o) {
    if (o.file.empty()) throw OptionError("output.file", o.file, "must not be empty");
    check_range("output.every", o.every, std::int64_t{1}, std::numeric_limits<std::int64_t>::max());
    check_range("output.checkpoint_every", o.checkpoint_every, std::int64_t{0}, std::numeric_limits<std::int64_t>::max());
    check_choice("output.particles", o.particles, {"true", "false"});
}

} // namespace kinflow::io
