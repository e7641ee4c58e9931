// Spatial DSMC (dsmc.space = grid): see spatial.hpp for the algorithm and its reproducibility.
#include "kinflow/engines/dsmc/spatial.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/migrate.hpp"
#include "kinflow/core/compat.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/engines/dsmc/collision.hpp"
#include "kinflow/engines/dsmc/detail/ntc.hpp"
#include "kinflow/engines/dsmc/dsmc_engine.hpp"

namespace kinflow::dsmc {

namespace {

constexpr RngPurpose purpose(std::uint32_t k) {
    return static_cast<RngPurpose>(static_cast<std::uint32_t>(RngPurpose::User) + 200 + k);
}
constexpr RngPurpose kInitCount = purpose(0);   ///< (0, global cell, part x species): Poisson cell counts
constexpr RngPurpose kInitParticle = purpose(1); ///< (0, particle id, block): initial position and velocity
constexpr RngPurpose kInflowCount = purpose(2);  ///< (step, face x species): particles emitted per step
constexpr RngPurpose kInflowParticle = purpose(3); ///< (step, particle id, block): emitted particle
constexpr RngPurpose kWall = purpose(4);         ///< (step, particle id, bounce): diffuse reflections
/// Boundary interactions of one particle in one step: a guard against a runaway loop, never met
/// at a sane dt (2 bounce + 1 stays below the 2^16 blocks of a counter-based stream).
constexpr int kMaxBounces = 32000;
/// NTC candidates per particle and step beyond which run.dt is refused (a step should be a
/// fraction of a collision time; far beyond, the candidate loop would hang).
constexpr double kMaxCandidatesPerParticle = 1000.0;
constexpr int kSums = 14; ///< per cell: N, sum m, sum m v (3), sum m v_j v_k (xx yy zz xy xz yz), sum m |v|^2 v (3)

using SizeView = Kokkos::View<std::size_t*, MemSpace>;
using Sums = Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>;

/// Box, cells, faces and decomposition, copied by value into kernels.
struct Geometry {
    double lo[3], hi[3], dx[3];
    std::int64_t n[3];
    int face[6];
    double wall_T[6], wall_u[6][3], accom[6];
    int axis, ax_b, ax_c;
    std::int64_t s0, s1;
    int P;
    Kokkos::View<std::int64_t*, MemSpace> bounds; ///< P + 1 slab boundaries: rank r owns [bounds(r), bounds(r + 1))
    KOKKOS_INLINE_FUNCTION std::int64_t coord(int k, double x) const {
        const double c = (x - lo[k]) / dx[k];
        std::int64_t i = c > 0.0 ? static_cast<std::int64_t>(c) : 0;
        return i < n[k] ? i : n[k] - 1;
    }
    /// Rank owning slab s along the decomposition axis: the largest r with bounds(r) <= s (ranks
    /// without slabs have bounds(r) = bounds(r + 1) and are passed over).
    KOKKOS_INLINE_FUNCTION int owner(std::int64_t s) const {
        int a = 0, b = P; // bounds(a) <= s < bounds(b)
        while (b - a > 1) {
            const int m = (a + b) / 2;
            if (bounds(m) <= s)
                a = m;
            else
                b = m;
        }
        return a;
    }
    KOKKOS_INLINE_FUNCTION std::int64_t local_cell(const std::int64_t i[3]) const {
        return ((i[axis] - s0) * n[ax_b] + i[ax_b]) * n[ax_c] + i[ax_c];
    }
};

struct Masses {
    double m[kMaxSpecies] = {};
};

/// A particle set of n rows (dim = vdim = 3, species), contents uninitialised: every row is written
/// next (a zeroing memset of every step's new arrays cost a fifth of the step).
ParticleSet allocate_rows(std::size_t n, std::int64_t n_global) {
    ParticleSet p;
    p.dim = p.vdim = 3;
    p.with_species = true;
    p.n_global = n_global;
    const auto no_init = [](const char* label) { return Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)); };
    p.position = VectorView(no_init("kinflow::dsmc::spatial::position"), n, 3);
    p.velocity = VectorView(no_init("kinflow::dsmc::spatial::velocity"), n, 3);
    p.id = IdView(no_init("kinflow::dsmc::spatial::id"), n);
    p.species = SpeciesView(no_init("kinflow::dsmc::spatial::species"), n);
    return p;
}

/// Rows [0, n) of a particle set copied into another (both allocated).
void copy_rows(const ParticleSet& from, const ParticleSet& to, std::size_t n) {
    auto x0 = from.position, v0 = from.velocity, x1 = to.position, v1 = to.velocity;
    auto i0 = from.id, i1 = to.id;
    auto s0 = from.species, s1 = to.species;
    Kokkos::parallel_for(
        "kinflow::dsmc::spatial_copy", Kokkos::RangePolicy<ExecSpace>(0, n), KOKKOS_LAMBDA(const std::size_t i) {
            for (int k = 0; k < 3; ++k) {
                x1(i, k) = x0(i, k);
                v1(i, k) = v0(i, k);
            }
            i1(i) = i0(i);
            s1(i) = s0(i);
        });
}

/// Capacity for n rows in a grow-only buffer: 25 % slack, so that slowly growing counts do not
/// reallocate (fresh pages) every step.
constexpr std::size_t with_slack(std::size_t n) { return n + n / 4 + 64; }

/// Rows [0, n) of `store` as a set with the metadata of `like`.
ParticleSet leading_rows(const ParticleSet& store, std::size_t n, const ParticleSet& like) {
    ParticleSet to = like;
    const auto rows = std::make_pair(std::size_t{0}, n);
    to.position = Kokkos::subview(store.position, rows, Kokkos::ALL());
    to.velocity = Kokkos::subview(store.velocity, rows, Kokkos::ALL());
    to.id = Kokkos::subview(store.id, rows);
    to.species = Kokkos::subview(store.species, rows);
    return to;
}

/// Rows order(k) of `from` as rows k of `buffer` (grown when short): no fresh pages every step.
ParticleSet gather(const ParticleSet& from, const SizeView& order, ParticleSet& buffer) {
    const std::size_t n = order.extent(0);
    if (buffer.size() < n || !buffer.has_species()) // (a default set has no dims even at n = 0)
        buffer = allocate_rows(with_slack(n), from.n_global);
    const ParticleSet to = leading_rows(buffer, n, from);
    auto x0 = from.position, v0 = from.velocity, x1 = to.position, v1 = to.velocity;
    auto i0 = from.id, i1 = to.id;
    auto s0 = from.species, s1 = to.species;
    Kokkos::parallel_for(
        "kinflow::dsmc::spatial_gather", Kokkos::RangePolicy<ExecSpace>(0, order.extent(0)),
        KOKKOS_LAMBDA(const std::size_t k) {
            const std::size_t i = order(k);
            for (int c = 0; c < 3; ++c) {
                x1(k, c) = x0(i, c);
                v1(k, c) = v0(i, c);
            }
            i1(k) = i0(i);
            s1(k) = s0(i);
        });
    return to;
}

/// A sample x > 0 of the density proportional to x exp(-(x - s)^2): the normal speed, in units of
/// c_m = sqrt(2kT/m), of molecules crossing a plane from a Maxwellian whose drift towards the
/// plane is s c_m (flux-weighted; Bird 1994 sec. 12.2, Garcia & Wagner, J. Comput. Phys. 217, 693
/// (2006)). Exact rejection, no truncation. s >= 0: the envelope (|y| + s) e^{-y^2}, y = x - s, a
/// mixture of the two-sided Rayleigh |y| e^{-y^2} (weight 1) and the Gaussian e^{-y^2} (weight
/// s sqrt(pi)), accepted with x / (|y| + s). s < 0: y = x - s from y e^{-y^2} on y > |s|
/// (y = sqrt(s^2 - ln u)), accepted with x / y.
KOKKOS_INLINE_FUNCTION double flux_normal_speed(const CounterRng& rng, std::uint64_t step, std::uint64_t id,
                                                std::uint32_t block0, double s) {
    const double sqrt_pi = 1.7724538509055160273;
    for (std::uint32_t it = 0; it < 4000; ++it) {
        double u[4];
        rng.uniform4(step, id, block0 + it, u);
        if (s >= 0.0) {
            double y;
            if (u[0] * (1.0 + s * sqrt_pi) < 1.0) {
                y = math::sqrt(-math::log(u[1]));
                if (u[2] < 0.5)
                    y = -y;
            } else {
                double z1, z2;
                CounterRng::box_muller(u[1], u[2], z1, z2);
                y = z1 * 0.70710678118654752440;
            }
            const double x = s + y;
            if (x > 0.0 && u[3] * (math::fabs(y) + s) < x)
                return x;
        } else {
            const double y = math::sqrt(s * s - math::log(u[0]));
            const double x = y + s;
            if (u[1] * y < x)
                return x;
        }
    }
    return s > 0.0 ? s : 0.5; // not reached in practice (acceptance >= 1/(1 + 2 s^2) per try)
}

/// The Maxwellian particle flux through a plane, per unit area (VERIFICATION.md, "Boltzmann,
/// spatial"): Gamma = n c_m [exp(-s^2) + sqrt(pi) s (1 + erf s)] / (2 sqrt(pi)), s = u_n / c_m.
double maxwellian_flux(double n, double c_m, double s) {
    const double sqrt_pi = std::sqrt(kPi);
    return n * c_m * (std::exp(-s * s) + sqrt_pi * s * (1.0 + std::erf(s))) / (2.0 * sqrt_pi);
}

