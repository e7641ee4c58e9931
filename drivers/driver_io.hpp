#pragma once
// File set-up shared by the engine entries: initial particles from a kinflow file and the
// snapshot writer, with failures reported as deck errors naming the key.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "driver_main.hpp"
#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/io/deck.hpp"
#include "kinflow/io/run_options.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"

namespace kinflow::drivers {

/// OptionError naming `key` unless `n_global` particles fit in this machine's memory: `local` bytes
/// per particle of a rank's block, `global` bytes per particle held by every rank (estimates).
inline void check_particle_memory(const comm::Communicator& comm, const std::string& key, std::int64_t n_global,
                                  double local, double global = 0.0) {
    const double n = static_cast<double>(n_global);
    check_memory(key, std::to_string(n_global), std::ceil(n / comm.size()) * local + n * global);
}

/// This rank's block of snapshot `snapshot` of `file` (deck key `key`), and the global particle
/// count in `n_global`. `dim` > 0 requires that position dimension.
inline ParticleSet read_initial_particles(const comm::Communicator& comm, const io::Deck& deck, const std::string& key,
                                          const std::string& file, int snapshot, int dim, std::int64_t& n_global) {
    try {
        io::SnapshotReader reader(comm, file);
        const int index = reader.resolve(snapshot);
        n_global = reader.n_global(index);
        if (n_global < 1) throw Error("snapshot " + std::to_string(index) + " has no particles");
        if (dim > 0 && reader.dim() != dim) {
            throw Error("has dim " + std::to_string(reader.dim()) + " but the deck asks for dim " + std::to_string(dim));
        }
        const auto dec = comm::BlockDecomposition::make(n_global, comm.size(), comm.rank());
        return reader.read(index, dec.begin, dec.end);
    } catch (const Error& e) {
        throw SetupError(deck.source(key) + ": " + key + " = '" + file + "': " + e.what());
    }
}

} // namespace kinflow::drivers
