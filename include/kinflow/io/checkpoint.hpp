#pragma once
// Checkpoint files (output.checkpoint_every, SIGTERM/SIGUSR1; kinflow-simulate --resume): the
// complete state of a run at a step boundary — the particles of every rank in their current
// order, step and time, the engine's state beyond its particles (core/engine_state.hpp), the
// snapshot writer's continuation and the resolved deck. Written to `<file>.ckpt.tmp` and renamed
// to `<file>.ckpt` when complete, so a kill during a checkpoint leaves the previous one intact.
// The counter-based RNG has no state beyond (seed, step, id): resuming at step n draws what the
// uninterrupted run draws.
#include <cstdint>
#include <string>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/engine_state.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/io/snapshot_writer.hpp"

namespace kinflow::io {

struct CheckpointHeader {
    std::string producer;  ///< the engine (run.engine)
    std::string deck;      ///< resolved deck of the run
    std::string physics;   ///< the resolved keys that change the physics (checked on resume)
    std::int64_t step = 0; ///< steps taken
    double time = 0.0;     ///< simulated time reached
    int ranks = 0;         ///< MPI ranks that wrote it
    bool block_order = false; ///< every rank held its id block in order (rank-count-independent layout)
    std::int64_t n_global = 0;
    SnapshotWriter::Continuation output;
};

/// Write the checkpoint `path` (collective; atomic through `path`.tmp).
void write_checkpoint(const comm::Communicator& comm, const std::string& path, const CheckpointHeader& header,
                      const ParticleSet& particles, const EngineState& state);

class CheckpointReader {
  public:
    /// Opens and validates `path` (collective). Throws Error with one line naming the file when it
    /// is missing, not a checkpoint, or damaged.
    CheckpointReader(const comm::Communicator& comm, const std::string& path);
    const CheckpointHeader& header() const { return _h; }
    /// This rank's particles: on the rank count that wrote the checkpoint, exactly the rows it
    /// held; on another rank count (only for a block-order layout: throws otherwise) the block of
    /// `comm::BlockDecomposition`. `any_layout`: the engine moves rows to their ranks itself
    /// (spatial DSMC), so on another rank count every layout is read, as blocks of the stored rows.
    ParticleSet particles(bool any_layout = false) const;
    /// The engine state; per-rank entries are read only on the rank count that wrote them.
    EngineState engine_state() const;

  private:
    comm::Communicator _comm;
    std::string _path;
    CheckpointHeader _h;
};

/// Keys whose values differ between two resolved decks (INI text from Deck::resolved), as
/// "section.key = 'new' (checkpoint: 'old')" lines; keys present in only one are reported too.
std::vector<std::string> deck_differences(const std::string& checkpoint, const std::string& now);

} // namespace kinflow::io