/// Poisson(lambda) by inversion of u[0] (lambda <= 500; above, the normal approximation from u[1], u[2]).
std::int64_t poisson(double lambda, const double u[4]) {
    if (!(lambda > 0.0))
        return 0;
    if (lambda > 500.0) {
        double z1, z2;
        CounterRng::box_muller(u[1], u[2], z1, z2);
        return std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(lambda + std::sqrt(lambda) * z1 + 0.5)));
    }
    double p = std::exp(-lambda), c = p;
    std::int64_t k = 0;
    while (u[0] > c && k < 100000) {
        ++k;
        p *= lambda / static_cast<double>(k);
        c += p;
    }
    return k;
}

/// One batch of initial particles: cell `local` of this rank, part (left/right of riemann_x0), species.
struct InitBatch {
    std::int64_t local, first_id, count;
    double xa, xb; ///< x-range of the part
    double T, u[3];
    int species;
};

/// Emitted particles of one (face, species) this step: ids [first_id, first_id + count).
struct EmitBatch {
    int face, species;
    std::int64_t first_id, count;
    double c_m, s, n_u[3]; ///< c_m, normal speed ratio (inward), inflow velocity
};
constexpr int kMaxEmit = 6 * kMaxSpecies;
struct EmitTable {
    int n = 0;
    EmitBatch b[kMaxEmit];
    std::int64_t offset[kMaxEmit + 1] = {}; ///< candidate index ranges
};

/// Position on face b.face and velocity of emitted particle `id` (tau: its flight time this step).
KOKKOS_INLINE_FUNCTION void emitted(const Geometry& g, const EmitBatch& b, const CounterRng& rng, std::uint64_t step,
                                    std::uint64_t id, double kT_m, double x[3], double v[3], double& frac) {
    double u[4], z[4];
    rng.uniform4(step, id, 0, u);
    rng.normal4(step, id, 1, z);
    const int k = b.face / 2;
    const double sign = b.face % 2 == 0 ? 1.0 : -1.0; // inward normal
    const double sigma = math::sqrt(kT_m);
    int j = 0;
    for (int a = 0; a < 3; ++a) {
        if (a == k) {
            x[a] = b.face % 2 == 0 ? g.lo[a] : g.hi[a];
            v[a] = sign * b.c_m * flux_normal_speed(rng, step, id, 16, b.s);
        } else {
            x[a] = g.lo[a] + u[j] * (g.hi[a] - g.lo[a]);
            v[a] = b.n_u[a] + sigma * z[j];
            ++j;
        }
    }
    frac = u[2];
}

/// Free flight for time tau with boundary interactions (remaining-time bookkeeping: several
/// crossings per step). Returns the face through which the particle left (outflow/inflow faces),
/// or -1 when it stays. Wall momentum and energy transfers go to `wall` (times the weight).
KOKKOS_INLINE_FUNCTION int fly(const Geometry& g, const CounterRng& rng, std::uint64_t step, std::uint64_t id,
                               double m, double kB, double x[3], double v[3], double tau, double weight,
                               const Kokkos::View<double[6][4], MemSpace>& wall) {
    { // most flights end strictly inside the (convex) box: no face was reached, no division needed
        const double e[3] = {x[0] + v[0] * tau, x[1] + v[1] * tau, x[2] + v[2] * tau};
        if (g.lo[0] < e[0] && e[0] < g.hi[0] && g.lo[1] < e[1] && e[1] < g.hi[1] && g.lo[2] < e[2] && e[2] < g.hi[2]) {
            for (int k = 0; k < 3; ++k)
                x[k] = e[k];
            return -1;
        }
    }
    for (int bounce = 0; bounce < kMaxBounces && tau > 0.0; ++bounce) {
        double tmin = tau;
        int f = -1;
        for (int k = 0; k < 3; ++k) {
            if (v[k] > 0.0) {
                double t = (g.hi[k] - x[k]) / v[k];
                t = t > 0.0 ? t : 0.0;
                if (t < tmin) {
                    tmin = t;
                    f = 2 * k + 1;
                }
            } else if (v[k] < 0.0) {
                double t = (g.lo[k] - x[k]) / v[k];
                t = t > 0.0 ? t : 0.0;
                if (t < tmin) {
                    tmin = t;
                    f = 2 * k;
                }
            }
        }
        if (f < 0) {
            for (int k = 0; k < 3; ++k)
                x[k] += v[k] * tau;
            return -1;
        }
        const int a = f / 2;
        for (int k = 0; k < 3; ++k)
            x[k] = k == a ? (f % 2 == 0 ? g.lo[k] : g.hi[k]) : x[k] + v[k] * tmin;
        tau -= tmin;
        const int kind = g.face[f];
        if (kind == static_cast<int>(Face::Periodic)) {
            x[a] = f % 2 == 0 ? g.hi[a] : g.lo[a];
            continue;
        }
        if (kind == static_cast<int>(Face::Inflow) || kind == static_cast<int>(Face::Outflow))
            return f;
        const double vin[3] = {v[0], v[1], v[2]};
        bool diffuse = false;
        double u[4], z[4];
        if (kind == static_cast<int>(Face::Diffuse)) {
            rng.uniform4(step, id, static_cast<std::uint32_t>(2 * bounce), u);
            diffuse = u[0] < g.accom[f];
        }
        if (diffuse) { // Maxwell wall: flux-weighted normal speed, wall velocity added (Bird 1994 sec. 12.3)
            rng.normal4(step, id, static_cast<std::uint32_t>(2 * bounce + 1), z);
            const double kT_m = kB * g.wall_T[f] / m;
            const double sign = f % 2 == 0 ? 1.0 : -1.0;
            int j = 0;
            for (int k = 0; k < 3; ++k) {
                if (k == a)
                    v[k] = sign * math::sqrt(2.0 * kT_m) * math::sqrt(-math::log(u[1]));
                else
                    v[k] = g.wall_u[f][k] + math::sqrt(kT_m) * z[j++];
            }
        } else {
            v[a] = -v[a];
        }
        double e = 0.0;
        for (int k = 0; k < 3; ++k) {
            Kokkos::atomic_add(&wall(f, k), weight * m * (vin[k] - v[k]));
            e += vin[k] * vin[k] - v[k] * v[k];
        }
        Kokkos::atomic_add(&wall(f, 3), 0.5 * weight * m * e);
    }
    return -1;
}

/// Heapsort step: sift order(lo + root) down the max-heap of order(lo .. lo + end) keyed by id.
KOKKOS_INLINE_FUNCTION void sift_down(const SizeView& order, const IdView& id, std::size_t lo, std::size_t root,
                                      std::size_t end) {
    const std::size_t r = order(lo + root);
    const std::int64_t key = id(r);
    std::size_t j = root;
    while (2 * j + 1 < end) {
        std::size_t c = 2 * j + 1;
        if (c + 1 < end && id(order(lo + c + 1)) > id(order(lo + c)))
            ++c;
        if (id(order(lo + c)) <= key)
            break;
        order(lo + j) = order(lo + c);
        j = c;
    }
    order(lo + j) = r;
}

/// Rows [0, n) of a grow-only scratch View (grown with 25 % slack; contents not kept): the step's
/// index, flight-time and exchange arrays reuse their pages (a fresh 10^6-row array per step cost
/// about a fifth of a step in page faults).
template <class V> V rows_of(V& buf, std::size_t n, const char* label) {
    if (buf.extent(0) < n)
        buf = V(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)), with_slack(n));
    return Kokkos::subview(buf, std::make_pair(std::size_t{0}, n));
}

/// Rows deleted at outflow faces (dest < 0) and rows owned by another rank (dest != me).
struct Leaving {
    std::int64_t deleted = 0, sent = 0;
};
Leaving leaving(const comm::RankView& dest, int me) {
    std::int64_t d = 0, s = 0;
    Kokkos::parallel_reduce(
        "kinflow::dsmc::spatial_leaving", Kokkos::RangePolicy<ExecSpace>(0, dest.extent(0)),
        KOKKOS_LAMBDA(const std::size_t i, std::int64_t& a, std::int64_t& b) {
            if (dest(i) < 0)
                ++a;
            else if (dest(i) != me)
                ++b;
        },
        Kokkos::Sum<std::int64_t>(d), Kokkos::Sum<std::int64_t>(s));
    return {d, s};
}

/// Words of one migrating particle: position (3) | velocity (3) | id | species.
constexpr int kRecord = 8;

/// The rows owned by another rank, packed on the device in row order (position, velocity | id,
/// species | destination), then marked dropped (dest = -1) for the next index().
void pack_leavers(const ParticleSet& p, const comm::RankView& dest, int me, const SizeView& list,
                  const VectorView& xv, const Kokkos::View<std::int64_t**, Kokkos::LayoutRight, MemSpace>& is,
                  const comm::RankView& rank) {
    Kokkos::parallel_scan(
        "kinflow::dsmc::spatial_leavers", Kokkos::RangePolicy<ExecSpace>(0, dest.extent(0)),
        KOKKOS_LAMBDA(const std::size_t i, std::size_t& k, const bool final) {
            if (dest(i) >= 0 && dest(i) != me) {
                if (final)
                    list(k) = i;
                ++k;
            }
        });
    auto x = p.position;
    auto v = p.velocity;
    auto id = p.id;
    auto sp = p.species;
    Kokkos::parallel_for(
        "kinflow::dsmc::spatial_pack", Kokkos::RangePolicy<ExecSpace>(0, list.extent(0)),
        KOKKOS_LAMBDA(const std::size_t k) {
            const std::size_t i = list(k);
            for (int a = 0; a < 3; ++a) {
                xv(k, a) = x(i, a);
                xv(k, 3 + a) = v(i, a);
            }
            is(k, 0) = id(i);
            is(k, 1) = sp(i);
            rank(k) = dest(i);
            dest(i) = -1;
        });
}

// ---- NTC per cell ----------------------------------------------------------------------------

