#include "kinflow/engines/ks/ks_engine.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/engines/ks/detail/neighbours.hpp"

namespace kinflow::ks {

namespace {
/// Largest entry of v[0..n), v >= 0 (0 when n = 0).
double local_max(const ScalarView& v, std::size_t n) {
    double m = 0.0;
    Kokkos::parallel_reduce(
        "kinflow::ks::local_max", Kokkos::RangePolicy<ExecSpace>(0, n),
        KOKKOS_LAMBDA(const std::size_t i, double& acc) { acc = v(i) > acc ? v(i) : acc; }, Kokkos::Max<double>(m));
    return std::max(m, 0.0); // an empty range reduces to the lowest double
}

/// Smallest entry of v[0..n) (+infinity when n = 0).
double local_min(const ScalarView& v, std::size_t n) {
    double m = std::numeric_limits<double>::infinity();
    Kokkos::parallel_reduce(
        "kinflow::ks::local_min", Kokkos::RangePolicy<ExecSpace>(0, n),
        KOKKOS_LAMBDA(const std::size_t i, double& acc) { acc = v(i) < acc ? v(i) : acc; }, Kokkos::Min<double>(m));
    // the reduction's identity is the largest finite double, not infinity
    return m >= std::numeric_limits<double>::max() ? std::numeric_limits<double>::infinity() : m;
}
} // namespace

KsEngine::KsEngine(const comm::Communicator& comm, const Params& params, std::uint64_t seed)
    : _comm(comm), _params(params), _seed(seed),
      _dec(comm::BlockDecomposition::make(params.particles, comm.size(), comm.rank())),
      _stepper(detail::make_stepper(params, seed, _dec.begin)) {
    if (params.model == Model::ParabolicParabolic) {
        _field = detail::make_field_solver(params);
    } else if (params.solver == Solver::Mesh) {
        _mesh = detail::make_mesh_solver(comm, params.dim, params.mesh_order, params.mesh_cells, params.delta,
                                         params.p3m_cutoff, params.mesh_fft);
    }
}

KsEngine::~KsEngine() = default;

void KsEngine::allocate(std::size_t n_local) {
    const auto dim = static_cast<std::size_t>(_params.dim);
    const auto lanes = static_cast<std::size_t>(detail::lanes());
    const std::size_t n_pad = (n_local + lanes - 1) / lanes * lanes;
    std::int64_t n_source = _dec.n_global;
    if (_params.exchange == Exchange::Ring) { // the largest block of any rank
        n_source = 0;
        for (int r = 0; r < _comm.size(); ++r) {
            n_source = std::max(n_source, comm::BlockDecomposition::make(_dec.n_global, _comm.size(), r).n_local());
        }
    }
    _ws.target = detail::SoaView("kinflow::ks::target", dim, n_pad);
    _ws.source = detail::SoaView("kinflow::ks::source", dim, static_cast<std::size_t>(n_source));
    _ws.sums = detail::SoaView("kinflow::ks::sums", dim, n_pad);
    _ws.virial = ScalarView("kinflow::ks::virial", n_pad);
    _ws.count = ScalarView("kinflow::ks::count", n_pad);
    _ws.nearest2 = ScalarView("kinflow::ks::nearest2", n_pad);
    _ws.drift = detail::SoaView("kinflow::ks::drift", dim, n_pad);
}

void KsEngine::init(ParticleSet& p) {
    const int dim = _params.dim;
    if (_params.init == Init::File) {
        KINFLOW_REQUIRE(p.dim == dim, "ks.init_file has dim " << p.dim << " but ks.dim = " << dim);
        KINFLOW_REQUIRE(static_cast<std::int64_t>(p.size()) == _dec.n_local(),
                        "init file rows do not match the decomposition");
        p.vdim = 0; // blob particles have positions only
        p.velocity = VectorView();
    } else {
        p.allocate(static_cast<std::size_t>(_dec.n_local()), dim, 0, false, "kinflow::ks");
        const Init init = _params.init;
        const double s = _params.init_std;
        const double radius = s * std::sqrt(dim + 2.0); // a uniform ball of radius R has per-axis variance R^2/(d+2)
        const double half_sep = 0.5 * _params.init_separation;
        const CounterRng rng(_seed, RngPurpose::InitPosition);
        auto pos = p.position;
        auto id = p.id;
        const std::int64_t first = _dec.begin;
        Kokkos::parallel_for(
            "kinflow::ks::init", Kokkos::RangePolicy<ExecSpace>(0, p.size()), KOKKOS_LAMBDA(const std::size_t i) {
                const std::int64_t gid = first + static_cast<std::int64_t>(i);
                id(i) = gid;
                double z[4];
                rng.normal4(0, static_cast<std::uint64_t>(gid), 0, z);
                if (init == Init::UniformBall) {
                    // uniform direction (normalised Gaussian) and radius R u^{1/d}
                    double u[4];
                    rng.uniform4(0, static_cast<std::uint64_t>(gid), 1, u);
                    double norm2 = 0.0;
                    for (int k = 0; k < dim; ++k)
                        norm2 += z[k] * z[k];
                    const double r = radius * math::pow(u[0], 1.0 / dim) / math::sqrt(norm2);
                    for (int k = 0; k < dim; ++k)
                        pos(i, k) = r * z[k];
                } else {
                    for (int k = 0; k < dim; ++k)
                        pos(i, k) = s * z[k];
                    if (init == Init::TwoBumps)
                        pos(i, 0) += (gid % 2 == 0) ? -half_sep : half_sep;
                }
            });
    }
    p.n_global = _dec.n_global;
    allocate(p.size());
    if (_field) { // the periodic box: wrap, then c before the first step (field_init)
        _stepper->wrap(p, _params.box);
        _stepper->load_targets(p, _ws, false);
        _field->initialize(_comm, _dec, _ws.target);
    }
}

void KsEngine::resume(ParticleSet& p, const EngineState& state) {
    KINFLOW_REQUIRE(p.dim == _params.dim && p.vdim == 0, "checkpoint particles do not match ks.dim");
    KINFLOW_REQUIRE(static_cast<std::int64_t>(p.size()) == _dec.n_local(), "checkpoint rows do not match the decomposition");
    p.n_global = _dec.n_global;
    allocate(p.size());
    const auto& last = state.get("last_dt");
    KINFLOW_REQUIRE(last.size() == 1, "checkpoint: bad last_dt");
    _last_dt = last[0];
    if (_field) {
        const auto& v = state.get("field_modes");
        KINFLOW_REQUIRE(v.size() == 2 * _field->committed().size(), "checkpoint: field_modes has the wrong size");
        std::vector<std::complex<double>> modes(v.size() / 2);
        for (std::size_t j = 0; j < modes.size(); ++j) modes[j] = {v[2 * j], v[2 * j + 1]};
        _field->set_committed(modes);
    }
}

EngineState KsEngine::state() const {
    EngineState s;
    s.set("last_dt", {_last_dt});
    if (_field) {
        std::vector<double> v;
        for (const auto& z : _field->committed()) {
            v.push_back(z.real());
            v.push_back(z.imag());
        }
        s.set("field_modes", std::move(v));
    }
    return s;
}

std::vector<double> KsEngine::local_positions(const ParticleSet& p) const {
    const int dim = _params.dim;
    const std::size_t n = p.size();
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.position);
    std::vector<double> local(static_cast<std::size_t>(dim) * n);
    for (std::size_t i = 0; i < n; ++i) {
        for (int k = 0; k < dim; ++k)
            local[static_cast<std::size_t>(k) * n + i] = h(i, static_cast<std::size_t>(k));
    }
    return local;
}

