#pragma once
// RAII wrappers for HDF5 handles; every negative return becomes a kinflow::Error.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <hdf5.h>

namespace kinflow::io {

/// Throw kinflow::Error naming `what` when an HDF5 call returned a negative value.
hid_t h5check(hid_t id, const std::string& what);
herr_t h5check_status(herr_t rc, const std::string& what);

/// An owned HDF5 identifier, closed with the matching H5xclose.
class Handle {
  public:
    using Closer = herr_t (*)(hid_t);
    Handle() = default;
    Handle(hid_t id, Closer closer, const std::string& what) : _id(h5check(id, what)), _close(closer) {}
    Handle(Handle&& o) noexcept : _id(std::exchange(o._id, -1)), _close(o._close) {}
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) {
            reset();
            _id = std::exchange(o._id, -1);
            _close = o._close;
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { reset(); }

    hid_t get() const { return _id; }
    operator hid_t() const { return _id; }
    bool valid() const { return _id >= 0; }
    void reset() {
        if (_id >= 0 && _close) _close(_id);
        _id = -1;
    }

  private:
    hid_t _id = -1;
    Closer _close = nullptr;
};

/// Silence HDF5's automatic error-stack printing (kinflow reports errors itself).
void silence_hdf5_errors();

/// Version of the HDF5 library linked in ("1.10.8").
std::string hdf5_version();
/// Whether that HDF5 is a parallel (MPI-IO) build.
bool hdf5_is_parallel();

// Attribute helpers on any object (file, group, dataset). Writes are collective in parallel files.
void write_attr(hid_t obj, const std::string& name, const std::string& value);
void write_attr(hid_t obj, const std::string& name, double value);
void write_attr(hid_t obj, const std::string& name, std::int64_t value);
void write_attr(hid_t obj, const std::string& name, std::int32_t value);
/// A 1D int64 array attribute.
void write_attr(hid_t obj, const std::string& name, const std::vector<std::int64_t>& value);
bool has_attr(hid_t obj, const std::string& name);
std::string read_attr_string(hid_t obj, const std::string& name);
double read_attr_double(hid_t obj, const std::string& name);
std::int64_t read_attr_int(hid_t obj, const std::string& name);

/// Every file kinflow writes uses the HDF5 1.8+ object formats (superblock v2, object header v2,
/// checksummed metadata): a damaged file is an error on open or read, where the 1.6 formats let a
/// flipped bit in an attribute header crash the reader (h5py segfaulted in the fuzz test).
void checksummed_format(hid_t fapl);

// Parallel (MPI-IO) files: every call below is collective over the file's communicator.
/// File-access property list for MPI-IO on `comm` (checksummed_format); for MPI_COMM_NULL
/// (comm::Communicator::local(), MPI not initialised) HDF5's default serial driver.
Handle mpio_fapl(MPI_Comm comm);
/// Transfer property list for collective reads and writes (a plain one when MPI is not initialised).
Handle collective_dxpl();
/// Create dataset `name` of [n_global] (cols = 0) or [n_global, cols] rows of `type` in `group`
/// and write this rank's n_local rows from `data` at row `offset`.
void write_rows(hid_t group, const std::string& name, const void* data, hid_t type, std::int64_t n_global,
                std::int64_t offset, std::int64_t n_local, int cols);
/// Read rows [begin, end) of a 1D or 2D dataset into `out` (row-major); returns the column
/// count (0 for 1D).
int read_rows_raw(hid_t group, const std::string& name, hid_t mtype, std::int64_t begin,
                  std::int64_t end, void* (*resize)(void*, std::size_t), void* out);
template <class T>
int read_rows(hid_t group, const std::string& name, hid_t mtype, std::int64_t begin, std::int64_t end,
              std::vector<T>& out) {
    return read_rows_raw(
        group, name, mtype, begin, end,
        [](void* v, std::size_t n) -> void* {
            auto& vec = *static_cast<std::vector<T>*>(v);
            vec.resize(n);
            return vec.data();
        },
        &out);
}
/// Names of the links in `group` of `file`, sorted (empty when the group does not exist).
std::vector<std::string> list_group(hid_t file, const char* group);

} // namespace kinflow::io