/// Bird's NTC in every cell (Bird 1994 sec. 11.1): species pair t gets N_s N_r (N_s (N_s - 1)/2
/// for s = r) F_N (sigma_T g)_max,t dt / V_c expected candidates (floor or floor + 1), accepted with
/// sigma_T g / (sigma_T g)_max,t; the cell's majorants rise to the largest sigma_T g its candidates
/// met. Draws are keyed by the global cell id, so a cell's collisions do not depend on which rank
/// holds it.
template <class CS, class Scat> class CellCollider final : public detail::CellColliderBase {
  public:
    CellCollider(const Params& p, CS cs, Scat scat, std::uint64_t seed, std::int64_t ncell, double g0,
                 double weight, double volume)
        : _ns(p.n_species), _cs(cs), _scat(scat), _seed(seed), _weight(weight), _volume(volume) {
        for (int s = 0; s < _ns; ++s)
            _mass.m[s] = p.mass[static_cast<std::size_t>(s)];
        const int T = _ns * (_ns + 1) / 2;
        _maj = Sums("kinflow::dsmc::spatial_majorants", static_cast<std::size_t>(ncell), static_cast<std::size_t>(T));
        auto h = Kokkos::create_mirror_view(_maj);
        for (std::int64_t c = 0; c < ncell; ++c)
            for (int s = 0; s < _ns; ++s)
                for (int r = s; r < _ns; ++r) {
                    const double mr = _mass.m[s] * _mass.m[r] / (_mass.m[s] + _mass.m[r]);
                    const double g = g0 * std::sqrt(_mass.m[0] / (2.0 * mr)); // g0 is for the species-0 pair
                    h(static_cast<std::size_t>(c), static_cast<std::size_t>(detail::pair_index(s, r, _ns))) =
                        cs(s, r, g * g);
                }
        Kokkos::deep_copy(_maj, h);
    }

    Sums majorants() const override { return _maj; }
    void set_majorants(const Sums& m) override { _maj = m; }

    std::int64_t collide(ParticleSet& p, const SizeView& start, const Kokkos::View<std::int64_t*, MemSpace>& gid,
                         std::int64_t step, double dt) override {
        const auto n_step = static_cast<std::uint64_t>(step);
        const int S = _ns;
        const int T = S * (S + 1) / 2;
        const std::size_t ncell = gid.extent(0);
        const CS cs = _cs;
        const Scat scat = _scat;
        const Masses sm = _mass;
        const std::uint64_t seed = _seed;
        const double rate = _weight * dt / _volume; // F_N dt / V_c
        auto maj = _maj;
        auto vel = p.velocity;
        std::int64_t total = 0;
        Kokkos::View<int, MemSpace> too_many("kinflow::dsmc::spatial_too_many");
        const double max_candidates = kMaxCandidatesPerParticle;
        Kokkos::parallel_reduce(
            "kinflow::dsmc::spatial_ntc", Kokkos::RangePolicy<ExecSpace>(0, ncell),
            KOKKOS_LAMBDA(const std::size_t c, std::int64_t& coll) {
                std::size_t off[kMaxSpecies + 1] = {};
                for (int s = 0; s <= S; ++s)
                    off[s] = start(c * static_cast<std::size_t>(S) + static_cast<std::size_t>(s));
                const std::size_t M = off[S] - off[0];
                if (M < 2)
                    return;
                detail::PairValues mj;
                for (int t = 0; t < T; ++t)
                    mj.v[t] = maj(c, t);
                detail::GroupWeights gw;
                detail::group_weights(off, S, rate * static_cast<double>(M - 1), mj, gw);
                if (!(gw.W > 0.0))
                    return;
                if (!(gw.W <= max_candidates * static_cast<double>(M))) { // absurd dt: refuse, no hang
                    too_many() = 1;
                    return;
                }
                const CounterRng rng(mix64(seed ^ mix64(static_cast<std::uint64_t>(gid(c)) + 0x5bd1e995ULL)),
                                     RngPurpose::Collision);
                const std::int64_t C = detail::candidate_count(rng, n_step, gw.W);
                double seen[detail::kMaxPairs];
                for (int t = 0; t < T; ++t)
                    seen[t] = mj.v[t];
                for (std::int64_t k = 0; k < C; ++k) {
                    double a[4], b[4];
                    rng.uniform4(n_step, static_cast<std::uint64_t>(k), 0, a);
                    std::size_t pa, pb;
                    const int t = detail::pick_candidate(a, gw, T, off, pa, pb);
                    const int s = gw.ts[t], r = gw.tr[t];
                    double v1[3] = {vel(pa, 0), vel(pa, 1), vel(pa, 2)};
                    double v2[3] = {vel(pb, 0), vel(pb, 1), vel(pb, 2)};
                    const double g2 = (v1[0] - v2[0]) * (v1[0] - v2[0]) + (v1[1] - v2[1]) * (v1[1] - v2[1]) +
                                      (v1[2] - v2[2]) * (v1[2] - v2[2]);
                    const double sg = cs(s, r, g2);
                    if (sg > seen[t])
                        seen[t] = sg;
                    if (a[3] * mj.v[t] < sg) {
                        rng.uniform4(n_step, static_cast<std::uint64_t>(k), 1, b);
                        collide_pair(scat, s, r, sm.m[s], sm.m[r], v1, v2, b[0], b[1]);
                        for (int q = 0; q < 3; ++q) {
                            vel(pa, q) = v1[q];
                            vel(pb, q) = v2[q];
                        }
                        ++coll;
                    }
                }
                for (int t = 0; t < T; ++t)
                    maj(c, t) = seen[t];
            },
            Kokkos::Sum<std::int64_t>(total));
        int flag = 0;
        Kokkos::deep_copy(flag, too_many);
        return flag ? -1 : total;
    }

  private:
    int _ns;
    CS _cs;
    Scat _scat;
    std::uint64_t _seed;
    double _weight, _volume;
    Masses _mass;
    Sums _maj;
};

/// The collision model of the deck (detail::with_collision_model, shared with the homogeneous engine).
std::unique_ptr<detail::CellColliderBase> make_cell_collider(const Params& p, std::uint64_t seed, std::int64_t ncell,
                                                             double g0, double weight, double volume) {
    return detail::with_collision_model(p, true, [&](auto cs, auto scat) -> std::unique_ptr<detail::CellColliderBase> {
        return std::make_unique<CellCollider<decltype(cs), decltype(scat)>>(p, cs, scat, seed, ncell, g0, weight,
                                                                            volume);
    });
}

Geometry geometry(const GridParams& g, const double dx[3], int axis, int ax_b, int ax_c, std::int64_t s0,
                  std::int64_t s1, int P, const Kokkos::View<std::int64_t*, MemSpace>& bounds) {
    Geometry G{};
    for (int k = 0; k < 3; ++k) {
        G.lo[k] = g.lo[k];
        G.hi[k] = g.hi[k];
        G.dx[k] = dx[k];
        G.n[k] = g.cells[k];
    }
    for (int f = 0; f < 6; ++f) {
        G.face[f] = static_cast<int>(g.face[f]);
        G.wall_T[f] = g.wall_temperature[f];
        G.accom[f] = g.accommodation[f];
        for (int k = 0; k < 3; ++k)
            G.wall_u[f][k] = g.wall_velocity[f][k];
    }
    G.axis = axis;
    G.ax_b = ax_b;
    G.ax_c = ax_c;
    G.s0 = s0;
    G.s1 = s1;
    G.P = P;
    G.bounds = bounds;
    return G;
}

} // namespace

SpatialEngine::SpatialEngine(const comm::Communicator& comm, const Params& params, std::uint64_t seed)
    : _comm(comm), _params(params), _g(params.grid), _seed(seed) {
    KINFLOW_REQUIRE(_g.enabled, "dsmc: SpatialEngine needs space = grid");
    // Slabs along the axis with the most cells (ties: x, then y).
    _axis = 0;
    for (int k = 1; k < 3; ++k)
        if (_g.cells[k] > _g.cells[_axis])
            _axis = k;
    _ax_b = _axis == 0 ? 1 : 0;
    _ax_c = _axis == 2 ? 1 : 2;
    _ncell_global = _g.cells[0] * _g.cells[1] * _g.cells[2];
    _cell_volume = 1.0;
    for (int k = 0; k < 3; ++k) {
        _dx[k] = (_g.hi[k] - _g.lo[k]) / static_cast<double>(_g.cells[k]);
        _cell_volume *= _dx[k];
    }
    const std::int64_t na = _g.cells[_axis];
    const int P = comm.size();
    std::vector<std::int64_t> b(static_cast<std::size_t>(P) + 1);
    for (int r = 0; r <= P; ++r)
        b[static_cast<std::size_t>(r)] = na * r / P; // equal slabs
    set_slabs(b);
    _acc = Sums("kinflow::dsmc::spatial_average", static_cast<std::size_t>(_ncell_local), kSums);
    _wall = Kokkos::View<double[6][4], MemSpace>("kinflow::dsmc::spatial_wall");
    _outflow = Kokkos::View<std::int64_t[6], MemSpace>("kinflow::dsmc::spatial_outflow");
    // Initial majorants: sigma_T g at 3 most probable relative speeds of the hottest state plus
    // twice the largest drift (raised per cell as candidates exceed them).
    double Tmax = std::max(_g.temperature_right, 0.0), umax = 0.0;
    for (double T : _params.temperature)
        Tmax = std::max(Tmax, T);
    for (const auto& u : _params.drift)
        umax = std::max(umax, std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]));
    for (int f = 0; f < 6; ++f) {
        if (_g.face[f] == Face::Diffuse)
            Tmax = std::max(Tmax, _g.wall_temperature[f]);
        if (_g.face[f] == Face::Inflow) {
            Tmax = std::max(Tmax, _g.inflow_temperature[f]);
            const double* u = _g.inflow_velocity[f];
            umax = std::max(umax, std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]));
        }
    }
    const double g0 = 3.0 * std::sqrt(4.0 * _params.k_boltzmann * std::max(Tmax, 1e-300) / _params.mass[0]) + 2.0 * umax;
    _collider = make_cell_collider(_params, seed, _ncell_local, g0, _g.weight, _cell_volume);
}

