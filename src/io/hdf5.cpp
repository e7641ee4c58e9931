#include "kinflow/io/hdf5.hpp"

#include <vector>

#include "kinflow/core/error.hpp"

namespace kinflow::io {

hid_t h5check(hid_t id, const std::string& what) {
    if (id < 0) throw Error("HDF5: " + what + " failed");
    return id;
}

herr_t h5check_status(herr_t rc, const std::string& what) {
    if (rc < 0) throw Error("HDF5: " + what + " failed");
    return rc;
}

void silence_hdf5_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {
void write_scalar_attr(hid_t obj, const std::string& name, hid_t type, const void* value) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose, "H5Screate");
    if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
    Handle attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, "create attribute " + name);
    h5check_status(H5Awrite(attr, type, value), "write attribute " + name);
}
} // namespace

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
    Handle type(H5Tcopy(H5T_C_S1), H5Tclose, "H5Tcopy");
    h5check_status(H5Tset_size(type, H5T_VARIABLE), "H5Tset_size");
    h5check_status(H5Tset_cset(type, H5T_CSET_UTF8), "H5Tset_cset");
    const char* p = value.c_str();
    write_scalar_attr(obj, name, type, &p);
}

void write_attr(hid_t obj, const std::string& name, double value) { write_scalar_attr(obj, name, H5T_NATIVE_DOUBLE, &value); }
void write_attr(hid_t obj, const std::string& name, std::int64_t value) { write_scalar_attr(obj, name, H5T_NATIVE_INT64, &value); }
void write_attr(hid_t obj, const std::string& name, std::int32_t value) { write_scalar_attr(obj, name, H5T_NATIVE_INT32, &value); }

void write_attr(hid_t obj, const std::string& name, const std::vector<std::int64_t>& value) {
    const hsize_t n = value.size();
    Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose, "H5Screate_simple");
    if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
    Handle attr(H5Acreate2(obj, name.c_str(), H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                "create attribute " + name);
    h5check_status(H5Awrite(attr, H5T_NATIVE_INT64, value.data()), "write attribute " + name);
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

std::string read_attr_string(hid_t obj, const std::string& name) {
    Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
    Handle ftype(H5Aget_type(attr), H5Tclose, "H5Aget_type");
    if (H5Tget_class(ftype) != H5T_STRING) throw Error("HDF5: attribute " + name + " is not a string");
    if (H5Tis_variable_str(ftype) > 0) {
        Handle mtype(H5Tcopy(H5T_C_S1), H5Tclose, "H5Tcopy");
        H5Tset_size(mtype, H5T_VARIABLE);
        H5Tset_cset(mtype, H5Tget_cset(ftype));
        char* p = nullptr;
        h5check_status(H5Aread(attr, mtype, &p), "read attribute " + name);
        std::string out = p ? p : "";
        Handle space(H5Aget_space(attr), H5Sclose, "H5Aget_space");
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, &p);
        return out;
    }
    const std::size_t n = H5Tget_size(ftype);
    std::vector<char> buf(n + 1, '\0');
    h5check_status(H5Aread(attr, ftype, buf.data()), "read attribute " + name);
    return std::string(buf.data());
}

double read_attr_double(hid_t obj, const std::string& name) {
    Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
    double v = 0;
    h5check_status(H5Aread(attr, H5T_NATIVE_DOUBLE, &v), "read attribute " + name);
    return v;
}

std::int64_t read_attr_int(hid_t obj, const std::string& name) {
    Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
    std::int64_t v = 0;
    h5check_status(H5Aread(attr, H5T_NATIVE_INT64, &v), "read attribute " + name);
    return v;
}

} // namespace kinflow::io
