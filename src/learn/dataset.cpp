#include "kinflow/learn/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/io/snapshot_reader.hpp"

namespace kinflow::learn {

namespace {

// Independent counter-based streams of the learning module.
constexpr std::uint32_t kStreamBuiltin = 1, kStreamMinibatch = 2, kStreamSource = 3;
// train.augment's rotations (kinflow-sample uses 4-5, meanflow's times 6).
constexpr std::uint32_t kStreamAugment = 7;

CounterRng stream(std::uint64_t seed, std::uint32_t k) {
    return CounterRng(seed, static_cast<RngPurpose>(static_cast<std::uint32_t>(RngPurpose::User) + k));
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

/// Sums of K quantities per row, over the rows [begin, end) of a part of `n_global` rows that
/// this rank holds, in a fixed order: per reduction chunk (comm::reduction_chunk), then the
/// chunks in global order. The same bits for any rank count (the blocks are whole chunks).
template <class F>
std::vector<double> ordered_part_sum(const comm::Communicator& comm, std::int64_t n_global, std::int64_t begin,
                                     std::int64_t end, int k, const F& f) {
    const std::int64_t chunk = comm::reduction_chunk(n_global);
    std::vector<double> local;
    std::vector<double> acc(static_cast<std::size_t>(k));
    for (std::int64_t b = begin; b < end; b += chunk) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (std::int64_t i = b; i < std::min(end, b + chunk); ++i) f(i - begin, acc.data());
        local.insert(local.end(), acc.begin(), acc.end());
    }
    const std::vector<double> all = comm.size() > 1 ? comm.allgatherv(local) : local;
    std::vector<double> out(static_cast<std::size_t>(k), 0.0);
    for (std::size_t c = 0; c < all.size() / static_cast<std::size_t>(k); ++c) {
        for (int q = 0; q < k; ++q) out[q] += all[c * k + q];
    }
    return out;
}

/// Global mean and standard deviation per component of rows held in parts (two passes).
void moments(const comm::Communicator& comm, const std::vector<Part>& parts, const std::vector<double>& rows, int dim,
             std::vector<double>& mean, std::vector<double>& sd) {
    mean.assign(static_cast<std::size_t>(dim), 0.0);
    sd.assign(static_cast<std::size_t>(dim), 0.0);
    std::int64_t n = 0;
    for (const auto& p : parts) {
        const double* x = rows.data() + p.local_offset * dim;
        const auto s = ordered_part_sum(comm, p.n_global, p.begin, p.end, dim, [&](std::int64_t i, double* acc) {
            for (int k = 0; k < dim; ++k) acc[k] += x[i * dim + k];
        });
        for (int k = 0; k < dim; ++k) mean[k] += s[k];
        n += p.n_global;
    }
    for (int k = 0; k < dim; ++k) mean[k] /= static_cast<double>(n);
    for (const auto& p : parts) {
        const double* x = rows.data() + p.local_offset * dim;
        const auto s = ordered_part_sum(comm, p.n_global, p.begin, p.end, dim, [&](std::int64_t i, double* acc) {
            for (int k = 0; k < dim; ++k) {
                const double d = x[i * dim + k] - mean[k];
                acc[k] += d * d;
            }
        });
        for (int k = 0; k < dim; ++k) sd[k] += s[k];
    }
    for (int k = 0; k < dim; ++k) {
        sd[k] = std::sqrt(sd[k] / static_cast<double>(n));
        // A constant component (e.g. every particle at one point) is only shifted.
        if (!(sd[k] > 1e-12 * (1.0 + std::fabs(mean[k])))) sd[k] = 1.0;
    }
}

std::vector<double> host_rows(const VectorView& v) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
    return std::vector<double>(h.data(), h.data() + h.size());
}

std::string where(const std::string& file, int snapshot) { return "'" + file + "' snapshot " + std::to_string(snapshot); }

} // namespace

