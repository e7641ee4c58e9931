#pragma once
// Keys of the [run] and [output] sections shared by every engine.
#include <cstdint>
#include <string>
#include <vector>

#include <boost/program_options/options_description.hpp>

namespace kinflow::io {

/// [run]: which engine, master seed, number of steps and the time step.
struct RunOptions {
    std::string engine = "langevin";
    std::int64_t seed = 42;
    std::int64_t steps = 1000;
    double dt = 1e-3;
    std::int64_t kill_at_step = -1; ///< testing: the process sends itself kill_signal after this step (-1: never)
    std::string kill_signal = "KILL";
};

/// [output]: the HDF5 file and the snapshot interval (in steps).
struct OutputOptions {
    std::string file = "out/run.h5";
    std::int64_t every = 100;
    std::int64_t checkpoint_every = 0; ///< steps between checkpoints FILE.ckpt (0: only on SIGTERM/SIGUSR1)
    std::string particles = "true";    ///< spatial DSMC: also write particle snapshots (true | false)
};

void describe(boost::program_options::options_description& d, RunOptions& o);
void describe(boost::program_options::options_description& d, OutputOptions& o);
/// `engines` lists the engines this build has.
void validate(const RunOptions& o, const std::vector<const char*>& engines);
void validate(const OutputOptions& o);

} // namespace kinflow::io