SpatialEngine::~SpatialEngine() = default;

void SpatialEngine::set_slabs(const std::vector<std::int64_t>& b) {
    const int P = _comm.size(), r = _comm.rank();
    KINFLOW_REQUIRE(static_cast<int>(b.size()) == P + 1 && b.front() == 0 && b.back() == _g.cells[_axis],
                    "dsmc: bad slab boundaries");
    _bounds = b;
    _dbounds = Kokkos::View<std::int64_t*, MemSpace>("kinflow::dsmc::spatial_bounds", b.size());
    {
        auto h = Kokkos::create_mirror_view(_dbounds);
        for (std::size_t k = 0; k < b.size(); ++k)
            h(k) = b[k];
        Kokkos::deep_copy(_dbounds, h);
    }
    _s0 = b[static_cast<std::size_t>(r)];
    _s1 = b[static_cast<std::size_t>(r) + 1];
    _ncell_local = (_s1 - _s0) * _g.cells[_ax_b] * _g.cells[_ax_c];
    _gid = Kokkos::View<std::int64_t*, MemSpace>("kinflow::dsmc::spatial_gid", static_cast<std::size_t>(_ncell_local));
    auto h = Kokkos::create_mirror_view(_gid);
    const Geometry G = geometry(_g, _dx, _axis, _ax_b, _ax_c, _s0, _s1, P, _dbounds);
    for (std::int64_t ia = _s0; ia < _s1; ++ia)
        for (std::int64_t ib = 0; ib < _g.cells[_ax_b]; ++ib)
            for (std::int64_t ic = 0; ic < _g.cells[_ax_c]; ++ic) {
                std::int64_t i[3];
                i[_axis] = ia;
                i[_ax_b] = ib;
                i[_ax_c] = ic;
                h(static_cast<std::size_t>(G.local_cell(i))) = i[0] + _g.cells[0] * (i[1] + _g.cells[1] * i[2]);
            }
    Kokkos::deep_copy(_gid, h);
}

std::vector<double> SpatialEngine::gather_cell_state() const {
    const auto maj = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), _collider->majorants());
    const auto acc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), _acc);
    const std::size_t T = maj.extent(1), K = acc.extent(1);
    std::vector<double> local;
    local.reserve(static_cast<std::size_t>(_ncell_local) * (T + K));
    for (std::size_t c = 0; c < static_cast<std::size_t>(_ncell_local); ++c) {
        for (std::size_t t = 0; t < T; ++t)
            local.push_back(maj(c, t));
        for (std::size_t k = 0; k < K; ++k)
            local.push_back(acc(c, k));
    }
    return _comm.size() > 1 ? _comm.allgatherv(local) : local;
}

void SpatialEngine::scatter_cell_state(const std::vector<double>& all) {
    const int S = _params.n_species;
    const auto T = static_cast<std::size_t>(S * (S + 1) / 2), K = static_cast<std::size_t>(kSums);
    KINFLOW_REQUIRE(all.size() == static_cast<std::size_t>(_ncell_global) * (T + K), "dsmc: cell state has the wrong size");
    Sums maj("kinflow::dsmc::spatial_majorants", static_cast<std::size_t>(_ncell_local), T);
    _acc = Sums("kinflow::dsmc::spatial_average", static_cast<std::size_t>(_ncell_local), K);
    auto hm = Kokkos::create_mirror_view(maj);
    auto ha = Kokkos::create_mirror_view(_acc);
    // this rank's cells are rows [s0 nb nc, s1 nb nc) of the slab order
    const auto first = static_cast<std::size_t>(_s0 * _g.cells[_ax_b] * _g.cells[_ax_c]);
    for (std::size_t c = 0; c < static_cast<std::size_t>(_ncell_local); ++c) {
        const double* row = &all[(first + c) * (T + K)];
        for (std::size_t t = 0; t < T; ++t)
            hm(c, t) = row[t];
        for (std::size_t k = 0; k < K; ++k)
            ha(c, k) = row[T + k];
    }
    Kokkos::deep_copy(maj, hm);
    Kokkos::deep_copy(_acc, ha);
    _collider->set_majorants(maj);
}

namespace {
/// Contiguous blocks of slabs for P ranks, weighted by w (particles per slab): boundary r at the
/// slab where the running sum comes closest to r W / P, every rank keeping at least one slab when
/// there are at least P. The same on every rank (integer sums, same inputs).
std::vector<std::int64_t> balanced_bounds(const std::vector<std::int64_t>& w, int P) {
    const auto na = static_cast<std::int64_t>(w.size());
    std::vector<std::int64_t> prefix(w.size() + 1, 0);
    for (std::size_t s = 0; s < w.size(); ++s)
        prefix[s + 1] = prefix[s] + w[s];
    const double total = static_cast<double>(prefix.back());
    std::vector<std::int64_t> b(static_cast<std::size_t>(P) + 1, 0);
    b[static_cast<std::size_t>(P)] = na;
    const bool one_each = na >= P;
    for (int r = 1; r < P; ++r) {
        const double target = total * r / P;
        const std::int64_t lo = b[static_cast<std::size_t>(r) - 1] + (one_each ? 1 : 0);
        const std::int64_t hi = one_each ? na - (P - r) : na;
        std::int64_t s = lo;
        while (s < hi && static_cast<double>(prefix[static_cast<std::size_t>(s)]) < target)
            ++s;
        if (s > lo && target - static_cast<double>(prefix[static_cast<std::size_t>(s) - 1]) <
                          static_cast<double>(prefix[static_cast<std::size_t>(s)]) - target)
            --s;
        b[static_cast<std::size_t>(r)] = s;
    }
    return b;
}
} // namespace

void SpatialEngine::to_owners(ParticleSet& p) {
    _dest = comm::RankView();
    if (_comm.size() == 1)
        return;
    const Geometry G = geometry(_g, _dx, _axis, _ax_b, _ax_c, _s0, _s1, _comm.size(), _dbounds);
    comm::RankView dest(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::spatial_dest"), p.size());
    auto x = p.position;
    Kokkos::parallel_for(
        "kinflow::dsmc::spatial_owner", Kokkos::RangePolicy<ExecSpace>(0, p.size()),
        KOKKOS_LAMBDA(const std::size_t i) { dest(i) = G.owner(G.coord(G.axis, x(i, G.axis))); });
    comm::migrate(_comm, p, dest);
}

bool SpatialEngine::rebalance(ParticleSet& p) {
    const int P = _comm.size(), S = _params.n_species;
    if (P == 1)
        return false;
    // Particles per slab (from the cell index), on every rank.
    const std::int64_t per_slab = _g.cells[_ax_b] * _g.cells[_ax_c];
    const auto hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), _start);
    std::vector<std::int64_t> mine(static_cast<std::size_t>(_s1 - _s0));
    for (std::size_t l = 0; l < mine.size(); ++l)
        mine[l] = static_cast<std::int64_t>(hs((l + 1) * static_cast<std::size_t>(per_slab * S)) -
                                            hs(l * static_cast<std::size_t>(per_slab * S)));
    const auto w = _comm.allgatherv(mine);
    const auto max_load = [&](const std::vector<std::int64_t>& b) {
        std::int64_t m = 0, total = 0;
        for (int r = 0; r < P; ++r) {
            std::int64_t l = 0;
            for (auto s = b[static_cast<std::size_t>(r)]; s < b[static_cast<std::size_t>(r) + 1]; ++s)
                l += w[static_cast<std::size_t>(s)];
            m = std::max(m, l);
            total += l;
        }
        return total > 0 ? static_cast<double>(m) * P / static_cast<double>(total) : 1.0;
    };
    const double before = max_load(_bounds);
    if (!(before > _g.balance_threshold))
        return false;
    const auto b = balanced_bounds(w, P);
    const double after = max_load(b);
    if (b == _bounds || !(after < before))
        return false;
    _imbalance_before = before;
    _imbalance_after = after;
    ++_rebalances;
    // Per-cell state through its global slab order, particles to the new owners of their slabs.
    const auto state = gather_cell_state();
    set_slabs(b);
    scatter_cell_state(state);
    to_owners(p);
    index(p);
    return true;
}

double SpatialEngine::inflow_per_step(int f, int s, double dt) const {
    if (_g.face[f] != Face::Inflow)
        return 0.0;
    const int k = f / 2;
    double area = 1.0;
    for (int a = 0; a < 3; ++a)
        if (a != k)
            area *= _g.hi[a] - _g.lo[a];
    const auto S = static_cast<std::size_t>(s);
    const double c_m = std::sqrt(2.0 * _params.k_boltzmann * _g.inflow_temperature[f] / _params.mass[S]);
    const double sign = f % 2 == 0 ? 1.0 : -1.0;
    const double sr = sign * _g.inflow_velocity[f][k] / c_m;
    return maxwellian_flux(_g.inflow_density[f] * _params.fraction[S], c_m, sr) * area * dt / _g.weight;
}