double determinant(const double* a, int dim) {
    std::vector<double> m(a, a + static_cast<std::size_t>(dim) * dim);
    double det = 1.0;
    for (int c = 0; c < dim; ++c) {
        int piv = c;
        for (int r = c + 1; r < dim; ++r)
            if (std::fabs(m[r * dim + c]) > std::fabs(m[piv * dim + c])) piv = r;
        if (m[piv * dim + c] == 0.0) return 0.0;
        if (piv != c) {
            for (int k = 0; k < dim; ++k) std::swap(m[c * dim + k], m[piv * dim + k]);
            det = -det;
        }
        det *= m[c * dim + c];
        for (int r = c + 1; r < dim; ++r) {
            const double f = m[r * dim + c] / m[c * dim + c];
            for (int k = c; k < dim; ++k) m[r * dim + k] -= f * m[c * dim + k];
        }
    }
    return det;
}

void random_orthogonal(std::uint64_t seed, std::uint64_t step, std::uint64_t slot, int dim, bool proper, double* q) {
    const auto rng = stream(seed, kStreamAugment);
    const int n = dim * dim;
    std::vector<double> g(static_cast<std::size_t>(n));
    for (int b = 0; 4 * b < n; ++b) {
        double z[4];
        rng.normal4(step, slot, static_cast<std::uint32_t>(b), z);
        for (int k = 4 * b; k < std::min(n, 4 * b + 4); ++k) g[k] = z[k - 4 * b];
    }
    // Modified Gram-Schmidt on the columns of g, each projection done twice ("twice is enough":
    // orthonormal to rounding even for an ill-conditioned g): g = Q R with R's diagonal positive,
    // the sign-corrected QR that makes Q Haar-distributed.
    for (int c = 0; c < dim; ++c) {
        for (int pass = 0; pass < 2; ++pass) {
            for (int p = 0; p < c; ++p) {
                double dot = 0.0;
                for (int r = 0; r < dim; ++r) dot += q[r * dim + p] * g[r * dim + c];
                for (int r = 0; r < dim; ++r) g[r * dim + c] -= dot * q[r * dim + p];
            }
        }
        double norm = 0.0;
        for (int r = 0; r < dim; ++r) norm += g[r * dim + c] * g[r * dim + c];
        norm = std::sqrt(norm);
        if (!(norm > 1e-300)) norm = 1.0; // probability zero; keeps q finite
        for (int r = 0; r < dim; ++r) q[r * dim + c] = g[r * dim + c] / norm;
    }
    if (proper && determinant(q, dim) < 0.0) {
        for (int r = 0; r < dim; ++r) q[r * dim] = -q[r * dim];
    }
}

std::vector<double> builtin_gaussian_mean() { return {1.0, -0.5}; }
std::vector<double> builtin_gaussian_cov() { return {2.0, 0.6, 0.6, 0.5}; }

