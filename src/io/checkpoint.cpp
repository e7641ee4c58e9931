#include "kinflow/io/checkpoint.hpp"

#include <filesystem>
#include <map>
#include <sstream>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/version.hpp"
#include "kinflow/io/hdf5.hpp"
#include "kinflow/io/snapshot_reader.hpp"

namespace kinflow::io {

namespace fs = std::filesystem;

namespace {
constexpr const char* kKind = "kinflow checkpoint";

/// A dataset of values identical on every rank, written by rank 0 (collective).
template <class T>
void write_global(const comm::Communicator& comm, hid_t group, const std::string& name, const std::vector<T>& v,
                  hid_t type, int cols = 0) {
    const auto rows = static_cast<std::int64_t>(cols > 0 ? v.size() / static_cast<std::size_t>(cols) : v.size());
    write_rows(group, name, v.data(), type, rows, 0, comm.is_root() ? rows : 0, cols);
}

template <class T>
std::vector<T> read_all(hid_t group, const std::string& name, hid_t type) {
    Handle d(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose, "open " + name);
    Handle s(H5Dget_space(d), H5Sclose, "H5Dget_space");
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(s, dims, nullptr);
    std::vector<T> out;
    read_rows(group, name, type, 0, static_cast<std::int64_t>(dims[0]), out);
    return out;
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + "\n";
    return s;
}

std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream is(s);
    for (std::string line; std::getline(is, line);) out.push_back(line);
    return out;
}

/// section.key → value of a resolved deck.
std::map<std::string, std::string> parse_resolved(const std::string& text) {
    std::map<std::string, std::string> out;
    std::string section;
    for (const auto& line : split_lines(text)) {
        if (line.empty()) continue;
        if (line.front() == '[' && line.back() == ']') {
            section = line.substr(1, line.size() - 2);
            continue;
        }
        const auto eq = line.find(" = ");
        if (eq == std::string::npos) continue;
        out[section + "." + line.substr(0, eq)] = line.substr(eq + 3);
    }
    return out;
}
} // namespace

std::vector<std::string> deck_differences(const std::string& checkpoint, const std::string& now) {
    const auto a = parse_resolved(checkpoint), b = parse_resolved(now);
    std::vector<std::string> out;
    for (const auto& [key, value] : b) {
        const auto it = a.find(key);
        if (it == a.end()) out.push_back(key + " = '" + value + "' (not in the checkpoint)");
        else if (it->second != value) out.push_back(key + " = '" + value + "' (checkpoint: '" + it->second + "')");
    }
    for (const auto& [key, value] : a) {
        if (!b.count(key)) out.push_back(key + " missing (checkpoint: '" + value + "')");
    }
    return out;
}

