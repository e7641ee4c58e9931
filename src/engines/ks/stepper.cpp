// Kernels of the Keller–Segel engine, one template instantiation per (dimension, flow);
// make_stepper() is the single factory that picks one (CabanaMD's mdfactory pattern).
//
// The all-pairs sum. For particle i, S_i = sum_j (X_i - X_j) g(|X_i - X_j|^2 + delta^2) with
// g(s) = 1/s (2D) or s^{-3/2} (3D), j over every particle in global-id order, in one sequential
// chain per i (so the result does not depend on ranks, threads or blocking). The self term is
// exactly zero (X_i - X_i = 0), so the loop needs no branch. Vectorization is across i: a work
// item holds a block of kLanes targets in registers and streams the sources once, broadcasting
// each X_j to all lanes; every lane adds its terms in j order, so SIMD changes no bit. Sources and
// targets are structure-of-arrays rows, read unit-stride. Each pair is evaluated from both sides
// (N_local x N evaluations per rank, no symmetric half-sum): halving the work with Newton's third
// law would make each particle's sum order depend on which rank computed which half, and would
// need the partial sums of other ranks sent back in a fixed order (see .notes/ks.md).
#include <cmath>
#include <limits>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/reduce.hpp"
#include "kinflow/core/compat.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/engines/ks/flows.hpp"
#include "kinflow/engines/ks/ks_engine.hpp"

// `omp simd` on the lane loop (honoured with -fopenmp or -fopenmp-simd, set for this library in
// sources.cmake). Without it GCC fully unrolls the lane loop and SLP-vectorizes it less well.
#if defined(__GNUC__) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
#define KINFLOW_KS_SIMD _Pragma("omp simd")
#else
#define KINFLOW_KS_SIMD
#endif

