// Time steppers of the Langevin engine, one template instantiation per (dimension, potential,
// dynamics); make_stepper() is the single factory that picks one (CabanaMD's mdfactory pattern).
#include <cmath>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/engines/langevin/langevin_engine.hpp"

namespace kinflow::langevin::detail {

namespace {

/// Separable potentials: dV/dx_k depends on x_k only.
struct NoPotential {
    KOKKOS_INLINE_FUNCTION double grad(int, double) const { return 0.0; }
};
/// V = theta |x - c|^2 / 2.
struct HarmonicPotential {
    double theta;
    double c[3];
    KOKKOS_INLINE_FUNCTION double grad(int k, double x) const { return theta * (x - c[k]); }
};
/// V = s (x^2 - 1)^2 per component: dV/dx = 4 s x (x^2 - 1).
struct DoubleWellPotential {
    double s;
    KOKKOS_INLINE_FUNCTION double grad(int, double x) const { return 4.0 * s * x * (x * x - 1.0); }
};

struct MeanField {
    double kappa;
    double m[3];
};

/// Particles per kernel iteration: on CPUs a block of kLanes particles whose inner loops over
/// the lanes the compiler vectorizes (Philox + Box–Muller, CounterRng::normal4_lanes); one per
/// GPU thread.
constexpr int kLanes = std::is_same<ExecSpace::memory_space, Kokkos::HostSpace>::value ? 8 : 1;

/// Box–Muller pairs a particle needs: z[0], z[1] for Dim <= 2, z[0..2] of normal4 for Dim = 3.
template <int Dim>
constexpr int kPairs = Dim <= 2 ? 1 : 2;

KOKKOS_INLINE_FUNCTION std::size_t n_blocks(std::size_t n) { return (n + kLanes - 1) / kLanes; }

/// Block b of the np particles. Lanes past the end repeat the last particle: they are computed
/// but never stored, so every particle goes through the same arithmetic whatever its place in a
/// block, and results do not depend on how particles are split over ranks or threads.
struct LaneBlock {
    std::size_t first;
    int count;               // particles of the block that exist
    std::size_t idx[kLanes]; // the particle of each lane
    KOKKOS_INLINE_FUNCTION LaneBlock(std::size_t b, std::size_t np)
        : first(b * kLanes), count(np - b * kLanes < static_cast<std::size_t>(kLanes) ? static_cast<int>(np - b * kLanes) : kLanes) {
        for (int j = 0; j < kLanes; ++j) idx[j] = first + static_cast<std::size_t>(j < count ? j : count - 1);
    }
};

/// Euler–Maruyama for dX = -grad V dt - k (X - mean) dt + sqrt(2 D) dW (Kloeden & Platen, eq. 9.1.1).
template <int Dim, class Pot>
class Overdamped final : public StepperBase {
  public:
    Overdamped(Pot pot, double kappa, double temperature, std::uint64_t seed)
        : _pot(pot), _kappa(kappa), _temperature(temperature), _rng(seed, RngPurpose::Noise) {}

    bool step(ParticleSet& p, std::int64_t step, double dt, const Vec3& mean, const MeanFn&, Vec3&) override {
        const Pot pot = _pot;
        const CounterRng rng = _rng;
        const MeanField mf{_kappa, {mean[0], mean[1], mean[2]}};
        const double sigma = std::sqrt(2.0 * _temperature * dt);
        const auto n = static_cast<std::uint64_t>(step);
        auto pos = p.position;
        auto id = p.id;
        const std::size_t np = p.size();
        Kokkos::parallel_for(
            "kinflow::langevin::euler_maruyama", Kokkos::RangePolicy<ExecSpace>(0, n_blocks(np)), KOKKOS_LAMBDA(const std::size_t b) {
                const LaneBlock blk(b, np);
                std::uint64_t gid[kLanes];
                for (int j = 0; j < kLanes; ++j) gid[j] = static_cast<std::uint64_t>(id(blk.idx[j]));
                double z[4][kLanes];
                rng.normal4_lanes<kLanes, kPairs<Dim>>(n, gid, 0, z);
                double x[Dim][kLanes];
                for (int k = 0; k < Dim; ++k)
                    for (int j = 0; j < kLanes; ++j) x[k][j] = pos(blk.idx[j], k);
                for (int k = 0; k < Dim; ++k)
                    for (int j = 0; j < kLanes; ++j) {
                        const double xj = x[k][j];
                        x[k][j] = xj - (pot.grad(k, xj) + mf.kappa * (xj - mf.m[k])) * dt + sigma * z[k][j];
                    }
                for (int j = 0; j < blk.count; ++j)
                    for (int k = 0; k < Dim; ++k) pos(blk.first + j, k) = x[k][j];
            });
        return false;
    }