void generate_builtin(const std::string& name, std::uint64_t seed, std::int64_t begin, std::int64_t end,
                      std::vector<double>& out) {
    const auto rng = stream(seed, kStreamBuiltin);
    out.resize(static_cast<std::size_t>(2 * (end - begin)));
    for (std::int64_t g = begin; g < end; ++g) {
        double* x = out.data() + 2 * (g - begin);
        const auto id = static_cast<std::uint64_t>(g);
        if (name == "gaussian") {
            // x = m + L z with L the Cholesky factor of the covariance.
            const auto m = builtin_gaussian_mean();
            const auto c = builtin_gaussian_cov();
            double z[4];
            rng.normal4(0, id, 0, z);
            const double l11 = std::sqrt(c[0]), l21 = c[2] / l11, l22 = std::sqrt(c[3] - l21 * l21);
            x[0] = m[0] + l11 * z[0];
            x[1] = m[1] + l21 * z[0] + l22 * z[1];
        } else if (name == "eight_gaussians") {
            // Eight isotropic Gaussians (std 0.4) with centres on the circle of radius 4.
            double u[4], z[4];
            rng.uniform4(0, id, 0, u);
            rng.normal4(0, id, 1, z);
            const double k = std::floor(u[0] * 8.0);
            const double a = k * kPi / 4.0;
            x[0] = 4.0 * std::cos(a) + 0.4 * z[0];
            x[1] = 4.0 * std::sin(a) + 0.4 * z[1];
        } else if (name == "checkerboard") {
            // FFJORD's checkerboard (Grathwohl et al. 2019): 8 unit squares of [-2, 2]^2, scaled by 2.
            double u[4];
            rng.uniform4(0, id, 0, u);
            const double x1 = 4.0 * u[0] - 2.0;
            const double x2 = u[1] - 2.0 * std::floor(2.0 * u[2]) + std::fmod(std::floor(x1) + 4.0, 2.0);
            x[0] = 2.0 * x1;
            x[1] = 2.0 * x2;
        } else if (name == "ring_ellipse") {
            // A ring around an ellipse (issue 14's third 2D toy): with probability 1/2 a point of the
            // ring of radius 4 (radial std 0.2, angle uniform), else a point uniform in the filled
            // ellipse (x / 2.5)^2 + (y / 1)^2 <= 1 (radius sqrt(u): uniform area). The flow from
            // N(0, I) must split one mode into two nested, disconnected components.
            double u[4], z[4];
            rng.uniform4(0, id, 0, u);
            rng.normal4(0, id, 1, z);
            const double a = 2.0 * kPi * u[1];
            if (u[0] < 0.5) {
                const double r = 4.0 + 0.2 * z[0];
                x[0] = r * std::cos(a);
                x[1] = r * std::sin(a);
            } else {
                const double r = std::sqrt(u[2]);
                x[0] = 2.5 * r * std::cos(a);
                x[1] = r * std::sin(a);
            }
        } else {
            throw Error("unknown builtin data set '" + name + "'");
        }
    }
}

double deck_value(const std::string& ini, const std::string& key) {
    const auto dot = key.find('.');
    const std::string section = key.substr(0, dot), name = key.substr(dot + 1);
    std::istringstream in(ini);
    std::string line, current;
    while (std::getline(in, line)) {
        const std::string t = trim(line);
        if (t.empty() || t[0] == '#' || t[0] == ';') continue;
        if (t.front() == '[' && t.back() == ']') {
            current = trim(t.substr(1, t.size() - 2));
            continue;
        }
        const auto eq = t.find('=');
        if (eq == std::string::npos || current != section || trim(t.substr(0, eq)) != name) continue;
        std::string value = trim(t.substr(eq + 1));
        const auto hash = value.find('#');
        if (hash != std::string::npos) value = trim(value.substr(0, hash));
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !std::isfinite(v)) {
            throw Error("deck key " + key + " = '" + value + "' is not a finite number");
        }
        return v;
    }
    throw Error("the recorded deck has no key " + key);
}

Dataset::Dataset(const comm::Communicator& comm, const DataSpec& spec) : _spec(spec) {
    if (!_spec.builtin.empty()) load_builtin(comm);
    else load_files(comm);
    if (_spec.augment == Augment::Rotation && _dim < 2) {
        throw Error("train.augment = rotation: the data are 1D (the only rotation is the identity); use "
                    "rotation_reflection (x -> -x about the mean) or none");
    }
    if (_spec.augment != Augment::None && _dim > 8) {
        throw Error("train.augment: random rotations are implemented up to dim 8; the data have dim " + std::to_string(_dim));
    }
}

void Dataset::load_builtin(const comm::Communicator& comm) {
    _dim = 2;
    Part p;
    p.file = "";
    p.snapshot = 0;
    p.n_global = _spec.builtin_size;
    const auto dec = comm::BlockDecomposition::make(p.n_global, comm.size(), comm.rank());
    p.begin = dec.begin;
    p.end = dec.end;
    _parts.push_back(p);
    _n_global = p.n_global;
    std::vector<double> rows;
    generate_builtin(_spec.builtin, _spec.seed, p.begin, p.end, rows);
    compute_normalization(comm, rows, {});
}

