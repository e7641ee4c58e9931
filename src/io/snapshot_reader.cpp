#include "kinflow/io/snapshot_reader.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <Kokkos_Core.hpp>

#include "kinflow/core/error.hpp"

namespace kinflow::io {

namespace {
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
    Handle fapl = mpio_fapl(_comm.raw());
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
    if (f < 0) throw Error("'" + path + "': not an HDF5 file");
    _file = Handle(f, H5Fclose, "H5Fopen");
    if (!has_attr(_file, "dim") || !has_attr(_file, "producer") || H5Lexists(_file, "snapshots", H5P_DEFAULT) <= 0) {
        throw Error("'" + path + "': not a kinflow file (missing root attribute 'dim'/'producer' or /snapshots)");
    }
    _dim = static_cast<int>(std::clamp<std::int64_t>(read_attr_int(_file, "dim"), -1, 1 << 20));
    if (_dim < 1 || _dim > 3) throw Error("'" + path + "': root attribute dim = " + std::to_string(_dim) + " is not 1, 2 or 3");
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

ParticleSet read_particle_rows(hid_t g, std::int64_t begin, std::int64_t end, std::int64_t n_global,
                               const std::string& where, int dim_expected) {
    std::vector<double> pos, vel;
    std::vector<std::int64_t> id;
    std::vector<std::int32_t> sp;
    // The schema (ARCHITECTURE.md): position [N, dim], velocity [N, vdim], id [N], species [N].
    const int dim = read_rows(g, "position", H5T_NATIVE_DOUBLE, begin, end, pos);
    if (dim < 1 || (dim_expected > 0 && dim != dim_expected)) {
        throw Error(where + "position has " + (dim == 0 ? std::string("one dimension") : std::to_string(dim) + " columns") +
                    (dim_expected > 0 ? ", the file's dim is " + std::to_string(dim_expected) : std::string()));
    }
    const bool has_vel = H5Lexists(g, "velocity", H5P_DEFAULT) > 0;
    const bool has_sp = H5Lexists(g, "species", H5P_DEFAULT) > 0;
    const int vdim = has_vel ? read_rows(g, "velocity", H5T_NATIVE_DOUBLE, begin, end, vel) : 0;
    if (has_vel && vdim == 0) throw Error(where + "velocity is not a 2-D [N, components] dataset");
    if (read_rows(g, "id", H5T_NATIVE_INT64, begin, end, id) != 0) throw Error(where + "id is not a 1-D dataset");
    if (has_sp && read_rows(g, "species", H5T_NATIVE_INT32, begin, end, sp) != 0)
        throw Error(where + "species is not a 1-D dataset");

    ParticleSet p;
    p.allocate(static_cast<std::size_t>(end - begin), dim, vdim, has_sp, "kinflow::io::read");
    p.n_global = n_global;
    copy_to_view(p.position, pos);
    if (has_vel) copy_to_view(p.velocity, vel);
    copy_to_view(p.id, id);
    if (has_sp) copy_to_view(p.species, sp);
    return p;
}

ParticleSet SnapshotReader::read(int index, std::int64_t begin, std::int64_t end) const {
    Handle g(H5Gopen2(_file, group_name(index).c_str(), H5P_DEFAULT), H5Gclose, "open snapshot");
    return read_particle_rows(g, begin, end, n_global(index), "'" + _path + "' " + group_name(index) + ": ", _dim);
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
