#include "kinflow/io/snapshot_writer.hpp"

#include <cstdio>
#include <filesystem>

#include <Kokkos_Core.hpp>

#include "kinflow/core/error.hpp"
#include "kinflow/core/version.hpp"
#include "kinflow/io/xdmf.hpp"

namespace kinflow::io {

namespace fs = std::filesystem;

namespace {
std::string snapshot_name(int index) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%06d", index);
    return buf;
}

} // namespace

void write_particle_rows(hid_t group, const ParticleSet& p, std::int64_t offset, std::int64_t n_global) {
    const auto n_local = static_cast<std::int64_t>(p.size());
    auto pos = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.position);
    write_rows(group, "position", pos.data(), H5T_NATIVE_DOUBLE, n_global, offset, n_local, p.dim);
    if (p.has_velocity()) {
        auto vel = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.velocity);
        write_rows(group, "velocity", vel.data(), H5T_NATIVE_DOUBLE, n_global, offset, n_local, p.vdim);
    }
    auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.id);
    write_rows(group, "id", id.data(), H5T_NATIVE_INT64, n_global, offset, n_local, 0);
    if (p.has_species()) {
        auto sp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.species);
        write_rows(group, "species", sp.data(), H5T_NATIVE_INT32, n_global, offset, n_local, 0);
    }
}