void Dataset::load_files(const comm::Communicator& comm) {
    std::vector<double> target, source;
    const bool paired = _spec.source == SourceKind::Snapshot;
    std::string first_where;
    for (const auto& file : _spec.files) {
        io::SnapshotReader reader(comm, file);
        std::string deck_text;
        bool deck_read = false;
        int previous = -1; // chain: the previous listed snapshot (resolved)
        for (const int s : _spec.snapshots) {
            Part p;
            p.file = file;
            p.snapshot = reader.resolve(s);
            p.time = reader.time(p.snapshot);
            p.n_global = reader.n_global(p.snapshot);
            if (p.n_global < 1) throw Error(where(file, p.snapshot) + " has no particles");
            const auto dec = comm::BlockDecomposition::make(p.n_global, comm.size(), comm.rank());
            p.begin = dec.begin;
            p.end = dec.end;
            p.offset = _n_global;
            p.local_offset = static_cast<std::int64_t>(target.size()) / std::max(_dim, 1);
            const ParticleSet x = reader.read(p.snapshot, p.begin, p.end);
            if (_dim == 0) {
                _dim = x.dim;
                first_where = where(file, p.snapshot);
            } else if (x.dim != _dim) {
                throw Error("dimension mismatch: " + where(file, p.snapshot) + " has dim " + std::to_string(x.dim) + ", " +
                            first_where + " has dim " + std::to_string(_dim));
            }
            const auto rows = host_rows(x.position);
            target.insert(target.end(), rows.begin(), rows.end());

            if (paired) {
                const int si = _spec.chain && previous >= 0 ? previous : reader.resolve(_spec.source_snapshot);
                previous = p.snapshot;
                p.source_time = reader.time(si);
                if (_spec.chain && !(p.source_time < p.time)) {
                    throw Error("tfm: snapshots must be listed in increasing time after the source: " + where(file, si) +
                                " (t = " + std::to_string(p.source_time) + ") is not before " + where(file, p.snapshot) +
                                " (t = " + std::to_string(p.time) + ")");
                }
                const std::int64_t ns = reader.n_global(si);
                if (ns != p.n_global) {
                    throw Error("ids do not pair: " + where(file, si) + " (source) has " + std::to_string(ns) + " particles, " +
                                where(file, p.snapshot) + " (target) has " + std::to_string(p.n_global));
                }
                const ParticleSet y = reader.read(si, p.begin, p.end);
                if (y.dim != x.dim) {
                    throw Error("dimension mismatch between source and target: " + where(file, si) + " has dim " +
                                std::to_string(y.dim) + ", " + where(file, p.snapshot) + " has dim " + std::to_string(x.dim));
                }
                auto idx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x.id);
                auto idy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y.id);
                double first_bad = std::numeric_limits<double>::infinity();
                for (std::size_t i = 0; i < idx.extent(0); ++i) {
                    if (idx(i) != idy(i)) {
                        first_bad = static_cast<double>(p.begin + static_cast<std::int64_t>(i));
                        break;
                    }
                }
                first_bad = comm.min(first_bad);
                if (std::isfinite(first_bad)) {
                    throw Error("ids do not pair: " + where(file, si) + " (source) and " + where(file, p.snapshot) +
                                " (target) hold different particle ids (first difference at row " +
                                std::to_string(static_cast<std::int64_t>(first_bad)) + ")");
                }
                const auto srows = host_rows(y.position);
                source.insert(source.end(), srows.begin(), srows.end());
            }
            for (const auto& name : _spec.conditions) {
                if (name == "time") {
                    p.cond.push_back(p.time);
                    continue;
                }
                if (!deck_read) {
                    deck_text = reader.attr_string("deck");
                    deck_read = true;
                }
                try {
                    p.cond.push_back(deck_value(deck_text, name));
                } catch (const Error& e) {
                    throw Error("'" + file + "': condition " + name + ": " + e.what());
                }
            }
            _n_global += p.n_global;
            _parts.push_back(p);
        }
    }
    // Non-finite positions would poison the normalisation: reject them up front.
    bool bad = false;
    for (double v : target) bad = bad || !std::isfinite(v);
    for (double v : source) bad = bad || !std::isfinite(v);
    if (comm.any(bad)) throw Error("non-finite positions in the data (target or source snapshots)");
    compute_normalization(comm, target, source);
}

void Dataset::normalise(const std::vector<double>& rows, const std::vector<double>& mean, const std::vector<double>& std,
                        std::vector<float>& out) const {
    out.resize(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const int k = static_cast<int>(i % _dim);
        out[i] = static_cast<float>((rows[i] - mean[k]) / std[k]);
    }
}