std::vector<double> KsEngine::gather_positions(const ParticleSet& p) const {
    const int dim = _params.dim;
    std::vector<double> local = local_positions(p);
    if (_comm.size() == 1)
        return local;
    const std::vector<double> blocks = _comm.allgatherv(local); // rank blocks, each [dim, nb]
    const auto ng = static_cast<std::size_t>(_dec.n_global);
    std::vector<double> all(static_cast<std::size_t>(dim) * ng);
    std::size_t offset = 0;
    for (int r = 0; r < _comm.size(); ++r) {
        const auto d = comm::BlockDecomposition::make(_dec.n_global, _comm.size(), r);
        const auto nb = static_cast<std::size_t>(d.n_local());
        for (int k = 0; k < dim; ++k) {
            std::copy_n(blocks.begin() + static_cast<std::ptrdiff_t>(offset + static_cast<std::size_t>(k) * nb), nb,
                        all.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(k) * ng +
                                                                  static_cast<std::size_t>(d.begin)));
        }
        offset += static_cast<std::size_t>(dim) * nb;
    }
    return all;
}

std::vector<std::complex<double>> KsEngine::field_modes() const {
    return _field ? _field->committed() : std::vector<std::complex<double>>();
}

void KsEngine::set_field_modes(const std::vector<std::complex<double>>& modes) {
    KINFLOW_REQUIRE(_field, "ks: set_field_modes needs model = parabolic_parabolic");
    _field->set_committed(modes);
}