void SpatialEngine::init_from_file(ParticleSet& p) {
    const int S = _params.n_species;
    if (p.vdim != 3)
        throw Error(p.vdim == 0 ? std::string("no 'velocity' dataset (space = grid needs positions and velocities)")
                                : "'velocity' has " + std::to_string(p.vdim) + " components, space = grid needs 3");
    if (p.dim != 3)
        throw Error("'position' has " + std::to_string(p.dim) + " columns, space = grid needs 3");
    if (!p.with_species) {
        if (S > 1)
            throw Error("no 'species' dataset, and dsmc.species names " + std::to_string(S) + " species");
        p.species = SpeciesView("kinflow::dsmc::spatial::species", p.size()); // all species 0
        p.with_species = true;
    }
    const Geometry G = geometry(_g, _dx, _axis, _ax_b, _ax_c, _s0, _s1, _comm.size(), _dbounds);
    auto x = p.position;
    auto sp = p.species;
    auto id = p.id;
    std::int64_t outside = 0, bad_species = 0, max_id = -1;
    Kokkos::parallel_reduce(
        "kinflow::dsmc::spatial_check_file", Kokkos::RangePolicy<ExecSpace>(0, p.size()),
        KOKKOS_LAMBDA(const std::size_t i, std::int64_t& out, std::int64_t& bad, std::int64_t& mx) {
            for (int a = 0; a < 3; ++a)
                if (!(x(i, a) >= G.lo[a] && x(i, a) <= G.hi[a])) { // NaN too
                    ++out;
                    break;
                }
            if (sp(i) < 0 || sp(i) >= S)
                ++bad;
            if (id(i) > mx)
                mx = id(i);
        },
        Kokkos::Sum<std::int64_t>(outside), Kokkos::Sum<std::int64_t>(bad_species), Kokkos::Max<std::int64_t>(max_id));
    outside = _comm.sum(outside);
    bad_species = _comm.sum(bad_species);
    if (outside > 0)
        throw Error(std::to_string(outside) + " particles lie outside the box dsmc.box_lo..box_hi");
    if (bad_species > 0)
        throw Error(std::to_string(bad_species) + " particles have a species index outside [0, " + std::to_string(S) +
                    ") (dsmc.species names " + std::to_string(S) + ")");
    _n_global = _comm.sum(static_cast<std::int64_t>(p.size()));
    _next_id = _comm.max(max_id) + 1; // inserted particles get ids after the file's
    p.n_global = _n_global;
    to_owners(p);
}

void SpatialEngine::init(ParticleSet& p) {
    const int S = _params.n_species;
    if (_params.init[0] == Init::File) {
        init_from_file(p);
        reset_totals();
        index(p);
        return;
    }
    const double kB = _params.k_boltzmann;
    // Poisson counts of every cell (all cells, on every rank: the ids are a global prefix).
    const CounterRng count_rng(_seed, kInitCount);
    const double x0 = _g.riemann ? _g.riemann_x0 : _g.hi[0];
    const Geometry G = geometry(_g, _dx, _axis, _ax_b, _ax_c, _s0, _s1, _comm.size(), _dbounds);
    std::vector<InitBatch> batches;
    std::int64_t next = 0, local_total = 0;
    for (std::int64_t iz = 0; iz < _g.cells[2]; ++iz)
        for (std::int64_t iy = 0; iy < _g.cells[1]; ++iy)
            for (std::int64_t ix = 0; ix < _g.cells[0]; ++ix) {
                const std::int64_t gcell = ix + _g.cells[0] * (iy + _g.cells[1] * iz);
                const std::int64_t i[3] = {ix, iy, iz};
                const bool mine = i[_axis] >= _s0 && i[_axis] < _s1;
                const double xa = _g.lo[0] + static_cast<double>(ix) * _dx[0];
                const double xb = ix + 1 == _g.cells[0] ? _g.hi[0] : xa + _dx[0];
                for (int part = 0; part < 2; ++part) {
                    const double pa = part == 0 ? xa : std::max(xa, x0);
                    const double pb = part == 0 ? std::min(xb, x0) : xb;
                    if (!(pb > pa))
                        continue;
                    const double n = part == 0 ? _params.number_density : _g.density_right;
                    for (int s = 0; s < S; ++s) {
                        const auto SS = static_cast<std::size_t>(s);
                        const double lambda =
                            n * _params.fraction[SS] * _cell_volume * (pb - pa) / _dx[0] / _g.weight;
                        double u[4];
                        count_rng.uniform4(0, static_cast<std::uint64_t>(gcell),
                                           static_cast<std::uint32_t>(part * kMaxSpecies + s), u);
                        const std::int64_t c = poisson(lambda, u);
                        if (c > 0 && mine) {
                            InitBatch b{};
                            b.local = G.local_cell(i);
                            b.first_id = next;
                            b.count = c;
                            b.xa = pa;
                            b.xb = pb;
                            b.T = part == 0 ? _params.temperature[SS] : _g.temperature_right;
                            for (int k = 0; k < 3; ++k)
                                b.u[k] = part == 0 ? _params.drift[SS][static_cast<std::size_t>(k)] : _g.drift_right[k];
                            b.species = s;
                            batches.push_back(b);
                            local_total += c;
                        }
                        next += c;
                    }
                }
            }
    _next_id = next;
    _n_global = next;
    p.allocate(static_cast<std::size_t>(local_total), 3, 3, true, "kinflow::dsmc::spatial");
    p.n_global = next;
    Kokkos::View<InitBatch*, MemSpace> bv("kinflow::dsmc::spatial_init_batches", batches.size());
    Kokkos::View<std::int64_t*, MemSpace> row("kinflow::dsmc::spatial_init_rows", batches.size());
    {
        auto hb = Kokkos::create_mirror_view(bv);
        auto hr = Kokkos::create_mirror_view(row);
        std::int64_t r = 0;
        for (std::size_t k = 0; k < batches.size(); ++k) {
            hb(k) = batches[k];
            hr(k) = r;
            r += batches[k].count;
        }
        Kokkos::deep_copy(bv, hb);
        Kokkos::deep_copy(row, hr);
    }
    Masses ms;
    for (int s = 0; s < S; ++s)
        ms.m[s] = _params.mass[static_cast<std::size_t>(s)];
    auto x = p.position;
    auto v = p.velocity;
    auto id = p.id;
    auto sp = p.species;
    auto gidv = _gid;
    const CounterRng rng(_seed, kInitParticle);
    Kokkos::parallel_for(
        "kinflow::dsmc::spatial_init", Kokkos::RangePolicy<ExecSpace>(0, batches.size()),
        KOKKOS_LAMBDA(const std::size_t bi) {
            const InitBatch b = bv(bi);
            const std::int64_t gc = gidv(static_cast<std::size_t>(b.local));
            const std::int64_t ic[3] = {gc % G.n[0], (gc / G.n[0]) % G.n[1], gc / (G.n[0] * G.n[1])};
            const double sigma = math::sqrt(kB * b.T / ms.m[b.species]);
            for (std::int64_t k = 0; k < b.count; ++k) {
                const auto r = static_cast<std::size_t>(row(bi) + k);
                const std::int64_t pid = b.first_id + k;
                double u[4], z[4];
                rng.uniform4(0, static_cast<std::uint64_t>(pid), 0, u);
                rng.normal4(0, static_cast<std::uint64_t>(pid), 1, z);
                x(r, 0) = b.xa + u[0] * (b.xb - b.xa);
                for (int a = 1; a < 3; ++a)
                    x(r, a) = G.lo[a] + (static_cast<double>(ic[a]) + u[a]) * G.dx[a];
                for (int a = 0; a < 3; ++a)
                    v(r, a) = b.u[a] + sigma * z[a];
                id(r) = pid;
                sp(r) = b.species;
            }
        });
    reset_totals();
    index(p);
}

void SpatialEngine::reset_totals() {
    _collisions = 0;
    _samples = 0;
    _inflow = {};
    _flux_time = 0.0;
    Kokkos::deep_copy(_acc, 0.0);
    Kokkos::deep_copy(_wall, 0.0);
    Kokkos::deep_copy(_outflow, 0);
}

EngineState SpatialEngine::state() const {
    EngineState st;
    st.set("cell_state", gather_cell_state());
    std::vector<double> counters{static_cast<double>(_next_id), static_cast<double>(_samples), _flux_time,
                                 static_cast<double>(_n_global), static_cast<double>(_rebalances)};
    for (auto v : _inflow)
        counters.push_back(static_cast<double>(v)); // ids and counts < 2^53: exact
    st.set("counters", std::move(counters));
    st.set("slab_bounds", std::vector<double>(_bounds.begin(), _bounds.end()));
    // This rank's face sums and collisions: bit patterns per rank (exact on the same rank count),
    // their sums over ranks for another rank count.
    auto hw = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), _wall);
    auto ho = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), _outflow);
    std::vector<std::int64_t> bits;
    std::vector<double> sums;
    for (int f = 0; f < 6; ++f)
        for (int k = 0; k < 4; ++k) {
            std::int64_t b;
            std::memcpy(&b, &hw(f, k), sizeof b);
            bits.push_back(b);
            sums.push_back(hw(f, k));
        }
    for (int f = 0; f < 6; ++f) {
        bits.push_back(ho(f));
        sums.push_back(static_cast<double>(ho(f)));
    }
    bits.push_back(_collisions);
    sums.push_back(static_cast<double>(_collisions));
    _comm.sum(sums);
    st.set_rank("face_sums", std::move(bits));
    st.set("face_sums", std::move(sums));
    return st;
}