void Dataset::compute_normalization(const comm::Communicator& comm, const std::vector<double>& target,
                                    const std::vector<double>& source) {
    moments(comm, _parts, target, _dim, _norm.mean, _norm.std);
    normalise(target, _norm.mean, _norm.std, _target);
    if (_spec.shared_normalization) {
        // A flow in physical time (tfm) moves points within one coordinate system, and a gated
        // model's zero output at the source time must be the physical identity: the sources take
        // the targets' normalisation.
        _norm.source_mean = _norm.mean;
        _norm.source_std = _norm.std;
        normalise(source, _norm.source_mean, _norm.source_std, _source);
    } else if (!source.empty() || _spec.source == SourceKind::Snapshot) {
        moments(comm, _parts, source, _dim, _norm.source_mean, _norm.source_std);
        normalise(source, _norm.source_mean, _norm.source_std, _source);
    }
    // Conditions: mean and standard deviation over the parts.
    const int nc = cond_dim();
    _norm.cond_mean.assign(static_cast<std::size_t>(nc), 0.0);
    _norm.cond_std.assign(static_cast<std::size_t>(nc), 0.0);
    const double np = static_cast<double>(_parts.size());
    for (int c = 0; c < nc; ++c) {
        for (const auto& p : _parts) _norm.cond_mean[c] += p.cond[c] / np;
        for (const auto& p : _parts) _norm.cond_std[c] += (p.cond[c] - _norm.cond_mean[c]) * (p.cond[c] - _norm.cond_mean[c]) / np;
        _norm.cond_std[c] = std::sqrt(_norm.cond_std[c]);
        if (!(_norm.cond_std[c] > 1e-12 * (1.0 + std::fabs(_norm.cond_mean[c])))) _norm.cond_std[c] = 1.0;
    }
    _part_cond.clear();
    for (const auto& p : _parts) {
        for (int c = 0; c < nc; ++c) _part_cond.push_back(static_cast<float>((p.cond[c] - _norm.cond_mean[c]) / _norm.cond_std[c]));
    }
}

void Dataset::rotate_row(std::uint64_t seed, std::int64_t step, std::int64_t slot, float* x1, float* x0) const {
    // x -> c + Q (x - c) in physical coordinates, c the targets' mean, for the target row and its
    // paired source row alike (one rotation per slot: the pair's geometry is kept).
    const int d = _dim;
    double q[64], y[8], r[8];
    random_orthogonal(seed, static_cast<std::uint64_t>(step), static_cast<std::uint64_t>(slot), d,
                      _spec.augment == Augment::Rotation, q);
    auto apply = [&](float* x, const std::vector<double>& mean, const std::vector<double>& sd) {
        for (int k = 0; k < d; ++k) y[k] = mean[k] + sd[k] * static_cast<double>(x[k]) - _norm.mean[k];
        for (int a = 0; a < d; ++a) {
            r[a] = 0.0;
            for (int b = 0; b < d; ++b) r[a] += q[a * d + b] * y[b];
        }
        for (int k = 0; k < d; ++k) x[k] = static_cast<float>((_norm.mean[k] + r[k] - mean[k]) / sd[k]);
    };
    apply(x1, _norm.mean, _norm.std);
    if (x0) apply(x0, _norm.source_mean, _norm.source_std);
}

void Dataset::set_pairs(std::int64_t n_global, std::int64_t begin, std::int64_t end, std::vector<float> x0,
                        std::vector<float> x1) {
    KINFLOW_REQUIRE(cond_dim() == 0, "generated pairs: unconditional data only");
    KINFLOW_REQUIRE(n_global > 0 && 0 <= begin && begin <= end && end <= n_global, "generated pairs: bad row block");
    const auto rows = static_cast<std::size_t>(end - begin) * static_cast<std::size_t>(_dim);
    KINFLOW_REQUIRE(x0.size() == rows && x1.size() == rows, "generated pairs: row counts differ");
    Part p = _parts.front();
    p.file.clear();
    p.n_global = n_global;
    p.offset = 0;
    p.begin = begin;
    p.end = end;
    p.local_offset = 0;
    _parts.assign(1, p);
    _n_global = n_global;
    _target = std::move(x1);
    _source = std::move(x0);
    _spec.source = SourceKind::Snapshot;
    _spec.parts_per_batch = 0;
    _part_cond.clear();
}