  private:
    Pot _pot;
    double _kappa, _temperature;
    CounterRng _rng;
};

/// BAOAB splitting for dX = V dt, dV = F(X) dt - gamma V dt + sqrt(2 gamma T) dW, unit mass
/// (Leimkuhler & Matthews, AMRX 2013, eq. 2.9): B = half kick, A = half drift,
/// O = exact Ornstein–Uhlenbeck velocity update v <- e^{-gamma dt} v + sqrt((1 - e^{-2 gamma dt}) T) xi.
template <int Dim, class Pot>
class Baoab final : public StepperBase {
  public:
    Baoab(Pot pot, double kappa, double temperature, double friction, std::uint64_t seed)
        : _pot(pot), _kappa(kappa), _temperature(temperature), _friction(friction), _rng(seed, RngPurpose::Noise) {}

    bool step(ParticleSet& p, std::int64_t step, double dt, const Vec3& mean, const MeanFn& mean_fn, Vec3& mean_out) override {
        const Pot pot = _pot;
        const CounterRng rng = _rng;
        const MeanField mf{_kappa, {mean[0], mean[1], mean[2]}};
        const double c1 = std::exp(-_friction * dt);
        const double c2 = std::sqrt((1.0 - c1 * c1) * _temperature);
        const double h = 0.5 * dt;
        const auto n = static_cast<std::uint64_t>(step);
        const bool fused = _kappa == 0.0; // without mean field the final B needs no new mean
        auto pos = p.position;
        auto vel = p.velocity;
        auto id = p.id;
        const std::size_t np = p.size();
        Kokkos::parallel_for(
            "kinflow::langevin::baoab", Kokkos::RangePolicy<ExecSpace>(0, n_blocks(np)), KOKKOS_LAMBDA(const std::size_t b) {
                const LaneBlock blk(b, np);
                std::uint64_t gid[kLanes];
                for (int j = 0; j < kLanes; ++j) gid[j] = static_cast<std::uint64_t>(id(blk.idx[j]));
                double z[4][kLanes];
                rng.normal4_lanes<kLanes, kPairs<Dim>>(n, gid, 0, z);
                double xs[Dim][kLanes], vs[Dim][kLanes];
                for (int k = 0; k < Dim; ++k)
                    for (int j = 0; j < kLanes; ++j) {
                        xs[k][j] = pos(blk.idx[j], k);
                        vs[k][j] = vel(blk.idx[j], k);
                    }
                for (int k = 0; k < Dim; ++k)
                    for (int j = 0; j < kLanes; ++j) {
                        double x = xs[k][j];
                        double v = vs[k][j];
                        v -= h * (pot.grad(k, x) + mf.kappa * (x - mf.m[k])); // B
                        x += h * v;                                           // A
                        v = c1 * v + c2 * z[k][j];                            // O
                        x += h * v;                                           // A
                        if (fused) v -= h * pot.grad(k, x);                   // B
                        xs[k][j] = x;
                        vs[k][j] = v;
                    }
                for (int j = 0; j < blk.count; ++j)
                    for (int k = 0; k < Dim; ++k) {
                        pos(blk.first + j, k) = xs[k][j];
                        vel(blk.first + j, k) = vs[k][j];
                    }
            });
        if (fused) return false;
        // Mean field: the last B needs the mean of the new positions (kept for the next step).
        mean_out = mean_fn(p);
        const MeanField mf2{_kappa, {mean_out[0], mean_out[1], mean_out[2]}};
        Kokkos::parallel_for(
            "kinflow::langevin::baoab_kick", Kokkos::RangePolicy<ExecSpace>(0, p.size()), KOKKOS_LAMBDA(const std::size_t i) {
                for (int k = 0; k < Dim; ++k) {
                    const double x = pos(i, k);
                    vel(i, k) -= h * (pot.grad(k, x) + mf2.kappa * (x - mf2.m[k]));
                }
            });
        return true;
    }

  private:
    Pot _pot;
    double _kappa, _temperature, _friction;
    CounterRng _rng;
};

template <int Dim, class Pot>
std::unique_ptr<StepperBase> make_for(const Params& p, Pot pot, std::uint64_t seed) {
    if (p.dynamics == Dynamics::Overdamped) return std::make_unique<Overdamped<Dim, Pot>>(pot, p.kappa, p.temperature, seed);
    return std::make_unique<Baoab<Dim, Pot>>(pot, p.kappa, p.temperature, p.friction, seed);
}

template <int Dim>
std::unique_ptr<StepperBase> make_for_dim(const Params& p, std::uint64_t seed) {
    switch (p.potential) {
    case Potential::None:
        return make_for<Dim>(p, NoPotential{}, seed);
    case Potential::Harmonic:
        return make_for<Dim>(p, HarmonicPotential{p.stiffness, {p.center[0], p.center[1], p.center[2]}}, seed);
    case Potential::DoubleWell:
        return make_for<Dim>(p, DoubleWellPotential{p.stiffness}, seed);
    }
    return nullptr;
}

} // namespace

std::unique_ptr<StepperBase> make_stepper(const Params& params, std::uint64_t seed) {
    switch (params.dim) {
    case 1:
        return make_for_dim<1>(params, seed);
    case 2:
        return make_for_dim<2>(params, seed);
    default:
        return make_for_dim<3>(params, seed);
    }
}

} // namespace kinflow::langevin::detail