void write_checkpoint(const comm::Communicator& comm, const std::string& path, const CheckpointHeader& h,
                      const ParticleSet& p, const EngineState& state) {
    silence_hdf5_errors();
    const std::string tmp = path + ".tmp";
    const auto n_local = static_cast<std::int64_t>(p.size());
    const std::int64_t offset = comm.exscan(n_local);
    const std::int64_t n_global = comm.sum(n_local);
    auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.id);
    bool ordered = true;
    for (std::int64_t i = 0; i < n_local; ++i) ordered = ordered && id(i) == offset + i;
    const bool block_order = !comm.any(!ordered);
    {
        Handle fapl = mpio_fapl(comm.raw());
        const hid_t f = H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (f < 0) throw Error("checkpoint: cannot create '" + tmp + "' (is the directory writable?)");
        Handle file(f, H5Fclose, "H5Fcreate");
        write_attr(file, "kind", std::string(kKind));
        write_attr(file, "kinflow_version", std::string(kVersion));
        write_attr(file, "producer", h.producer);
        write_attr(file, "deck", h.deck);
        write_attr(file, "physics", h.physics);
        write_attr(file, "step", h.step);
        write_attr(file, "time", h.time);
        write_attr(file, "mpi_ranks", static_cast<std::int32_t>(comm.size()));
        write_attr(file, "block_order", static_cast<std::int32_t>(block_order ? 1 : 0));
        write_attr(file, "n_global", n_global);
        write_attr(file, "dim", static_cast<std::int32_t>(p.dim));
        write_attr(file, "vdim", static_cast<std::int32_t>(p.vdim));
        write_attr(file, "with_species", static_cast<std::int32_t>(p.with_species ? 1 : 0));
        write_attr(file, "snapshots", static_cast<std::int64_t>(h.output.count));
        write_attr(file, "diagnostic_names", join(h.output.names));

        Handle g(H5Gcreate2(file, "particles", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /particles");
        write_particle_rows(g, p, offset, n_global);
        write_rows(g, "rank_counts", &n_local, H5T_NATIVE_INT64, comm.size(), comm.rank(), 1, 0);

        // The writer's diagnostics so far: [names, snapshots].
        std::vector<double> diag;
        for (const auto& v : h.output.values) diag.insert(diag.end(), v.begin(), v.end());
        write_global(comm, file, "diagnostics", diag, H5T_NATIVE_DOUBLE, std::max(h.output.count, 1));

        Handle e(H5Gcreate2(file, "engine", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /engine");
        for (const auto& [name, v] : state.global) write_global(comm, e, name, v, H5T_NATIVE_DOUBLE);
        Handle r(H5Gcreate2(file, "engine_rank", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /engine_rank");
        for (const auto& [name, v] : state.per_rank) {
            write_rows(r, name, v.data(), H5T_NATIVE_INT64, comm.size(), comm.rank(), 1, static_cast<int>(v.size()));
        }
    }
    comm.barrier();
    std::string err;
    if (comm.is_root()) {
        std::error_code ec;
        fs::rename(tmp, path, ec);
        if (ec) err = "checkpoint: cannot rename '" + tmp + "' to '" + path + "': " + ec.message();
    }
    comm.broadcast(err);
    if (!err.empty()) throw Error(err);
}

CheckpointReader::CheckpointReader(const comm::Communicator& comm, const std::string& path)
    : _comm(comm), _path(path) {
    silence_hdf5_errors();
    if (!fs::is_regular_file(path)) throw Error("no checkpoint '" + path + "' to resume from");
    try {
        Handle fapl = mpio_fapl(_comm.raw());
        const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
        if (f < 0) throw Error("not an HDF5 file");
        Handle file(f, H5Fclose, "H5Fopen");
        if (!has_attr(file, "kind") || read_attr_string(file, "kind") != kKind) throw Error("not a kinflow checkpoint");
        _h.producer = read_attr_string(file, "producer");
        _h.deck = read_attr_string(file, "deck");
        _h.physics = read_attr_string(file, "physics");
        _h.step = read_attr_int(file, "step");
        _h.time = read_attr_double(file, "time");
        _h.ranks = static_cast<int>(read_attr_int(file, "mpi_ranks"));
        _h.block_order = read_attr_int(file, "block_order") != 0;
        _h.n_global = read_attr_int(file, "n_global");
        _h.output.count = static_cast<int>(read_attr_int(file, "snapshots"));
        _h.output.names = split_lines(read_attr_string(file, "diagnostic_names"));
        if (_h.step < 0 || _h.ranks < 1 || _h.n_global < 1 || _h.output.count < 1) throw Error("bad header values");
        const auto diag = read_all<double>(file, "diagnostics", H5T_NATIVE_DOUBLE);
        const auto count = static_cast<std::size_t>(_h.output.count);
        if (diag.size() != _h.output.names.size() * count) throw Error("diagnostics do not match their names");
        for (std::size_t k = 0; k < _h.output.names.size(); ++k)
            _h.output.values.emplace_back(diag.begin() + static_cast<std::ptrdiff_t>(k * count),
                                          diag.begin() + static_cast<std::ptrdiff_t>((k + 1) * count));
        const auto counts = read_all<std::int64_t>(file, "particles/rank_counts", H5T_NATIVE_INT64);
        std::int64_t total = 0;
        for (auto c : counts) total += c < 0 ? _h.n_global + 1 : c;
        if (static_cast<int>(counts.size()) != _h.ranks || total != _h.n_global) throw Error("bad particle counts");
    } catch (const Error& e) {
        throw Error("checkpoint '" + path + "' is damaged or not a checkpoint (" + e.what() + ")");
    }
}

ParticleSet CheckpointReader::particles(bool any_layout) const {
    Handle fapl = mpio_fapl(_comm.raw());
    Handle file(H5Fopen(_path.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose, "open checkpoint");
    std::int64_t begin = 0, end = 0;
    if (_comm.size() == _h.ranks) {
        const auto counts = read_all<std::int64_t>(file, "particles/rank_counts", H5T_NATIVE_INT64);
        for (int r = 0; r < _comm.rank(); ++r) begin += counts[static_cast<std::size_t>(r)];
        end = begin + counts[static_cast<std::size_t>(_comm.rank())];
    } else {
        if (!_h.block_order && !any_layout)
            throw Error("checkpoint '" + _path + "' was written by " + std::to_string(_h.ranks) +
                        " ranks whose particle layout depends on the rank count: resume with " +
                        std::to_string(_h.ranks) + " ranks");
        const auto dec = comm::BlockDecomposition::make(_h.n_global, _comm.size(), _comm.rank());
        begin = dec.begin;
        end = dec.end;
    }
    Handle g(H5Gopen2(file, "particles", H5P_DEFAULT), H5Gclose, "open /particles");
    return read_particle_rows(g, begin, end, _h.n_global, "checkpoint '" + _path + "' /particles: ", 0);
}

EngineState CheckpointReader::engine_state() const {
    Handle fapl = mpio_fapl(_comm.raw());
    Handle file(H5Fopen(_path.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose, "open checkpoint");
    EngineState s;
    for (const auto& name : list_group(file, "engine"))
        s.set(name, read_all<double>(file, "engine/" + name, H5T_NATIVE_DOUBLE));
    if (_comm.size() == _h.ranks) {
        Handle g(H5Gopen2(file, "engine_rank", H5P_DEFAULT), H5Gclose, "open /engine_rank");
        for (const auto& name : list_group(file, "engine_rank")) {
            std::vector<std::int64_t> v;
            read_rows(g, name, H5T_NATIVE_INT64, _comm.rank(), _comm.rank() + 1, v);
            s.set_rank(name, std::move(v));
        }
    }
    return s;
}

} // namespace kinflow::io