namespace kinflow::ks::detail {

namespace {

using ConstSoaView = Kokkos::View<const double**, Kokkos::LayoutRight, MemSpace>;

/// Targets per work item: a vector register's worth or two on CPUs, one on GPUs. The results do
/// not depend on it (every lane sums in the same order).
constexpr int kLanes = Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible ? 16 : 1;

/// g(s) of the blob kernel at s = r^2 + delta^2: 1/s (2D), 1/(s sqrt s) (3D).
template <int Dim> KOKKOS_FORCEINLINE_FUNCTION double blob_factor(double s) {
    if constexpr (Dim == 2) {
        return 1.0 / s;
    } else {
        return 1.0 / (s * math::sqrt(s));
    }
}

/// Adds the pairs (block of kLanes targets) x (all sources) to the sums. With Extras also, per
/// target, the virial terms r^2 g, the number of sources within delta and the nearest source
/// distance other than itself (at snapshot and collapse-check steps only).
template <int Dim, bool Extras> struct PairSum {
    ConstSoaView target, source;
    SoaView sums;
    ScalarView virial, count, nearest2;
    std::int64_t n_source;
    double target_first, source_first; ///< global ids of target 0 and source 0 (exact as doubles)
    double d2;                         ///< delta^2

    KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t block) const {
        constexpr int B = kLanes;
        const std::int64_t i0 = block * B;
        double xi[Dim][B], s[Dim][B];
        double vir[B], cnt[B], nn2[B], gid[B];
        for (int k = 0; k < Dim; ++k) {
            for (int l = 0; l < B; ++l) {
                xi[k][l] = target(k, i0 + l);
                s[k][l] = sums(k, i0 + l);
            }
        }
        if constexpr (Extras) {
            for (int l = 0; l < B; ++l) {
                vir[l] = virial(i0 + l);
                cnt[l] = count(i0 + l);
                nn2[l] = nearest2(i0 + l);
                gid[l] = target_first + static_cast<double>(i0 + l);
            }
        }
        for (std::int64_t j = 0; j < n_source; ++j) {
            double xj[Dim];
            for (int k = 0; k < Dim; ++k)
                xj[k] = source(k, j);
            const double jd = source_first + static_cast<double>(j);
            KINFLOW_KS_SIMD
            for (int l = 0; l < B; ++l) {
                double dx[Dim];
                for (int k = 0; k < Dim; ++k)
                    dx[k] = xi[k][l] - xj[k];
                double r2 = dx[0] * dx[0];
                for (int k = 1; k < Dim; ++k)
                    r2 += dx[k] * dx[k];
                const double g = blob_factor<Dim>(r2 + d2);
                for (int k = 0; k < Dim; ++k)
                    s[k][l] += dx[k] * g;
                if constexpr (Extras) {
                    vir[l] += r2 * g;
                    cnt[l] += r2 < d2 ? 1.0 : 0.0;
                    const double other = jd == gid[l] ? nn2[l] : r2;
                    nn2[l] = other < nn2[l] ? other : nn2[l];
                }
            }
        }
        for (int k = 0; k < Dim; ++k) {
            for (int l = 0; l < B; ++l)
                sums(k, i0 + l) = s[k][l];
        }
        if constexpr (Extras) {
            for (int l = 0; l < B; ++l) {
                virial(i0 + l) = vir[l];
                count(i0 + l) = cnt[l];
                nearest2(i0 + l) = nn2[l];
            }
        }
    }
};

template <int Dim, class FlowT> class Stepper final : public StepperBase {
  public:
    Stepper(const Params& p, FlowT flow, std::uint64_t seed)
        : _flow(flow), _rng(seed, RngPurpose::Noise), _d2(p.delta * p.delta), _mu(p.mu),
          // a_i = chi (M/N) sum_j grad Phi_delta(X_i - X_j) = -chi (M/N) c_d S_i, c_d = 1/(2 pi), 1/(4 pi)
          _coef(-p.chi * (p.mass / static_cast<double>(p.particles)) / ((Dim == 2 ? 2.0 : 4.0) * kPi)) {}

    void load_targets(const ParticleSet& p, Workspace& ws, bool extras) const override {
        auto pos = p.position;
        auto target = ws.target;
        auto sums = ws.sums;
        auto virial = ws.virial;
        auto count = ws.count;
        auto nearest2 = ws.nearest2;
        const auto n = static_cast<std::int64_t>(p.size());
        const double inf = std::numeric_limits<double>::infinity();
        Kokkos::parallel_for(
            "kinflow::ks::load_targets", Kokkos::RangePolicy<ExecSpace>(0, static_cast<std::int64_t>(target.extent(1))),
            KOKKOS_LAMBDA(const std::int64_t i) {
                for (int k = 0; k < Dim; ++k) {
                    target(k, i) = i < n ? pos(i, k) : 0.0;
                    sums(k, i) = 0.0;
                }
                if (extras) {
                    virial(i) = 0.0;
                    count(i) = 0.0;
                    nearest2(i) = inf;
                }
            });
        ws.extras = extras;
    }

    void accumulate(Workspace& ws, std::int64_t n, std::int64_t first, bool extras) const override {
        const auto blocks = static_cast<std::int64_t>(ws.target.extent(1)) / kLanes;
        const double tfirst = static_cast<double>(_target_first);
        if (extras) {
            PairSum<Dim, true> f{
                ws.target, ws.source, ws.sums, ws.virial, ws.count, ws.nearest2, n, tfirst, static_cast<double>(first),
                _d2};
            Kokkos::parallel_for("kinflow::ks::pair_sum_extras", Kokkos::RangePolicy<ExecSpace>(0, blocks), f);
        } else {
            PairSum<Dim, false> f{
                ws.target, ws.source, ws.sums, ws.virial, ws.count, ws.nearest2, n, tfirst, static_cast<double>(first),
                _d2};
            Kokkos::parallel_for("kinflow::ks::pair_sum", Kokkos::RangePolicy<ExecSpace>(0, blocks), f);
        }
    }

    double pair_coef() const override { return _coef; }

    double finish_drift(const ParticleSet& p, Workspace& ws, double coef) const override {
        const FlowT flow = _flow;
        auto pos = p.position;
        auto sums = ws.sums;
        auto drift = ws.drift;
        const double inf = std::numeric_limits<double>::infinity();
        double max2 = 0.0;
        Kokkos::parallel_reduce(
            "kinflow::ks::drift", Kokkos::RangePolicy<ExecSpace>(0, static_cast<std::int64_t>(p.size())),
            KOKKOS_LAMBDA(const std::int64_t i, double& m) {
                double x[Dim], v[Dim];
                for (int k = 0; k < Dim; ++k)
                    x[k] = pos(i, k);
                flow.template velocity<Dim>(x, v);
                double a2 = 0.0;
                for (int k = 0; k < Dim; ++k) {
                    const double a = coef * sums(k, i);
                    a2 += a * a;
                    drift(k, i) = a + v[k];
                }
                // A non-finite drift becomes +inf, which survives the max (a NaN would not).
                const double c = math::is_finite(a2) ? a2 : inf;
                m = c > m ? c : m;
            },
            Kokkos::Max<double>(max2));
        return max2 > 0.0 ? std::sqrt(max2) : 0.0; // an empty range reduces to the lowest double
    }

    void advance(ParticleSet& p, const Workspace& ws, std::int64_t step, double dt) const override {
        const CounterRng rng = _rng;
        const double sigma = std::sqrt(2.0 * _mu * dt);
        const auto n = static_cast<std::uint64_t>(step);
        auto pos = p.position;
        auto id = p.id;
        auto drift = ws.drift;
        Kokkos::parallel_for(
            "kinflow::ks::euler_maruyama", Kokkos::RangePolicy<ExecSpace>(0, static_cast<std::int64_t>(p.size())),
            KOKKOS_LAMBDA(const std::int64_t i) {
                double z[4];
                rng.normal4(n, static_cast<std::uint64_t>(id(i)), 0, z);
                for (int k = 0; k < Dim; ++k)
                    pos(i, k) += dt * drift(k, i) + sigma * z[k];
            });
    }

    void wrap(ParticleSet& p, double box) const override {
        auto pos = p.position;
        const double half = 0.5 * box, inv = 1.0 / box;
        Kokkos::parallel_for(
            "kinflow::ks::wrap", Kokkos::RangePolicy<ExecSpace>(0, static_cast<std::int64_t>(p.size())),
            KOKKOS_LAMBDA(const std::int64_t i) {
                for (int k = 0; k < Dim; ++k) {
                    double x = pos(i, k);
                    if (x < -half || x >= half) {
                        const double t = (x + half) * inv;
                        double q = static_cast<double>(static_cast<std::int64_t>(t));
                        q = t < q ? q - 1.0 : q; // floor
                        x -= q * box;
                        x = x >= half ? x - box : (x < -half ? x + box : x);
                        pos(i, k) = x;
                    }
                }
            });
    }

    std::array<double, 9> sums(const comm::Communicator& comm, const comm::BlockDecomposition& dec,
                               const ParticleSet& p, const Workspace& ws) const override {
        const FlowT flow = _flow;
        auto pos = p.position;
        auto drift = ws.drift;
        auto virial = ws.virial;
        const bool extras = ws.extras;
        return comm::ordered_sum<9>(
            comm, dec, KOKKOS_LAMBDA(const std::size_t i, double* acc) {
                double x[Dim], v[Dim];
                double r2 = 0.0, a2 = 0.0, xv = 0.0, xa = 0.0;
                for (int k = 0; k < Dim; ++k)
                    x[k] = pos(i, k);
                flow.template velocity<Dim>(x, v);
                for (int k = 0; k < Dim; ++k) {
                    acc[1 + k] += x[k];
                    r2 += x[k] * x[k];
                    a2 += drift(k, i) * drift(k, i);
                    xv += x[k] * v[k];
                    xa += x[k] * drift(k, i);
                }
                acc[0] += math::is_finite(r2) ? 1.0 : 0.0;
                acc[4] += r2;
                acc[5] += a2;
                acc[6] += xv;
                acc[7] += extras ? virial(i) : 0.0;
                acc[8] += xa;
            });
    }

    void set_target_first(std::int64_t first) { _target_first = first; }

  private:
    FlowT _flow;
    CounterRng _rng;
    double _d2, _mu, _coef;
    std::int64_t _target_first = 0;
};

template <int Dim, class FlowT>
std::unique_ptr<StepperBase> make_for(const Params& p, FlowT flow, std::uint64_t seed, std::int64_t first) {
    auto s = std::make_unique<Stepper<Dim, FlowT>>(p, flow, seed);
    s->set_target_first(first);
    return s;
}

} // namespace

int lanes() { return kLanes; }

std::unique_ptr<StepperBase> make_stepper(const Params& p, std::uint64_t seed, std::int64_t first) {
    const double a = p.flow_amplitude;
    if (p.dim == 2) {
        switch (p.flow) {
        case Flow::None:
            return make_for<2>(p, NoFlow{}, seed, first);
        case Flow::Shear:
            return make_for<2>(p, ShearFlow{a}, seed, first);
        case Flow::Cellular:
            return make_for<2>(p, CellularFlow{a}, seed, first);
        default:
            break;
        }
    } else if (p.dim == 3) {
        switch (p.flow) {
        case Flow::None:
            return make_for<3>(p, NoFlow{}, seed, first);
        case Flow::Shear:
            return make_for<3>(p, ShearFlow{a}, seed, first);
        case Flow::Kolmogorov:
            return make_for<3>(p, KolmogorovFlow{a}, seed, first);
        case Flow::Abc:
            return make_for<3>(p, AbcFlow{a}, seed, first);
        default:
            break;
        }
    }
    throw Error("ks: no stepper for dim = " + std::to_string(p.dim) + " with this flow (validate() rejects it)");
}

} // namespace kinflow::ks::detail
