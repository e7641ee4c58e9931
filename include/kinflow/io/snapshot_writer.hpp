#pragma once
// Parallel HDF5 snapshot writer (schema in ARCHITECTURE.md): collective hyperslab writes, rows
// ordered by global id, root attributes, /diagnostics; written to a temporary name and renamed
// when complete.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/diagnostics.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/io/hdf5.hpp"

namespace kinflow::io {

/// Root attributes of a kinflow file.
struct FileInfo {
    std::string producer; ///< langevin, ks, dsmc, sampler, ...
    std::string deck;     ///< the resolved deck as INI text
    std::int64_t seed = 0;
    int dim = 0;
};

class SnapshotWriter {
  public:
    /// Creates the parent directory if needed and opens `<path>.tmp` collectively. Throws Error
    /// naming the path when it cannot be written.
    SnapshotWriter(const comm::Communicator& comm, const std::string& path, const FileInfo& info);
    /// An unfinished writer removes its temporary file (see keep_partial()).
    ~SnapshotWriter();
    SnapshotWriter(const SnapshotWriter&) = delete;
    SnapshotWriter& operator=(const SnapshotWriter&) = delete;

    /// Write snapshot number count() (collective). Each rank's ids must be the contiguous range
    /// that follows the lower ranks' (block decomposition), so rows land in global-id order.
    void write(const ParticleSet& particles, double time, std::int64_t step, const Diagnostics& diagnostics);
    /// Write /diagnostics, close, and rename the temporary file to the final path (collective).
    void finish();
    /// Like finish(), but rename to `<path>.incomplete` (a run that stopped on an error keeps
    /// what it wrote, under a name that cannot be mistaken for a complete run). Returns that name.
    std::string keep_partial();

    int count() const { return _count; }
    const std::string& path() const { return _path; }
    const std::string& temp_path() const { return _tmp; }

  private:
    void close_and_rename(const std::string& target);
    void write_rows(hid_t group, const char* name, const void* data, hid_t type, std::int64_t n_global,
                    std::int64_t offset, std::int64_t n_local, int cols);

    comm::Communicator _comm;
    std::string _path, _tmp;
    Handle _file;
    int _count = 0;
    bool _done = false;
    std::vector<std::string> _diag_names;
    std::vector<std::vector<double>> _diag_values;
};

} // namespace kinflow::io
