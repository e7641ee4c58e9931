#include "kinflow/engines/langevin/langevin_engine.hpp"

#include <cmath>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/reduce.hpp"
#include "kinflow/core/compat.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/rng.hpp"

namespace kinflow::langevin {

LangevinEngine::LangevinEngine(const comm::Communicator& comm, const Params& params, std::uint64_t seed)
    : _comm(comm), _params(params), _seed(seed),
      _dec(comm::BlockDecomposition::make(params.particles, comm.size(), comm.rank())),
      _stepper(detail::make_stepper(params, seed)) {}

LangevinEngine::~LangevinEngine() = default;

void LangevinEngine::resume(ParticleSet& p, const EngineState&) {
    const int vdim = _params.dynamics == Dynamics::Underdamped ? 3 : 0;
    KINFLOW_REQUIRE(p.dim == _params.dim && p.vdim == vdim, "checkpoint particles do not match langevin.dim / dynamics");
    KINFLOW_REQUIRE(static_cast<std::int64_t>(p.size()) == _dec.n_local(), "checkpoint rows do not match the decomposition");
    p.n_global = _dec.n_global;
    _mean_valid = false;
}

void LangevinEngine::init(ParticleSet& p) {
    const int dim = _params.dim;
    const int vdim = _params.dynamics == Dynamics::Underdamped ? 3 : 0;
    const double temperature = _params.temperature;
    if (_params.init == Init::File) {
        KINFLOW_REQUIRE(p.dim == dim, "langevin.init_file has dim " << p.dim << " but langevin.dim = " << dim);
        KINFLOW_REQUIRE(static_cast<std::int64_t>(p.size()) == _dec.n_local(), "init file rows do not match the decomposition");
        if (vdim > 0 && p.vdim == 0) { // positions only: Maxwellian velocities below
            p.vdim = vdim;
            p.velocity = VectorView("kinflow::langevin::velocity", p.size(), 3);
            const CounterRng rng(_seed, RngPurpose::InitVelocity);
            auto vel = p.velocity;
            auto id = p.id;
            const double sv = std::sqrt(temperature);
            Kokkos::parallel_for(
                "kinflow::langevin::init_velocity", Kokkos::RangePolicy<ExecSpace>(0, p.size()), KOKKOS_LAMBDA(const std::size_t i) {
                    double z[4];
                    rng.normal4(0, static_cast<std::uint64_t>(id(i)), 0, z);
                    for (int k = 0; k < dim; ++k) vel(i, k) = sv * z[k];
                });
        } else if (vdim == 0) {
            p.vdim = 0;
            p.velocity = VectorView();
        }
        KINFLOW_REQUIRE(vdim == 0 || p.vdim == 3, "langevin.init_file velocities must have 3 components");
    } else {
        p.allocate(static_cast<std::size_t>(_dec.n_local()), dim, vdim, false, "kinflow::langevin");
        const bool gaussian = _params.init == Init::Gaussian;
        // plain arrays for the kernel (std::array's operator[] is a host function under nvcc)
        const double m[3] = {_params.init_mean[0], _params.init_mean[1], _params.init_mean[2]};
        const double s[3] = {_params.init_std[0], _params.init_std[1], _params.init_std[2]};
        const double half = std::sqrt(3.0); // uniform on mean ± sqrt(3) std has that std
        const CounterRng rng_x(_seed, RngPurpose::InitPosition), rng_v(_seed, RngPurpose::InitVelocity);
        const double sv = std::sqrt(temperature);
        auto pos = p.position;
        auto vel = p.velocity;
        auto id = p.id;
        const std::int64_t first = _dec.begin;
        Kokkos::parallel_for(
            "kinflow::langevin::init", Kokkos::RangePolicy<ExecSpace>(0, p.size()), KOKKOS_LAMBDA(const std::size_t i) {
                const std::int64_t gid = first + static_cast<std::int64_t>(i);
                id(i) = gid;
                double r[4];
                if (gaussian) rng_x.normal4(0, static_cast<std::uint64_t>(gid), 0, r);
                else rng_x.uniform4(0, static_cast<std::uint64_t>(gid), 0, r);
                for (int k = 0; k < dim; ++k) pos(i, k) = gaussian ? m[k] + s[k] * r[k] : m[k] + s[k] * half * (2.0 * r[k] - 1.0);
                if (vdim > 0) {
                    rng_v.normal4(0, static_cast<std::uint64_t>(gid), 0, r);
                    for (int k = 0; k < dim; ++k) vel(i, k) = sv * r[k];
                }
            });
    }
    p.n_global = _dec.n_global;
    _mean_valid = false;
}

std::array<double, 3> LangevinEngine::mean(const ParticleSet& p) const {
    auto pos = p.position;
    const int dim = p.dim;
    const auto s = comm::ordered_sum<3>(_comm, _dec, KOKKOS_LAMBDA(const std::size_t i, double* acc) {
        for (int k = 0; k < dim; ++k) acc[k] += pos(i, k);
    });
    const double n = static_cast<double>(_dec.n_global);
    return {s[0] / n, s[1] / n, s[2] / n};
}

void LangevinEngine::step(ParticleSet& p, std::int64_t step, double dt) {
    // Mean-field interaction needs the global mean of the current positions: compute (or reuse
    // the one the previous BAOAB step left) → step → keep the new mean if the stepper made it.
    if (_params.kappa != 0.0 && !_mean_valid) _mean = mean(p);
    detail::Vec3 next{};
    _mean_valid = _stepper->step(p, step, dt, _mean, [this](const ParticleSet& q) { return mean(q); }, next);
    if (_mean_valid) _mean = next;
}

Diagnostics LangevinEngine::diagnostics(const ParticleSet& p) const {
    const int dim = p.dim;
    const int vdim = p.vdim;
    auto pos = p.position;
    auto vel = p.velocity;
    const double n = static_cast<double>(_dec.n_global);
    // Two passes (mean, then centred squares) for an accurate variance.
    const auto s1 = comm::ordered_sum<6>(_comm, _dec, KOKKOS_LAMBDA(const std::size_t i, double* acc) {
        for (int k = 0; k < dim; ++k) acc[k] += pos(i, k);
        for (int k = 0; k < vdim; ++k) acc[3 + k] += vel(i, k);
    });
    const double m[6] = {s1[0] / n, s1[1] / n, s1[2] / n, s1[3] / n, s1[4] / n, s1[5] / n};
    const auto s2 = comm::ordered_sum<7>(_comm, _dec, KOKKOS_LAMBDA(const std::size_t i, double* acc) {
        for (int k = 0; k < dim; ++k) {
            const double d = pos(i, k) - m[k];
            acc[k] += d * d;
        }
        for (int k = 0; k < vdim; ++k) {
            const double d = vel(i, k) - m[3 + k];
            acc[3 + k] += d * d;
            acc[6] += 0.5 * vel(i, k) * vel(i, k);
        }
    });
    Diagnostics out;
    for (int k = 0; k < dim; ++k) out.emplace_back("mean_" + std::to_string(k), m[k]);
    for (int k = 0; k < dim; ++k) out.emplace_back("variance_" + std::to_string(k), s2[static_cast<std::size_t>(k)] / n);
    if (vdim > 0) {
        for (int k = 0; k < dim; ++k) out.emplace_back("velocity_variance_" + std::to_string(k), s2[static_cast<std::size_t>(3 + k)] / n);
        out.emplace_back("kinetic_energy", s2[6] / n);
    }
    for (const auto& d : out) {
        if (!std::isfinite(d.second)) throw Error("langevin: diagnostic " + d.first + " is not finite (unstable time step?)");
    }
    return out;
}

} // namespace kinflow::langevin