void Dataset::draw(std::uint64_t seed, std::int64_t step, std::int64_t global_batch, Batch& out) const {
    const auto pick = stream(seed, kStreamMinibatch);
    const auto noise = stream(seed, kStreamSource);
    const int d = _dim, nc = cond_dim();
    const auto nglob = static_cast<std::uint64_t>(_n_global);
    const auto st = static_cast<std::uint64_t>(step);
    out.rows = 0;
    out.x1.clear();
    out.x0.clear();
    out.u.clear();
    out.cond.clear();
    out.part.clear();
    out.slot.clear();
    constexpr double kSqrt3 = 1.7320508075688772;
    // parts_per_batch = k: slot j belongs to group j k / global_batch, whose part is drawn once per
    // (step, group) with the counter's second word; the row within the part with the first.
    const std::int64_t groups = std::min<std::int64_t>(_spec.parts_per_batch, global_batch);
    const auto nparts = static_cast<std::uint64_t>(_parts.size());
    for (std::int64_t j = 0; j < global_batch; ++j) {
        const auto r = pick.raw(st, static_cast<std::uint64_t>(j), 0);
        const std::uint64_t w = (static_cast<std::uint64_t>(r.v[0]) << 32) | r.v[1];
        std::int64_t g = 0;
        std::size_t p = 0;
        if (groups > 0) {
            const auto q = static_cast<std::uint64_t>(j * groups / global_batch);
            const auto rp = pick.raw(st, q, 1);
            p = static_cast<std::size_t>(((static_cast<std::uint64_t>(rp.v[0]) << 32) | rp.v[1]) % nparts);
            g = _parts[p].offset + static_cast<std::int64_t>(w % static_cast<std::uint64_t>(_parts[p].n_global));
        } else {
            g = static_cast<std::int64_t>(w % nglob);
            while (p + 1 < _parts.size() && g >= _parts[p + 1].offset) ++p;
        }
        const Part& part = _parts[p];
        const std::int64_t row = g - part.offset;
        if (row < part.begin || row >= part.end) continue; // another rank holds it
        const std::int64_t local = part.local_offset + row - part.begin;
        ++out.rows;
        out.slot.push_back(j);
        out.part.push_back(static_cast<int>(p));
        out.u.push_back(static_cast<float>(CounterRng::to_open_unit(r.v[2])));
        out.x1.insert(out.x1.end(), _target.begin() + local * d, _target.begin() + (local + 1) * d);
        for (int c = 0; c < nc; ++c) out.cond.push_back(_part_cond[p * nc + c]);
        if (_spec.source == SourceKind::Snapshot) {
            out.x0.insert(out.x0.end(), _source.begin() + local * d, _source.begin() + (local + 1) * d);
            if (_spec.augment != Augment::None) rotate_row(seed, step, j, out.x1.data() + (out.rows - 1) * d,
                                                           out.x0.data() + (out.rows - 1) * d);
        } else {
            if (_spec.augment != Augment::None) rotate_row(seed, step, j, out.x1.data() + (out.rows - 1) * d, nullptr);
            for (int b = 0; b * 4 < d; ++b) {
                double z[4];
                if (_spec.source == SourceKind::Gaussian) {
                    noise.normal4(st, static_cast<std::uint64_t>(j), static_cast<std::uint32_t>(b), z);
                } else {
                    noise.uniform4(st, static_cast<std::uint64_t>(j), static_cast<std::uint32_t>(b), z);
                    for (double& v : z) v = kSqrt3 * (2.0 * v - 1.0);
                }
                for (int k = 4 * b; k < std::min(d, 4 * b + 4); ++k) out.x0.push_back(static_cast<float>(z[k - 4 * b]));
            }
        }
    }
}

} // namespace kinflow::learn
