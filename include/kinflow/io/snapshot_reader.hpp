#pragma once
// Reader for kinflow HDF5 files: root attributes, snapshots (parallel hyperslab reads of a row
// range), diagnostics. Used for initial conditions and by the learning modules.
#include <cstdint>
#include <string>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/io/hdf5.hpp"

namespace kinflow::io {

/// Rows [begin, end) of the particle datasets of `group` (position; velocity, id, species when
/// present) as a ParticleSet with n_global = `n_global` (collective). The schema is checked
/// (position [N, dim] with dim = dim_expected when > 0, velocity 2-D, id and species 1-D);
/// errors start with `where`.
ParticleSet read_particle_rows(hid_t group, std::int64_t begin, std::int64_t end, std::int64_t n_global,
                               const std::string& where, int dim_expected);

class SnapshotReader {
  public:
    /// Opens `path` read-only (collective). Throws Error naming the path if it is not a kinflow file.
    SnapshotReader(const comm::Communicator& comm, const std::string& path);

    int count() const { return static_cast<int>(_names.size()); }
    /// Resolve an index (negative counts from the end: -1 is the last snapshot).
    int resolve(int index) const;
    double time(int index) const;
    std::int64_t step(int index) const;
    std::int64_t n_global(int index) const;
    int dim() const { return _dim; }
    bool has_dataset(int index, const std::string& name) const;

    std::string attr_string(const std::string& name) const;
    std::int64_t attr_int(const std::string& name) const;

    /// Rows [begin, end) of snapshot `index`: position, and velocity/id/species when present.
    ParticleSet read(int index, std::int64_t begin, std::int64_t end) const;

    std::vector<std::string> diagnostic_names() const;
    std::vector<double> diagnostic(const std::string& name) const;

  private:
    std::string group_name(int index) const;
    comm::Communicator _comm;
    std::string _path;
    Handle _file;
    int _dim = 0;
    std::vector<std::string> _names;
};

} // namespace kinflow::io