std::vector<std::complex<double>> KsEngine::field_rho_hat() const {
    return _field ? _field->rho_hat() : std::vector<std::complex<double>>();
}

double KsEngine::evaluate(const ParticleSet& p, bool extras, double dt) {
    _stepper->load_targets(p, _ws, extras);
    if (_mesh || _field) {
        const auto n_local = static_cast<std::int64_t>(p.size());
        double coef = _stepper->pair_coef();
        const bool mesh = _mesh && _params.chi != 0.0 && _dec.n_global > 1;
        std::vector<double> all;
        if (extras || (mesh && _mesh->needs_all_positions()))
            all = gather_positions(p);
        if (_field) {
            _field->evaluate(_comm, _dec, _ws.target, dt, _ws.sums); // sums = grad c
            coef = _params.chi;
        } else if (mesh) {
            _mesh->evaluate(_comm, _ws.target, n_local, _dec.begin, &all, _ws.sums);
        }
        if (extras) {
            detail::neighbour_counts(_params.dim, all, _dec.n_global, _ws.target, n_local, _dec.begin, _params.delta,
                                     _ws.count, _ws.nearest2);
        }
        const double max_drift = _comm.max(_stepper->finish_drift(p, _ws, coef));
        if (!std::isfinite(max_drift))
            throw Error("ks: the drift is not finite (positions overflowed?)");
        return max_drift;
    }
    const bool interact = (_params.chi != 0.0 && _dec.n_global > 1) || extras;
    if (interact) {
        const int dim = _params.dim;
        auto source_h = Kokkos::create_mirror_view(_ws.source);
        // Copy a packed block of nb particles into source columns [col, col + nb).
        auto unpack = [&](const double* block, std::size_t nb, std::size_t col) {
            for (int k = 0; k < dim; ++k) {
                for (std::size_t i = 0; i < nb; ++i)
                    source_h(k, col + i) = block[static_cast<std::size_t>(k) * nb + i];
            }
        };
        if (_params.exchange == Exchange::Allgather || _comm.size() == 1) {
            // Every position, in global-id order, then one pass over all sources.
            const std::vector<double> all = gather_positions(p);
            unpack(all.data(), static_cast<std::size_t>(_dec.n_global), 0);
            Kokkos::deep_copy(_ws.source, source_h);
            _stepper->accumulate(_ws, _dec.n_global, 0, extras);
        } else {
            // One block at a time, in rank (= global-id) order: each particle's sum continues the
            // same chain as with allgather, with O(N/P) positions held per rank.
            const std::vector<double> local = local_positions(p);
            for (int r = 0; r < _comm.size(); ++r) {
                std::vector<double> block = _comm.rank() == r ? local : std::vector<double>();
                _comm.broadcast(block, r);
                const auto d = comm::BlockDecomposition::make(_dec.n_global, _comm.size(), r);
                const auto nb = static_cast<std::size_t>(d.n_local());
                KINFLOW_REQUIRE(block.size() == static_cast<std::size_t>(dim) * nb,
                                "ks: ring block of rank " << r << " has the wrong size");
                unpack(block.data(), nb, 0);
                Kokkos::deep_copy(_ws.source, source_h);
                _stepper->accumulate(_ws, d.n_local(), d.begin, extras);
            }
        }
    }
    const double max_drift = _comm.max(_stepper->finish_drift(p, _ws, _stepper->pair_coef()));
    if (!std::isfinite(max_drift))
        throw Error("ks: the drift is not finite (positions overflowed?)");
    return max_drift;
}

double KsEngine::step_size(double max_drift, double dt) const {
    if (!_params.adaptive_dt || !(max_drift > 0.0))
        return dt;
    return std::min(dt, 0.25 * _params.delta / max_drift); // the kernel-bound criterion with the actual drift
}

