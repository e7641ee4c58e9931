#include "kinflow/io/snapshot_reader.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <Kokkos_Core.hpp>

#include "kinflow/core/error.hpp"

namespace kinflow::io {

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

std::vector<std::string> list_group(hid_t file, const char* group) {
    std::vector<std::string> names;
    if (H5Lexists(file, group, H5P_DEFAULT) <= 0) return names;
    Handle g(H5Gopen2(file, group, H5P_DEFAULT), H5Gclose, std::string("open ") + group);
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names);
    std::sort(names.begin(), names.end());
    return names;
}

/// Read rows [begin, end) of a 1D or 2D dataset; returns the column count (0 for 1D).
template <class T>
int read_rows(hid_t group, const char* name, hid_t mtype, std::int64_t begin, std::int64_t end, std::vector<T>& out) {
    Handle dset(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose, std::string("open dataset ") + name);
    Handle fspace(H5Dget_space(dset), H5Sclose, "H5Dget_space");
    hsize_t dims[2] = {0, 1};
    const int rank = H5Sget_simple_extent_ndims(fspace);
    KINFLOW_REQUIRE(rank == 1 || rank == 2, "dataset " << name << " has rank " << rank);
    H5Sget_simple_extent_dims(fspace, dims, nullptr);
    KINFLOW_REQUIRE(end <= static_cast<std::int64_t>(dims[0]), "dataset " << name << " has " << dims[0] << " rows, need " << end);
    const hsize_t start[2] = {static_cast<hsize_t>(begin), 0};
    const hsize_t count[2] = {static_cast<hsize_t>(end - begin), rank == 2 ? dims[1] : 1};
    out.resize(static_cast<std::size_t>(count[0] * count[1]));
    Handle mspace(H5Screate_simple(rank, count, nullptr), H5Sclose, "H5Screate_simple");
    if (count[0] > 0) {
        h5check_status(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr), "select hyperslab");
    } else {
        H5Sselect_none(fspace);
        H5Sselect_none(mspace);
    }
    Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose, "H5Pcreate");
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    h5check_status(H5Dread(dset, mtype, mspace, fspace, dxpl, out.data()), std::string("read ") + name);
    return rank == 2 ? static_cast<int>(dims[1]) : 0;
}

template <class ViewT, class T>
void copy_to_view(const ViewT& view, const std::vector<T>& data) {
    auto host = Kokkos::create_mirror_view(view);
    std::copy(data.begin(), data.end(), host.data());
    Kokkos::deep_copy(view, host);
}
} // namespace

SnapshotReader::SnapshotReader(const comm::Communicator& comm, const std::string& path) : _comm(comm), _path(path) {
    silence_hdf5_errors();
    if (!std::filesystem::is_regular_file(path)) throw Error("'" + path + "': no such file");
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate");
    H5Pset_fapl_mpio(fapl, _comm.raw(), MPI_INFO_NULL);
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
    if (f < 0) throw Error("'" + path + "': not an HDF5 file");
    _file = Handle(f, H5Fclose, "H5Fopen");
    if (!has_attr(_file, "dim") || !has_attr(_file, "producer") || H5Lexists(_file, "snapshots", H5P_DEFAULT) <= 0) {
        throw Error("'" + path + "': not a kinflow file (missing root attribute 'dim'/'producer' or /snapshots)");
    }
    _dim = static_cast<int>(read_attr_int(_file, "dim"));
    _names = list_group(_file, "snapshots");
}

int SnapshotReader::resolve(int index) const {
    const int n = count();
    const int i = index < 0 ? n + index : index;
    if (i < 0 || i >= n) {
        throw Error("'" + _path + "': snapshot index " + std::to_string(index) + " out of range (file has " + std::to_string(n) + ")");
    }
    return i;
}

std::string SnapshotReader::group_name(int index) const { return "snapshots/" + _names[static_cast<std::size_t>(resolve(index))]; }

double SnapshotReader::time(int index) const {
    Handle g(H5Gopen2(_file, group_name(index).c_str(), H5P_DEFAULT), H5Gclose, "open snapshot");
    return read_attr_double(g, "time");
}

std::int64_t SnapshotReader::step(int index) const {
    Handle g(H5Gopen2(_file, group_name(index).c_str(), H5P_DEFAULT), H5Gclose, "open snapshot");
    return read_attr_int(g, "step");
}

std::int64_t SnapshotReader::n_global(int index) const {
    Handle d(H5Dopen2(_file, (group_name(index) + "/position").c_str(), H5P_DEFAULT), H5Dclose, "open position");
    Handle s(H5Dget_space(d), H5Sclose, "H5Dget_space");
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(s, dims, nullptr);
    return static_cast<std::int64_t>(dims[0]);
}

bool SnapshotReader::has_dataset(int index, const std::string& name) const {
    return H5Lexists(_file, (group_name(index) + "/" + name).c_str(), H5P_DEFAULT) > 0;
}

std::string SnapshotReader::attr_string(const std::string& name) const { return read_attr_string(_file, name); }
std::int64_t SnapshotReader::attr_int(const std::string& name) const { return read_attr_int(_file, name); }

ParticleSet SnapshotReader::read(int index, std::int64_t begin, std::int64_t end) const {
    Handle g(H5Gopen2(_file, group_name(index).c_str(), H5P_DEFAULT), H5Gclose, "open snapshot");
    std::vector<double> pos, vel;
    std::vector<std::int64_t> id;
    std::vector<std::int32_t> sp;
    const int dim = read_rows(g, "position", H5T_NATIVE_DOUBLE, begin, end, pos);
    const bool has_vel = H5Lexists(g, "velocity", H5P_DEFAULT) > 0;
    const bool has_sp = H5Lexists(g, "species", H5P_DEFAULT) > 0;
    const int vdim = has_vel ? read_rows(g, "velocity", H5T_NATIVE_DOUBLE, begin, end, vel) : 0;
    read_rows(g, "id", H5T_NATIVE_INT64, begin, end, id);
    if (has_sp) read_rows(g, "species", H5T_NATIVE_INT32, begin, end, sp);

    ParticleSet p;
    p.allocate(static_cast<std::size_t>(end - begin), dim, vdim, has_sp, "kinflow::io::read");
    p.n_global = n_global(index);
    copy_to_view(p.position, pos);
    if (has_vel) copy_to_view(p.velocity, vel);
    copy_to_view(p.id, id);
    if (has_sp) copy_to_view(p.species, sp);
    return p;
}

std::vector<std::string> SnapshotReader::diagnostic_names() const { return list_group(_file, "diagnostics"); }

std::vector<double> SnapshotReader::diagnostic(const std::string& name) const {
    const std::string path = "diagnostics/" + name;
    if (H5Lexists(_file, path.c_str(), H5P_DEFAULT) <= 0) throw Error("'" + _path + "': no diagnostic '" + name + "'");
    Handle d(H5Dopen2(_file, path.c_str(), H5P_DEFAULT), H5Dclose, "open " + path);
    Handle s(H5Dget_space(d), H5Sclose, "H5Dget_space");
    hsize_t n = 0;
    H5Sget_simple_extent_dims(s, &n, nullptr);
    std::vector<double> out(n);
    if (n > 0) h5check_status(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), "read " + path);
    return out;
}

} // namespace kinflow::io