void SpatialEngine::resume(ParticleSet& p, const EngineState& state) {
    KINFLOW_REQUIRE(p.dim == 3 && p.vdim == 3 && p.has_species(), "checkpoint particles are not spatial DSMC particles");
    const auto& c = state.get("counters");
    KINFLOW_REQUIRE(c.size() == 11, "checkpoint: counters has the wrong size");
    _next_id = static_cast<std::int64_t>(c[0]);
    _samples = static_cast<std::int64_t>(c[1]);
    _flux_time = c[2];
    _n_global = static_cast<std::int64_t>(c[3]);
    _rebalances = static_cast<std::int64_t>(c[4]);
    for (std::size_t f = 0; f < 6; ++f)
        _inflow[f] = static_cast<std::int64_t>(c[5 + f]);
    const auto& b = state.get("slab_bounds");
    if (b.size() == static_cast<std::size_t>(_comm.size()) + 1) // the same rank count: its slabs
        set_slabs(std::vector<std::int64_t>(b.begin(), b.end()));
    scatter_cell_state(state.get("cell_state"));
    auto hw = Kokkos::create_mirror_view(_wall);
    auto ho = Kokkos::create_mirror_view(_outflow);
    if (!state.per_rank.empty()) {
        const auto& bits = state.get_rank("face_sums");
        KINFLOW_REQUIRE(bits.size() == 31, "checkpoint: face_sums has the wrong size");
        for (int f = 0; f < 6; ++f) {
            for (int k = 0; k < 4; ++k)
                std::memcpy(&hw(f, k), &bits[static_cast<std::size_t>(4 * f + k)], sizeof(double));
            ho(f) = bits[static_cast<std::size_t>(24 + f)];
        }
        _collisions = bits[30];
    } else { // another rank count: the sums on rank 0
        const auto& sums = state.get("face_sums");
        KINFLOW_REQUIRE(sums.size() == 31, "checkpoint: face_sums has the wrong size");
        const double r0 = _comm.is_root() ? 1.0 : 0.0;
        for (int f = 0; f < 6; ++f) {
            for (int k = 0; k < 4; ++k)
                hw(f, k) = r0 * sums[static_cast<std::size_t>(4 * f + k)];
            ho(f) = static_cast<std::int64_t>(r0 * sums[static_cast<std::size_t>(24 + f)]);
        }
        _collisions = static_cast<std::int64_t>(r0 * sums[30]);
    }
    Kokkos::deep_copy(_wall, hw);
    Kokkos::deep_copy(_outflow, ho);
    KINFLOW_REQUIRE(_comm.sum(static_cast<std::int64_t>(p.size())) == _n_global, "checkpoint: particle count mismatch");
    p.n_global = _n_global;
    to_owners(p);
    index(p);
}

void SpatialEngine::emit_and_move(ParticleSet& p, std::int64_t step, double dt) {
    const int S = _params.n_species;
    const double kB = _params.k_boltzmann;
    const auto n_step = static_cast<std::uint64_t>(step);
    const Geometry G = geometry(_g, _dx, _axis, _ax_b, _ax_c, _s0, _s1, _comm.size(), _dbounds);
    // Emission counts (the same on every rank): floor(E) or floor(E) + 1 per face and species.
    EmitTable et;
    const CounterRng count_rng(_seed, kInflowCount);
    std::int64_t total = 0;
    for (int f = 0; f < 6; ++f) {
        if (_g.face[f] != Face::Inflow)
            continue;
        for (int s = 0; s < S; ++s) {
            const double E = inflow_per_step(f, s, dt);
            double u[4];
            count_rng.uniform4(n_step, static_cast<std::uint64_t>(f * kMaxSpecies + s), 0, u);
            if (!(E <= 1e3 * static_cast<double>(std::max<std::int64_t>(p.n_global, 1000))))
                throw Error("dsmc: inflow face " + std::to_string(f) + " would emit " + format_number(E) +
                            " particles per step, over 1000 x the particles in the box: check run.dt, "
                            "dsmc.inflow_density and dsmc.weight");
            const double fl = std::floor(E);
            const auto N = static_cast<std::int64_t>(fl) + (u[0] < E - fl ? 1 : 0);
            EmitBatch& b = et.b[et.n];
            b.face = f;
            b.species = s;
            b.first_id = _next_id + total;
            b.count = N;
            b.c_m = std::sqrt(2.0 * kB * _g.inflow_temperature[f] / _params.mass[static_cast<std::size_t>(s)]);
            b.s = (f % 2 == 0 ? 1.0 : -1.0) * _g.inflow_velocity[f][f / 2] / b.c_m;
            for (int k = 0; k < 3; ++k)
                b.n_u[k] = _g.inflow_velocity[f][k];
            et.offset[et.n + 1] = et.offset[et.n] + N;
            ++et.n;
            total += N;
            _inflow[static_cast<std::size_t>(f)] += N;
        }
    }
    _next_id += total;
    Masses ms;
    for (int s = 0; s < S; ++s)
        ms.m[s] = _params.mass[static_cast<std::size_t>(s)];
    const CounterRng emit_rng(_seed, kInflowParticle);
    const int me = _comm.rank();
    // Candidates that start in this rank's slabs, and their rows.
    SizeView at("kinflow::dsmc::spatial_emit_rows", static_cast<std::size_t>(total) + 1);
    Kokkos::parallel_scan(
        "kinflow::dsmc::spatial_emit_scan", Kokkos::RangePolicy<ExecSpace>(0, static_cast<std::size_t>(total) + 1),
        KOKKOS_LAMBDA(const std::size_t k, std::size_t& sum, const bool final) {
            if (final)
                at(k) = sum;
            if (k == static_cast<std::size_t>(total))
                return;
            int bi = 0;
            while (static_cast<std::int64_t>(k) >= et.offset[bi + 1])
                ++bi;
            const EmitBatch& b = et.b[bi];
            const std::uint64_t pid = static_cast<std::uint64_t>(b.first_id + static_cast<std::int64_t>(k) - et.offset[bi]);
            double x[3], v[3], frac;
            emitted(G, b, emit_rng, n_step, pid, 0.5 * b.c_m * b.c_m, x, v, frac);
            if (G.owner(G.coord(G.axis, x[G.axis])) == me)
                ++sum;
        });
    std::size_t n_new = 0;
    Kokkos::deep_copy(n_new, Kokkos::subview(at, static_cast<std::size_t>(total)));
    const std::size_t n_old = p.size();
    ParticleSet q = with_room(p, n_new); // new rows [n_old, n_old + n_new) after the old ones
    const auto tau_new = rows_of(_tau, n_new, "kinflow::dsmc::spatial_tau");
    {
        auto x = q.position;
        auto v = q.velocity;
        auto id = q.id;
        auto sp = q.species;
        Kokkos::parallel_for(
            "kinflow::dsmc::spatial_emit", Kokkos::RangePolicy<ExecSpace>(0, static_cast<std::size_t>(total)),
            KOKKOS_LAMBDA(const std::size_t k) {
                if (at(k + 1) == at(k))
                    return;
                int bi = 0;
                while (static_cast<std::int64_t>(k) >= et.offset[bi + 1])
                    ++bi;
                const EmitBatch& b = et.b[bi];
                const std::int64_t pid = b.first_id + static_cast<std::int64_t>(k) - et.offset[bi];
                double xx[3], vv[3], frac;
                emitted(G, b, emit_rng, n_step, static_cast<std::uint64_t>(pid), 0.5 * b.c_m * b.c_m, xx, vv, frac);
                const std::size_t r = n_old + at(k);
                for (int a = 0; a < 3; ++a) {
                    x(r, a) = xx[a];
                    v(r, a) = vv[a];
                }
                id(r) = pid;
                sp(r) = b.species;
                tau_new(at(k)) = frac * dt; // a random fraction of its first step
            });
    }
    // Free flight of every row.
    const auto dest = rows_of(_dest_rows, n_old + n_new, "kinflow::dsmc::spatial_dest");
    {
        auto x = q.position;
        auto v = q.velocity;
        auto id = q.id;
        auto sp = q.species;
        auto wall = _wall;
        auto outflow = _outflow;
        const CounterRng wall_rng(_seed, kWall);
        const double weight = _g.weight;
        Kokkos::parallel_for(
            "kinflow::dsmc::spatial_move", Kokkos::RangePolicy<ExecSpace>(0, n_old + n_new),
            KOKKOS_LAMBDA(const std::size_t i) {
                double xx[3] = {x(i, 0), x(i, 1), x(i, 2)}, vv[3] = {v(i, 0), v(i, 1), v(i, 2)};
                const double tau = i < n_old ? dt : tau_new(i - n_old);
                const int left =
                    fly(G, wall_rng, n_step, static_cast<std::uint64_t>(id(i)), ms.m[sp(i)], kB, xx, vv, tau, weight, wall);
                for (int a = 0; a < 3; ++a) {
                    x(i, a) = xx[a];
                    v(i, a) = vv[a];
                }
                if (left >= 0) {
                    Kokkos::atomic_add(&outflow(left), std::int64_t{1});
                    dest(i) = -1;
                } else {
                    dest(i) = G.owner(G.coord(G.axis, xx[G.axis]));
                }
            });
    }
    p = q;
    exchange(p, dest);
}

ParticleSet SpatialEngine::with_room(const ParticleSet& p, std::size_t extra) {
    if (extra == 0)
        return p;
    const std::size_t n = p.size(), m = n + extra;
    int t = p.id.data() == _store[1].id.data() && _store[1].size() > 0 ? 1 : 0; // the store p occupies (or 0)
    if (p.id.data() != _store[t].id.data() || _store[t].size() < m) {
        ParticleSet fresh = allocate_rows(with_slack(m), p.n_global);
        copy_rows(p, fresh, n);
        _store[t] = fresh;
    }
    return leading_rows(_store[t], m, p);
}

