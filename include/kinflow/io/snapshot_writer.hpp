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

/// Write this rank's particles as rows [offset, offset + n_local) of `group`'s datasets position,
/// velocity, id and species (those present; collective).
void write_particle_rows(hid_t group, const ParticleSet& p, std::int64_t offset, std::int64_t n_global);

/// Root attributes of a kinflow file.
struct FileInfo {
    std::string producer; ///< langevin, ks, dsmc, sampler, ...
    std::string deck;     ///< the resolved deck as INI text
    std::int64_t seed = 0;
    int dim = 0;
};

/// A cell field of a spatial engine: `components` values per cell for every cell of the grid,
/// cell index ix + nx (iy + ny iz) (identical on every rank).
struct CellField {
    std::string name;
    int components = 1;
    const std::vector<double>* values = nullptr;
};

/// The Cartesian grid of a spatial engine (/grid).
struct GridInfo {
    double lo[3] = {0, 0, 0}, hi[3] = {1, 1, 1};
    std::int64_t cells[3] = {1, 1, 1};
};

class SnapshotWriter {
  public:
    /// Creates the parent directory if needed and opens `<path>.tmp` collectively. Throws Error
    /// naming the path when it cannot be written.
    SnapshotWriter(const comm::Communicator& comm, const std::string& path, const FileInfo& info);
    /// What a checkpoint records of the writer: snapshots written and the diagnostics gathered.
    struct Continuation {
        int count = 0;
        std::vector<std::string> names;
        std::vector<std::vector<double>> values; ///< per name, one value per snapshot
    };
    /// Continue an interrupted run's output (collective): reopens `<path>.tmp` (or
    /// `<path>.incomplete`, renamed back to `.tmp`), removes the snapshots and /fields outputs
    /// from number `from.count` on and any /diagnostics, and rewrites the root attributes from `info`.
    /// Throws Error naming the file when neither exists or it cannot be opened.
    SnapshotWriter(const comm::Communicator& comm, const std::string& path, const FileInfo& info,
                   const Continuation& from);
    /// An unfinished writer removes its temporary file (see keep_partial() and suspend()).
    ~SnapshotWriter();
    SnapshotWriter(const SnapshotWriter&) = delete;
    SnapshotWriter& operator=(const SnapshotWriter&) = delete;

    /// Write snapshot number count() (collective). Each rank's ids must be the contiguous range
    /// that follows the lower ranks' (block decomposition), so rows land in global-id order.
    void write(const ParticleSet& particles, double time, std::int64_t step, const Diagnostics& diagnostics);
    /// Write /grid: datasets lo, hi [3], cells [3] (int64) and the cell centres x [nx], y [ny],
    /// z [nz] (collective; once, before write_fields; a continued output keeps its /grid).
    void write_grid(const GridInfo& grid);
    /// Output number count() of a spatial engine (collective): /fields/NNNNNN (attributes time,
    /// step, samples; datasets [nz, ny, nx] or [nz, ny, nx, components]; rank 0 writes), the
    /// diagnostics, and when `particles` is given /snapshots/NNNNNN with each rank's rows in rank
    /// order as given (ids need not be in block order: the engine orders its rows itself).
    void write_fields(double time, std::int64_t step, std::int64_t samples, const std::vector<CellField>& fields,
                      const Diagnostics& diagnostics, const ParticleSet* particles);
    /// A further int64 root attribute (e.g. the sampler's nfe; collective).
    void write_root_attr(const std::string& name, std::int64_t value);
    /// Write /diagnostics, close, rename the temporary file to the final path and write its XDMF
    /// sidecar (io/xdmf.hpp; collective).
    void finish();
    /// Like finish(), but rename to `<path>.incomplete` (a run that stopped on an error keeps
    /// what it wrote, under a name that cannot be mistaken for a complete run). Returns that name.
    std::string keep_partial();

    /// Close the temporary file as it stands (whole snapshots, no /diagnostics yet) and keep it
    /// under `<path>.tmp` for a resumed run (collective).
    void suspend();
    /// The state a checkpoint records to continue this output.
    Continuation continuation() const { return {_count, _diag_names, _diag_values}; }

    int count() const { return _count; }
    const std::string& path() const { return _path; }
    const std::string& temp_path() const { return _tmp; }

  private:
    void write_root_attrs(const FileInfo& info);
    void record_diagnostics(double time, const Diagnostics& diagnostics);
    void close_and_rename(const std::string& target);

    comm::Communicator _comm;
    std::string _path, _tmp;
    Handle _file;
    int _count = 0;
    bool _done = false;
    std::vector<std::string> _diag_names;
    std::vector<std::vector<double>> _diag_values;
    GridInfo _grid;
};

} // namespace kinflow::io