SnapshotWriter::SnapshotWriter(const comm::Communicator& comm, const std::string& path, const FileInfo& info)
    : _comm(comm), _path(path), _tmp(path + ".tmp") {
    silence_hdf5_errors();
    KINFLOW_REQUIRE(!path.empty(), "output.file is empty");
    // Create the parent directory on rank 0; every rank learns whether it worked.
    std::string err;
    if (_comm.is_root()) {
        std::error_code ec;
        const fs::path parent = fs::path(path).parent_path();
        if (!parent.empty()) fs::create_directories(parent, ec);
        if (ec) err = "cannot create directory '" + parent.string() + "': " + ec.message();
        else if (fs::is_directory(path)) err = "'" + path + "' is a directory";
    }
    _comm.broadcast(err);
    if (!err.empty()) throw Error("output.file = '" + path + "': " + err);

    // A file that could not be set up is removed: no FILE.tmp outlives a failed start.
    auto remove_tmp = [&] {
        _file.reset();
        std::error_code ec;
        if (_comm.is_root()) fs::remove(_tmp, ec);
    };
    Handle fapl = mpio_fapl(_comm.raw());
    const hid_t f = H5Fcreate(_tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) {
        remove_tmp();
        throw Error("output.file = '" + path + "': cannot create '" + _tmp + "' (is the directory writable?)");
    }
    _file = Handle(f, H5Fclose, "H5Fcreate");
    try {
        write_root_attrs(info);
        Handle(H5Gcreate2(_file, "snapshots", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /snapshots");
        Handle(H5Gcreate2(_file, "diagnostics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /diagnostics");
    } catch (const Error&) {
        remove_tmp();
        throw;
    }
}

SnapshotWriter::SnapshotWriter(const comm::Communicator& comm, const std::string& path, const FileInfo& info,
                               const Continuation& from)
    : _comm(comm), _path(path), _tmp(path + ".tmp"), _count(from.count), _diag_names(from.names),
      _diag_values(from.values) {
    silence_hdf5_errors();
    KINFLOW_REQUIRE(_diag_values.size() == _diag_names.size(), "snapshot writer: inconsistent continuation");
    std::string err;
    if (_comm.is_root()) {
        std::error_code ec;
        const std::string incomplete = path + ".incomplete";
        if (!fs::exists(_tmp) && fs::exists(incomplete)) fs::rename(incomplete, _tmp, ec);
        if (ec) err = "cannot rename '" + incomplete + "' to '" + _tmp + "': " + ec.message();
        else if (!fs::is_regular_file(_tmp))
            err = "the interrupted run's output '" + _tmp + "' (or '" + incomplete + "') is missing";
    }
    _comm.broadcast(err);
    if (!err.empty()) throw Error(err);
    Handle fapl = mpio_fapl(_comm.raw());
    const hid_t f = H5Fopen(_tmp.c_str(), H5F_ACC_RDWR, fapl);
    if (f < 0) throw Error("the interrupted run's output '" + _tmp + "' cannot be opened (damaged?)");
    _file = Handle(f, H5Fclose, "H5Fopen");
    // A spatial engine's outputs are /fields (particle snapshots optional), the others' /snapshots.
    const auto fields = list_group(_file, "fields");
    const char* const group = fields.empty() ? "snapshots" : "fields";
    const auto snaps = fields.empty() ? list_group(_file, "snapshots") : fields;
    if (static_cast<int>(snaps.size()) < _count) {
        throw Error("the interrupted run's output '" + _tmp + "' holds " + std::to_string(snaps.size()) + " " +
                    group + ", the checkpoint expects " + std::to_string(_count));
    }
    for (const char* g : {"snapshots", "fields"}) { // outputs written after the checkpoint are written again
        for (const auto& name : list_group(_file, g)) {
            if (std::stoi(name) >= _count)
                h5check_status(H5Ldelete(_file, (std::string(g) + "/" + name).c_str(), H5P_DEFAULT),
                               std::string("remove ") + g + "/" + name);
        }
    }
    for (const auto& name : list_group(_file, "diagnostics"))
        h5check_status(H5Ldelete(_file, ("diagnostics/" + name).c_str(), H5P_DEFAULT), "remove diagnostic " + name);
    if (H5Lexists(_file, "diagnostics", H5P_DEFAULT) <= 0)
        Handle(H5Gcreate2(_file, "diagnostics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /diagnostics");
    write_root_attrs(info);
    H5Fflush(_file, H5F_SCOPE_GLOBAL);
}

void SnapshotWriter::write_root_attrs(const FileInfo& info) {
    write_attr(_file, "kinflow_version", std::string(kVersion));
    write_attr(_file, "producer", info.producer);
    write_attr(_file, "deck", info.deck);
    write_attr(_file, "seed", static_cast<std::int64_t>(info.seed));
    write_attr(_file, "mpi_ranks", static_cast<std::int32_t>(_comm.size()));
    write_attr(_file, "dim", static_cast<std::int32_t>(info.dim));
}

void SnapshotWriter::write_root_attr(const std::string& name, std::int64_t value) { write_attr(_file, name, value); }

SnapshotWriter::~SnapshotWriter() {
    if (_done) return;
    // Abandoned (an exception is unwinding): close and remove the temporary file.
    _file.reset();
    if (_comm.is_root()) {
        std::error_code ec;
        fs::remove(_tmp, ec);
    }
}

void SnapshotWriter::write(const ParticleSet& p, double time, std::int64_t step, const Diagnostics& diagnostics) {
    KINFLOW_REQUIRE(!_done, "snapshot writer already finished");
    const auto n_local = static_cast<std::int64_t>(p.size());
    const std::int64_t offset = _comm.exscan(n_local);
    const std::int64_t n_global = _comm.sum(n_local);

    auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.id);
    bool ordered = true;
    for (std::int64_t i = 0; i < n_local; ++i) ordered = ordered && id(i) == offset + i;
    if (_comm.any(!ordered)) throw Error("snapshot writer: particle ids are not in block order (sort/migrate first)");

    Handle group(H5Gcreate2(_file, ("snapshots/" + snapshot_name(_count)).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Gclose, "create snapshot group");
    write_attr(group, "time", time);
    write_attr(group, "step", static_cast<std::int64_t>(step));

    write_particle_rows(group, p, offset, n_global);
    group.reset();
    record_diagnostics(time, diagnostics);
}

void SnapshotWriter::record_diagnostics(double time, const Diagnostics& diagnostics) {
    // Diagnostics: the same names in the same order every snapshot; `time` always first.
    Diagnostics all;
    all.emplace_back("time", time);
    for (const auto& d : diagnostics) {
        if (d.first != "time") all.push_back(d);
    }
    if (_count == 0) {
        for (const auto& d : all) _diag_names.push_back(d.first);
        _diag_values.assign(all.size(), {});
    }
    KINFLOW_REQUIRE(all.size() == _diag_names.size(), "diagnostics changed between snapshots");
    for (std::size_t k = 0; k < all.size(); ++k) {
        KINFLOW_REQUIRE(all[k].first == _diag_names[k], "diagnostics changed between snapshots");
        _diag_values[k].push_back(all[k].second);
    }
    H5Fflush(_file, H5F_SCOPE_GLOBAL);
    ++_count;
}

namespace {
/// A float64 dataset of shape `dims` written by rank 0 from `data` (collective).
void write_root_dataset(hid_t group, const std::string& name, const double* data, const std::vector<hsize_t>& dims,
                        bool root, hid_t type = H5T_NATIVE_DOUBLE, hid_t mem_type = H5T_NATIVE_DOUBLE) {
    Handle fspace(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose, "H5Screate_simple");
    Handle mspace(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose, "H5Screate_simple");
    Handle dset(H5Dcreate2(group, name.c_str(), type, fspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
                "create " + name);
    if (!root) {
        H5Sselect_none(fspace);
        H5Sselect_none(mspace);
    }
    Handle dxpl = collective_dxpl();
    h5check_status(H5Dwrite(dset, mem_type, mspace, fspace, dxpl, data), "write " + name);
}
} // namespace

void SnapshotWriter::write_grid(const GridInfo& grid) {
    _grid = grid;
    if (H5Lexists(_file, "grid", H5P_DEFAULT) > 0) // a continued output (--resume) has it
        return;
    Handle group(H5Gcreate2(_file, "grid", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /grid");
    const bool root = _comm.is_root();
    write_root_dataset(group, "lo", grid.lo, {3}, root);
    write_root_dataset(group, "hi", grid.hi, {3}, root);
    {
        const hsize_t three = 3;
        Handle fspace(H5Screate_simple(1, &three, nullptr), H5Sclose, "H5Screate_simple");
        Handle mspace(H5Screate_simple(1, &three, nullptr), H5Sclose, "H5Screate_simple");
        Handle dset(H5Dcreate2(group, "cells", H5T_NATIVE_INT64, fspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                    H5Dclose, "create cells");
        if (!root) {
            H5Sselect_none(fspace);
            H5Sselect_none(mspace);
        }
        Handle dxpl = collective_dxpl();
        h5check_status(H5Dwrite(dset, H5T_NATIVE_INT64, mspace, fspace, dxpl, grid.cells), "write cells");
    }
    for (int k = 0; k < 3; ++k) {
        std::vector<double> c(static_cast<std::size_t>(grid.cells[k]));
        const double dx = (grid.hi[k] - grid.lo[k]) / static_cast<double>(grid.cells[k]);
        for (std::size_t i = 0; i < c.size(); ++i)
            c[i] = grid.lo[k] + (static_cast<double>(i) + 0.5) * dx;
        write_root_dataset(group, std::string(1, "xyz"[k]), c.data(), {c.size()}, root);
    }
}

void SnapshotWriter::write_fields(double time, std::int64_t step, std::int64_t samples,
                                  const std::vector<CellField>& fields, const Diagnostics& diagnostics,
                                  const ParticleSet* particles) {
    KINFLOW_REQUIRE(!_done, "snapshot writer already finished");
    if (_count == 0 && H5Lexists(_file, "fields", H5P_DEFAULT) <= 0)
        Handle(H5Gcreate2(_file, "fields", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /fields");
    {
        Handle group(H5Gcreate2(_file, ("fields/" + snapshot_name(_count)).c_str(), H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT),
                     H5Gclose, "create fields group");
        write_attr(group, "time", time);
        write_attr(group, "step", static_cast<std::int64_t>(step));
        write_attr(group, "samples", static_cast<std::int64_t>(samples));
        const std::vector<hsize_t> dims{static_cast<hsize_t>(_grid.cells[2]), static_cast<hsize_t>(_grid.cells[1]),
                                        static_cast<hsize_t>(_grid.cells[0])};
        for (const auto& f : fields) {
            auto d = dims;
            if (f.components > 1)
                d.push_back(static_cast<hsize_t>(f.components));
            KINFLOW_REQUIRE(f.values && f.values->size() == static_cast<std::size_t>(_grid.cells[0] * _grid.cells[1] *
                                                                                     _grid.cells[2] * f.components),
                            "field " << f.name << " does not match the grid");
            write_root_dataset(group, f.name, f.values->data(), d, _comm.is_root());
        }
    }
    if (particles) {
        const auto n_local = static_cast<std::int64_t>(particles->size());
        const std::int64_t offset = _comm.exscan(n_local);
        const std::int64_t n_global = _comm.sum(n_local);
        Handle group(H5Gcreate2(_file, ("snapshots/" + snapshot_name(_count)).c_str(), H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT),
                     H5Gclose, "create snapshot group");
        write_attr(group, "time", time);
        write_attr(group, "step", static_cast<std::int64_t>(step));
        write_particle_rows(group, *particles, offset, n_global);
    }
    record_diagnostics(time, diagnostics);
}

void SnapshotWriter::close_and_rename(const std::string& target) {
    Handle group(H5Gopen2(_file, "diagnostics", H5P_DEFAULT), H5Gclose, "open /diagnostics");
    for (std::size_t k = 0; k < _diag_names.size(); ++k) {
        const auto& v = _diag_values[k];
        const hsize_t n = v.size();
        Handle fspace(H5Screate_simple(1, &n, nullptr), H5Sclose, "H5Screate_simple");
        Handle mspace(H5Screate_simple(1, &n, nullptr), H5Sclose, "H5Screate_simple");
        Handle dset(H5Dcreate2(group, _diag_names[k].c_str(), H5T_NATIVE_DOUBLE, fspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                    H5Dclose, "create diagnostic " + _diag_names[k]);
        if (!_comm.is_root()) { // identical on all ranks: rank 0 writes
            H5Sselect_none(fspace);
            H5Sselect_none(mspace);
        }
        Handle dxpl = collective_dxpl();
        h5check_status(H5Dwrite(dset, H5T_NATIVE_DOUBLE, mspace, fspace, dxpl, v.data()), "write diagnostic " + _diag_names[k]);
    }
    group.reset();
    _file.reset();
    _comm.barrier();
    std::string err;
    if (_comm.is_root()) {
        std::error_code ec;
        try {
            write_xdmf(_tmp, target); // the ParaView sidecar, then the file under its final name
        } catch (const Error& e) {
            err = e.what();
        }
        fs::rename(_tmp, target, ec);
        if (ec) err = "cannot rename '" + _tmp + "' to '" + target + "': " + ec.message();
    }
    _comm.broadcast(err);
    _done = true;
    if (!err.empty()) throw Error(err);
}

void SnapshotWriter::suspend() {
    if (_done) return;
    H5Fflush(_file, H5F_SCOPE_GLOBAL);
    _file.reset();
    _comm.barrier();
    _done = true;
}

void SnapshotWriter::finish() {
    if (_done) return;
    close_and_rename(_path);
}

std::string SnapshotWriter::keep_partial() {
    const std::string target = _path + ".incomplete";
    if (!_done) close_and_rename(target);
    return target;
}

} // namespace kinflow::io