void SpatialEngine::exchange(ParticleSet& p, const comm::RankView& dest) {
    const int P = _comm.size(), me = _comm.rank();
    const std::size_t n = p.size();
    const Leaving out = leaving(dest, me);
    std::size_t n_recv = 0;
    if (P > 1) {
        // Pack the leavers on the device, order them by destination on the host, one exchange.
        const auto ns = static_cast<std::size_t>(out.sent);
        const auto list = rows_of(_leavers, ns, "kinflow::dsmc::spatial_leavers");
        if (_pack_x.extent(0) < ns) {
            _pack_x = VectorView(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::spatial_pack_x"),
                                 with_slack(ns), 6);
            _pack_i = Kokkos::View<std::int64_t**, Kokkos::LayoutRight, MemSpace>(
                Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::spatial_pack_i"), with_slack(ns), 2);
        }
        const auto rows = std::make_pair(std::size_t{0}, ns);
        const VectorView xv = Kokkos::subview(_pack_x, rows, Kokkos::ALL());
        const Kokkos::View<std::int64_t**, Kokkos::LayoutRight, MemSpace> is =
            Kokkos::subview(_pack_i, rows, Kokkos::ALL());
        const auto rank = rows_of(_pack_rank, ns, "kinflow::dsmc::spatial_pack_rank");
        pack_leavers(p, dest, me, list, xv, is, rank);
        const auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), xv);
        const auto hi = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), is);
        const auto hr = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), rank);
        std::vector<std::int64_t> send_rows(static_cast<std::size_t>(P), 0);
        for (std::size_t k = 0; k < ns; ++k)
            ++send_rows[static_cast<std::size_t>(hr(k))];
        std::vector<std::size_t> cursor(static_cast<std::size_t>(P), 0);
        for (std::size_t q = 1; q < static_cast<std::size_t>(P); ++q)
            cursor[q] = cursor[q - 1] + static_cast<std::size_t>(send_rows[q - 1]);
        _send_words.resize(ns * kRecord);
        for (std::size_t k = 0; k < ns; ++k) { // stable by destination
            std::uint64_t* r = &_send_words[cursor[static_cast<std::size_t>(hr(k))]++ * kRecord];
            std::memcpy(r, &hx(k, 0), 6 * sizeof(double));
            std::memcpy(r + 6, &hi(k, 0), 2 * sizeof(std::int64_t));
        }
        n_recv = comm::exchange_records(_comm, _send_words, send_rows, kRecord, _recv_words);
        // Received rows after this rank's (dest, sized n, leaves them in place; index() sorts by cell and id).
        ParticleSet q = with_room(p, n_recv);
        const auto tail = std::make_pair(n, n + n_recv);
        auto gx = Kokkos::create_mirror_view(Kokkos::subview(q.position, tail, Kokkos::ALL()));
        auto gv = Kokkos::create_mirror_view(Kokkos::subview(q.velocity, tail, Kokkos::ALL()));
        auto gi = Kokkos::create_mirror_view(Kokkos::subview(q.id, tail));
        auto gs = Kokkos::create_mirror_view(Kokkos::subview(q.species, tail));
        for (std::size_t k = 0; k < n_recv; ++k) {
            const std::uint64_t* r = &_recv_words[k * kRecord];
            std::memcpy(&gx(k, 0), r, 3 * sizeof(double));
            std::memcpy(&gv(k, 0), r + 3, 3 * sizeof(double));
            std::int64_t w[2];
            std::memcpy(w, r + 6, sizeof w);
            gi(k) = w[0];
            gs(k) = static_cast<std::int32_t>(w[1]);
        }
        Kokkos::deep_copy(Kokkos::subview(q.position, tail, Kokkos::ALL()), gx);
        Kokkos::deep_copy(Kokkos::subview(q.velocity, tail, Kokkos::ALL()), gv);
        Kokkos::deep_copy(Kokkos::subview(q.id, tail), gi);
        Kokkos::deep_copy(Kokkos::subview(q.species, tail), gs);
        p = q;
    }
    _dest = dest; // index() drops the rows deleted or sent away
    const auto kept = static_cast<std::int64_t>(n + n_recv) - out.deleted - out.sent;
    _n_global = P > 1 ? _comm.sum(kept) : kept;
}

void SpatialEngine::index(ParticleSet& p) {
    const int S = _params.n_species;
    const std::size_t n = p.size();
    const std::size_t nb = static_cast<std::size_t>(_ncell_local) * static_cast<std::size_t>(S);
    const Geometry G = geometry(_g, _dx, _axis, _ax_b, _ax_c, _s0, _s1, _comm.size(), _dbounds);
    const auto bucket = rows_of(_bucket, n, "kinflow::dsmc::spatial_bucket");
    const auto start = rows_of(_start_rows, nb + 1, "kinflow::dsmc::spatial_start");
    Kokkos::deep_copy(start, std::size_t{0});
    Kokkos::View<int, MemSpace> bad("kinflow::dsmc::spatial_bad");
    auto x = p.position;
    auto sp = p.species;
    auto id = p.id;
    const comm::RankView dest = _dest.extent(0) <= n ? _dest : comm::RankView();
    const std::size_t nd = dest.extent(0); // rows [0, nd) with dest < 0 are dropped (deleted or sent away)
    // count
    Kokkos::parallel_for(
        "kinflow::dsmc::spatial_count", Kokkos::RangePolicy<ExecSpace>(0, n), KOKKOS_LAMBDA(const std::size_t i) {
            if (i < nd && dest(i) < 0) { // deleted at an outflow face or sent to another rank
                bucket(i) = nb;
                return;
            }
            std::int64_t c[3];
            for (int a = 0; a < 3; ++a)
                c[a] = G.coord(a, x(i, a));
            if (c[G.axis] < G.s0 || c[G.axis] >= G.s1) {
                bad() = 1;
                c[G.axis] = G.s0;
            }
            const auto b = static_cast<std::size_t>(G.local_cell(c)) * static_cast<std::size_t>(S) +
                           static_cast<std::size_t>(sp(i));
            bucket(i) = b;
            Kokkos::atomic_add(&start(b), std::size_t{1});
        });
    int h_bad = 0;
    Kokkos::deep_copy(h_bad, bad);
    KINFLOW_REQUIRE(h_bad == 0, "dsmc: a particle is outside this rank's cells after migration");
    // exclusive scan
    Kokkos::parallel_scan(
        "kinflow::dsmc::spatial_scan", Kokkos::RangePolicy<ExecSpace>(0, nb + 1),
        KOKKOS_LAMBDA(const std::size_t b, std::size_t& sum, const bool final) {
            const std::size_t c = b < nb ? start(b) : 0;
            if (final)
                start(b) = sum;
            sum += c;
        });
    // scatter (atomic cursors), then each bucket sorted by id: the order does not depend on threads or ranks
    const auto cursor = rows_of(_cursor, nb, "kinflow::dsmc::spatial_cursor");
    Kokkos::deep_copy(cursor, std::size_t{0});
    std::size_t kept = 0;
    Kokkos::deep_copy(kept, Kokkos::subview(start, nb));
    const auto order = rows_of(_order, kept, "kinflow::dsmc::spatial_order");
    Kokkos::parallel_for(
        "kinflow::dsmc::spatial_scatter", Kokkos::RangePolicy<ExecSpace>(0, n), KOKKOS_LAMBDA(const std::size_t i) {
            const std::size_t b = bucket(i);
            if (b == nb)
                return;
            order(start(b) + Kokkos::atomic_fetch_add(&cursor(b), std::size_t{1})) = i;
        });
    Kokkos::parallel_for(
        "kinflow::dsmc::spatial_sort_cells", Kokkos::RangePolicy<ExecSpace>(0, nb), KOKKOS_LAMBDA(const std::size_t b) {
            const std::size_t lo = start(b), hi = start(b + 1);
            if (hi - lo <= 24) { // insertion sort
                for (std::size_t k = lo + 1; k < hi; ++k) {
                    const std::size_t r = order(k);
                    const std::int64_t key = id(r);
                    std::size_t j = k;
                    while (j > lo && id(order(j - 1)) > key) {
                        order(j) = order(j - 1);
                        --j;
                    }
                    order(j) = r;
                }
                return;
            }
            // heapsort by id (in place, O(k log k): a bucket merges runs from neighbouring cells)
            const std::size_t m = hi - lo;
            for (std::size_t k = m / 2; k-- > 0;)
                sift_down(order, id, lo, k, m);
            for (std::size_t end = m - 1; end > 0; --end) {
                const std::size_t t = order(lo);
                order(lo) = order(lo + end);
                order(lo + end) = t;
                sift_down(order, id, lo, 0, end);
            }
        });
    // Gather into the storage the particles do not occupy (two full-capacity stores, ping-pong).
    const int target = _store[0].size() > 0 && p.id.data() == _store[0].id.data() ? 1 : 0;
    p = gather(p, order, _store[target]);
    p.n_global = _n_global;
    _dest = comm::RankView();
    _start = start;
}

void SpatialEngine::collide(ParticleSet& p, std::int64_t step, double dt) {
    if (!_g.collisions)
        return;
    const std::int64_t c = _collider->collide(p, _start, _gid, step, dt);
    if (_comm.any(c < 0))
        throw Error("run.dt = " + format_number(dt) + " is far too large for this gas: a cell would draw more than " +
                    format_number(kMaxCandidatesPerParticle) +
                    " NTC candidates per particle in one step (a step should be a fraction of a collision time)");
    _collisions += c;
}

void SpatialEngine::sample(const ParticleSet& p, const Sums& sums) const {
    const int S = _params.n_species;
    Masses ms;
    for (int s = 0; s < S; ++s)
        ms.m[s] = _params.mass[static_cast<std::size_t>(s)];
    auto start = _start;
    auto v = p.velocity;
    auto sp = p.species;
    Kokkos::parallel_for(
        "kinflow::dsmc::spatial_sample", Kokkos::RangePolicy<ExecSpace>(0, static_cast<std::size_t>(_ncell_local)),
        KOKKOS_LAMBDA(const std::size_t c) {
            double a[kSums];
            for (int k = 0; k < kSums; ++k)
                a[k] = 0.0;
            const std::size_t S_ = static_cast<std::size_t>(S);
            for (std::size_t i = start(c * S_); i < start(c * S_ + S_); ++i) { // in id order
                const double m = ms.m[sp(i)];
                const double w[3] = {v(i, 0), v(i, 1), v(i, 2)};
                const double w2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2];
                a[0] += 1.0;
                a[1] += m;
                for (int k = 0; k < 3; ++k) {
                    a[2 + k] += m * w[k];
                    a[5 + k] += m * w[k] * w[k];
                    a[11 + k] += m * w2 * w[k];
                }
                a[8] += m * w[0] * w[1];
                a[9] += m * w[0] * w[2];
                a[10] += m * w[1] * w[2];
            }
            for (int k = 0; k < kSums; ++k)
                sums(c, k) += a[k];
        });
}