StepResult KsEngine::step(ParticleSet& p, std::int64_t step, double dt) {
    const bool check = _params.blowup_fraction > 0.0 && step % _params.blowup_check_every == 0;
    const double max_drift = evaluate(p, check, dt);
    StepResult r;
    if (check) {
        const double cmax = _comm.max(local_max(_ws.count, p.size()));
        r.core_fraction = cmax / static_cast<double>(_dec.n_global);
        if (r.core_fraction >= _params.blowup_fraction && cmax >= 2.0) {
            r.advanced = false;
            return r;
        }
    }
    r.dt = step_size(max_drift, dt);
    _stepper->advance(p, _ws, step, r.dt);
    _last_dt = r.dt;
    if (_field) {
        _field->commit();
        _stepper->wrap(p, _params.box);
    }
    return r;
}

VectorView KsEngine::drift(const ParticleSet& p, bool extras) {
    evaluate(p, extras, 0.0);
    VectorView out("kinflow::ks::drift_out", p.size(), static_cast<std::size_t>(_params.dim));
    auto drift = _ws.drift;
    const int dim = _params.dim;
    Kokkos::parallel_for(
        "kinflow::ks::copy_drift", Kokkos::RangePolicy<ExecSpace>(0, p.size()), KOKKOS_LAMBDA(const std::size_t i) {
            for (int k = 0; k < dim; ++k)
                out(i, k) = drift(k, i);
        });
    return out;
}

Diagnostics KsEngine::diagnostics(const ParticleSet& p, double dt) {
    const double max_drift = evaluate(p, true, dt);
    const auto s = _stepper->sums(_comm, _dec, p, _ws);
    const double cmax = _comm.max(local_max(_ws.count, p.size()));
    const double nmin = _comm.min(local_min(_ws.nearest2, p.size()));
    const int d = _params.dim;
    const double n = static_cast<double>(_dec.n_global);
    const double m = _params.mass / n;
    // Discrete virial identity (VERIFICATION.md), with the flow's share 2 m sum X.v added:
    // E[m2' - m2 | X] = h [2 d mu M - 2 chi m^2 c_d sum_{i<j} r^2 g(r) + 2 m sum X.v] + h^2 m sum |a|^2.
    const double c_d = d == 2 ? 1.0 / (2.0 * kPi) : 1.0 / (4.0 * kPi);
    const double pair_sum = 0.5 * s[7];
    // The direct solver evaluates the pair sum itself; for the mesh and the field the drift's own
    // 2 m sum X.a is the same quantity (sum_i X_i.S_i = sum_{i<j} r^2 g by antisymmetry, for the direct sum).
    const double rate =
        _params.model == Model::ParabolicElliptic && _params.solver == Solver::Direct
            ? 2.0 * d * _params.mu * _params.mass - 2.0 * _params.chi * m * m * c_d * pair_sum + 2.0 * m * s[6]
            : 2.0 * d * _params.mu * _params.mass + 2.0 * m * s[8];
    const double h = step_size(max_drift, dt);
    const double ball = d == 2 ? kPi * _params.delta * _params.delta : 4.0 / 3.0 * kPi * std::pow(_params.delta, 3);
    Diagnostics out;
    out.emplace_back("mass", m * s[0]);
    for (int k = 0; k < d; ++k)
        out.emplace_back("com_" + std::to_string(k), s[static_cast<std::size_t>(1 + k)] / n);
    out.emplace_back("second_moment", m * s[4]);
    out.emplace_back("virial_rate", rate);
    out.emplace_back("virial_increment", h * rate + h * h * m * s[5]);
    out.emplace_back("max_drift", max_drift);
    out.emplace_back("dt_next", h);
    out.emplace_back("core_fraction", cmax / n);
    out.emplace_back("max_density", m * cmax / ball);
    out.emplace_back("min_pair_distance", std::sqrt(nmin)); // +inf for a single particle
    if (_field) { // c_mean = c_hat_0 (mean of c over the box), c_l2 = ||c||_L2 (Parseval)
        const auto& c = _field->tentative();
        double l2 = 0.0;
        for (const auto& z : c)
            l2 += std::norm(z);
        out.emplace_back("c_mean", c[c.size() / 2].real());
        out.emplace_back("c_l2", std::sqrt(l2 * std::pow(_params.box, d)));
    }
    for (const auto& e : out) {
        if (!std::isfinite(e.second) && e.first != "min_pair_distance") {
            throw Error("ks: diagnostic " + e.first + " is not finite");
        }
    }
    return out;
}

} // namespace kinflow::ks
