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

} // namespace kinflow::io