void SpatialEngine::step(ParticleSet& p, std::int64_t step, double dt) {
    if (step == _g.average_from) { // the face totals restart with the time average
        _inflow = {};
        Kokkos::deep_copy(_wall, 0.0);
        Kokkos::deep_copy(_outflow, 0);
        _flux_time = 0.0;
    }
    // emit → move (boundaries) → migrate → index → sample → collide → sample
    emit_and_move(p, step, dt);
    index(p);
    // Time averages take each step's cells before and after the collisions: a flight carries the
    // post-collision heat flux and stress plus half of what streaming builds in dt, so post-collision
    // samples alone read the transported q and P_xy low by O(dt) (6 % and 9 % at dt = tau/4 in the
    // Fourier and Couette decks); the mean of the two is the flight average to O(dt^2). Density,
    // velocity and temperature are the same in both (collisions conserve them per cell).
    const bool averaging = _g.average_from >= 0 && step >= _g.average_from;
    if (averaging)
        sample(p, _acc);
    collide(p, step, dt);
    _flux_time += dt;
    if (averaging) {
        sample(p, _acc);
        _samples += 2;
    }
    if (_g.balance_every > 0 && (step + 1) % _g.balance_every == 0)
        rebalance(p);
}

std::int64_t SpatialEngine::collisions() const { return _comm.sum(_collisions); }

FaceTotals SpatialEngine::face_totals() const {
    FaceTotals t;
    auto hw = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), _wall);
    auto ho = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), _outflow);
    std::vector<double> w(24);
    for (int f = 0; f < 6; ++f)
        for (int k = 0; k < 4; ++k)
            w[static_cast<std::size_t>(4 * f + k)] = hw(f, k);
    _comm.sum(w);
    for (int f = 0; f < 6; ++f) {
        const auto F = static_cast<std::size_t>(f);
        t.inflow[F] = _inflow[F];
        t.outflow[F] = _comm.sum(ho(f));
        for (int k = 0; k < 4; ++k)
            t.wall[F][static_cast<std::size_t>(k)] = w[4 * F + static_cast<std::size_t>(k)];
    }
    return t;
}

Diagnostics SpatialEngine::diagnostics(const ParticleSet& p) const {
    Masses ms;
    for (int s = 0; s < _params.n_species; ++s)
        ms.m[s] = _params.mass[static_cast<std::size_t>(s)];
    auto v = p.velocity;
    auto sp = p.species;
    double e = 0, px = 0, py = 0, pz = 0;
    Kokkos::parallel_reduce(
        "kinflow::dsmc::spatial_energy", Kokkos::RangePolicy<ExecSpace>(0, p.size()),
        KOKKOS_LAMBDA(const std::size_t i, double& ee, double& a, double& b, double& c) {
            const double m = ms.m[sp(i)];
            ee += 0.5 * m * (v(i, 0) * v(i, 0) + v(i, 1) * v(i, 1) + v(i, 2) * v(i, 2));
            a += m * v(i, 0);
            b += m * v(i, 1);
            c += m * v(i, 2);
        },
        Kokkos::Sum<double>(e), Kokkos::Sum<double>(px), Kokkos::Sum<double>(py), Kokkos::Sum<double>(pz));
    std::vector<double> sums{e, px, py, pz};
    _comm.sum(sums);
    const auto t = face_totals();
    Diagnostics out;
    out.emplace_back("particles", static_cast<double>(_comm.sum(static_cast<std::int64_t>(p.size()))));
    out.emplace_back("collisions", static_cast<double>(collisions()));
    out.emplace_back("kinetic_energy", sums[0]);
    out.emplace_back("momentum_x", sums[1]);
    out.emplace_back("momentum_y", sums[2]);
    out.emplace_back("momentum_z", sums[3]);
    static const char* const names[6] = {"xlo", "xhi", "ylo", "yhi", "zlo", "zhi"};
    for (int f = 0; f < 6; ++f) {
        const auto F = static_cast<std::size_t>(f);
        double area = 1.0;
        for (int a = 0; a < 3; ++a)
            if (a != f / 2)
                area *= _g.hi[a] - _g.lo[a];
        const double norm = _flux_time > 0.0 ? 1.0 / (area * _flux_time) : 0.0;
        const std::string n = names[f];
        out.emplace_back("inflow_" + n, static_cast<double>(t.inflow[F]));
        out.emplace_back("outflow_" + n, static_cast<double>(t.outflow[F]));
        for (int k = 0; k < 3; ++k)
            out.emplace_back("wall_" + n + "_force_" + "xyz"[k], t.wall[F][static_cast<std::size_t>(k)] * norm);
        out.emplace_back("wall_" + n + "_energy_flux", t.wall[F][3] * norm);
    }
    out.emplace_back("flux_time", _flux_time);
    const auto n_local = static_cast<std::int64_t>(p.size());
    const std::int64_t n_all = _comm.sum(n_local), n_max = _comm.max(n_local);
    out.emplace_back("load_imbalance", n_all > 0 ? static_cast<double>(n_max) * _comm.size() / static_cast<double>(n_all) : 1.0);
    out.emplace_back("rebalances", static_cast<double>(_rebalances));
    return out;
}

CellFields SpatialEngine::fields(const ParticleSet& p) const {
    Sums sums("kinflow::dsmc::spatial_fields", static_cast<std::size_t>(_ncell_local), kSums);
    std::int64_t samples = _samples;
    if (samples > 0) {
        Kokkos::deep_copy(sums, _acc);
    } else {
        sample(p, sums);
        samples = 1;
    }
    auto hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), sums);
    auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), _gid);
    std::vector<double> local(hs.data(), hs.data() + hs.size());
    std::vector<std::int64_t> lg(hg.data(), hg.data() + hg.size());
    const auto all = _comm.size() > 1 ? _comm.allgatherv(local) : local;
    const auto gids = _comm.size() > 1 ? _comm.allgatherv(lg) : lg;
    const auto N = static_cast<std::size_t>(_ncell_global);
    CellFields f;
    f.samples = _samples > 0 ? _samples / 2 : 1; // steps averaged (two sample sets per step)
    for (auto* v : {&f.number_density, &f.temperature, &f.temperature_x, &f.temperature_y, &f.temperature_z,
                    &f.pressure, &f.shear_stress_xy, &f.particles_per_cell})
        v->assign(N, 0.0);
    f.velocity.assign(3 * N, 0.0);
    f.heat_flux.assign(3 * N, 0.0);
    const double kB = _params.k_boltzmann;
    const double scale = _g.weight / (_cell_volume * static_cast<double>(samples)); // per volume, per sample
    for (std::size_t c = 0; c < gids.size(); ++c) {
        const auto g = static_cast<std::size_t>(gids[c]);
        const double* a = &all[c * kSums];
        f.particles_per_cell[g] = a[0] / static_cast<double>(samples);
        f.number_density[g] = a[0] * scale;
        if (!(a[1] > 0.0))
            continue;
        double u[3], C[3][3];
        for (int k = 0; k < 3; ++k)
            u[k] = a[2 + k] / a[1];
        C[0][0] = a[5];
        C[1][1] = a[6];
        C[2][2] = a[7];
        C[0][1] = C[1][0] = a[8];
        C[0][2] = C[2][0] = a[9];
        C[1][2] = C[2][1] = a[10];
        double P[3][3]; // sum m c_j c_k = sum m v_j v_k - M u_j u_k
        for (int j = 0; j < 3; ++j)
            for (int k = 0; k < 3; ++k)
                P[j][k] = C[j][k] - a[1] * u[j] * u[k];
        const double n = f.number_density[g];
        const double Tk[3] = {P[0][0] * scale / (n * kB), P[1][1] * scale / (n * kB), P[2][2] * scale / (n * kB)};
        for (int k = 0; k < 3; ++k)
            f.velocity[3 * g + static_cast<std::size_t>(k)] = u[k];
        f.temperature_x[g] = Tk[0];
        f.temperature_y[g] = Tk[1];
        f.temperature_z[g] = Tk[2];
        f.temperature[g] = (Tk[0] + Tk[1] + Tk[2]) / 3.0;
        f.pressure[g] = (P[0][0] + P[1][1] + P[2][2]) * scale / 3.0;
        f.shear_stress_xy[g] = P[0][1] * scale;
        // q_k = 1/2 sum m |c|^2 c_k = 1/2 [A_k - B u_k - 2 (C u)_k + 2 M |u|^2 u_k] (per volume)
        const double B = C[0][0] + C[1][1] + C[2][2];
        const double uu = u[0] * u[0] + u[1] * u[1] + u[2] * u[2];
        for (int k = 0; k < 3; ++k) {
            const double Cu = C[k][0] * u[0] + C[k][1] * u[1] + C[k][2] * u[2];
            f.heat_flux[3 * g + static_cast<std::size_t>(k)] =
                0.5 * (a[11 + k] - B * u[k] - 2.0 * Cu + 2.0 * a[1] * uu * u[k]) * scale;
        }
    }
    return f;
}

} // namespace kinflow::dsmc
