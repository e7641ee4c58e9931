#include "kinflow/io/hdf5.hpp"

#include <algorithm>
#include <vector>

#include "kinflow/core/error.hpp"
#include "kinflow/core/options.hpp"

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

std::string hdf5_version() {
    unsigned major = 0, minor = 0, release = 0;
    h5check_status(H5get_libversion(&major, &minor, &release), "H5get_libversion");
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

bool hdf5_is_parallel() {
#ifdef H5_HAVE_PARALLEL
    return true;
#else
    return false;
#endif
}

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

namespace {
/// An attribute read into one number must hold one value (an array would overrun it).
void require_single(hid_t attr, const std::string& name) {
    Handle space(H5Aget_space(attr), H5Sclose, "H5Aget_space");
    if (H5Sget_simple_extent_npoints(space) != 1) throw Error("HDF5: attribute " + name + " is not a single value");
}
} // namespace

double read_attr_double(hid_t obj, const std::string& name) {
    Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
    require_single(attr, name);
    double v = 0;
    h5check_status(H5Aread(attr, H5T_NATIVE_DOUBLE, &v), "read attribute " + name);
    return v;
}

std::int64_t read_attr_int(hid_t obj, const std::string& name) {
    Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
    require_single(attr, name);
    std::int64_t v = 0;
    h5check_status(H5Aread(attr, H5T_NATIVE_INT64, &v), "read attribute " + name);
    return v;
}

void checksummed_format(hid_t fapl) {
    h5check_status(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST), "H5Pset_libver_bounds");
}

Handle mpio_fapl(MPI_Comm comm) {
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate");
    if (comm != MPI_COMM_NULL) h5check_status(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), "H5Pset_fapl_mpio");
    checksummed_format(fapl);
    return fapl;
}

Handle collective_dxpl() {
    Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose, "H5Pcreate");
    int mpi = 0;
    MPI_Initialized(&mpi); // without MPI every file is a serial one (mpio_fapl(MPI_COMM_NULL))
    if (mpi) h5check_status(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio");
    return dxpl;
}

void write_rows(hid_t group, const std::string& name, const void* data, hid_t type, std::int64_t n_global,
                std::int64_t offset, std::int64_t n_local, int cols) {
    const int rank = cols > 0 ? 2 : 1;
    const hsize_t fdims[2] = {static_cast<hsize_t>(n_global), static_cast<hsize_t>(cols > 0 ? cols : 1)};
    Handle fspace(H5Screate_simple(rank, fdims, nullptr), H5Sclose, "H5Screate_simple");
    Handle dset(H5Dcreate2(group, name.c_str(), type, fspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
                "create dataset " + name);
    const hsize_t start[2] = {static_cast<hsize_t>(offset), 0};
    const hsize_t count[2] = {static_cast<hsize_t>(n_local), fdims[1]};
    Handle mspace(H5Screate_simple(rank, count, nullptr), H5Sclose, "H5Screate_simple");
    if (n_local > 0) {
        h5check_status(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr), "select hyperslab");
    } else {
        H5Sselect_none(fspace);
        H5Sselect_none(mspace);
    }
    Handle dxpl = collective_dxpl();
    h5check_status(H5Dwrite(dset, type, mspace, fspace, dxpl, data), "write " + name);
}

int read_rows_raw(hid_t group, const std::string& name, hid_t mtype, std::int64_t begin,
                  std::int64_t end, void* (*resize)(void*, std::size_t), void* out) {
    Handle dset(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose, "open dataset " + name);
    Handle fspace(H5Dget_space(dset), H5Sclose, "H5Dget_space");
    hsize_t dims[2] = {0, 1};
    const int rank = H5Sget_simple_extent_ndims(fspace);
    KINFLOW_REQUIRE(rank == 1 || rank == 2, "dataset " << name << " has rank " << rank);
    H5Sget_simple_extent_dims(fspace, dims, nullptr);
    KINFLOW_REQUIRE(begin >= 0 && begin <= end && end <= static_cast<std::int64_t>(dims[0]),
                    "dataset " << name << " has " << dims[0] << " rows, need " << end);
    Handle ftype(H5Dget_type(dset), H5Tclose, "H5Dget_type");
    KINFLOW_REQUIRE(H5Tget_class(ftype) == H5Tget_class(mtype), "dataset " << name << " has the wrong type");
    KINFLOW_REQUIRE(rank == 1 || dims[1] >= 1, "dataset " << name << " has no columns");
    const hsize_t start[2] = {static_cast<hsize_t>(begin), 0};
    const hsize_t count[2] = {static_cast<hsize_t>(end - begin), rank == 2 ? dims[1] : 1};
    // A damaged or hand-made file may claim any size: refuse what cannot fit before allocating.
    const double bytes = static_cast<double>(count[0]) * static_cast<double>(count[1]) * static_cast<double>(H5Tget_size(mtype));
    if (const double have = physical_memory(); have > 0 && bytes > have) {
        throw Error("dataset " + name + " has " + std::to_string(count[0]) + " x " + std::to_string(count[1]) +
                    " values to read, more than this machine's memory");
    }
    void* data = resize(out, static_cast<std::size_t>(count[0] * count[1]));
    Handle mspace(H5Screate_simple(rank, count, nullptr), H5Sclose, "H5Screate_simple");
    if (count[0] > 0) {
        h5check_status(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr), "select hyperslab");
    } else {
        H5Sselect_none(fspace);
        H5Sselect_none(mspace);
    }
    Handle dxpl = collective_dxpl();
    h5check_status(H5Dread(dset, mtype, mspace, fspace, dxpl, data), "read " + name);
    return rank == 2 ? static_cast<int>(dims[1]) : 0;
}

namespace {
#if H5_VERSION_GE(1, 12, 0)
using LinkInfo = H5L_info2_t;
#else
using LinkInfo = H5L_info_t;
#endif
herr_t collect_name(hid_t, const char* name, const LinkInfo*, void* data) {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
}
} // namespace

std::vector<std::string> list_group(hid_t file, const char* group) {
    std::vector<std::string> names;
    if (H5Lexists(file, group, H5P_DEFAULT) <= 0) return names;
    Handle g(H5Gopen2(file, group, H5P_DEFAULT), H5Gclose, std::string("open ") + group);
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names);
    std::sort(names.begin(), names.end());
    return names;
}

} // namespace kinflow::io
