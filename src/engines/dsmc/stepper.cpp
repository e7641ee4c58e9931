// Collision steps of the DSMC engine, one template instantiation per (scheme, cross-section,
// scattering law); make_stepper() is the single factory that picks one (CabanaMD's mdfactory
// pattern). Work is per pair (Nanbu–Babovsky) or per collision group (NTC) and every random
// number is a counter-based draw keyed by global ids, so a rank's result does not depend on the
// thread count.
#include <algorithm>
#include <cmath>

#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/engines/dsmc/collision.hpp"
#include "kinflow/engines/dsmc/dsmc_engine.hpp"

namespace kinflow::dsmc::detail {

namespace {

/// Draws that pair particles (Nanbu–Babovsky) or assign them to collision groups (NTC).
constexpr RngPurpose kPairing = static_cast<RngPurpose>(static_cast<std::uint32_t>(RngPurpose::User) + 1);
/// Particles per NTC collision group (virtual collision cell) — see Ntc below.
constexpr std::size_t kGroupSize = 1024;
constexpr int kMaxPairs = kMaxSpecies * (kMaxSpecies + 1) / 2;
/// Largest n (sigma_T g)_max dt an NTC step accepts: twice the candidates per particle and step.
/// A physical time step makes it O(1) (a fraction of a collision time); a value beyond this comes
/// from inconsistent units or a huge dt and would make the step draw an astronomical number of
/// candidates (a hang, then an integer overflow).
constexpr double kMaxCandidateRate = 1000.0;

struct SpeciesMass {
    double m[kMaxSpecies] = {};
};
/// Per species-pair values indexed by pair_index (NTC majorants), copied into kernels.
struct PairValues {
    double v[kMaxPairs] = {};
};

/// Stable counting sort of local indices by bucket (0 <= bucket < nb): order(k) is the local index
/// at sorted position k, starts(b) the first position of bucket b (starts(nb) = n). Equal buckets
/// keep increasing local index, so the result is unique whatever the thread count: chunks of the
/// index range histogram their buckets, an exclusive scan over (bucket, chunk) gives every chunk
/// its place in every bucket, and each chunk then fills its places in order. O(n + chunks nb),
/// against O(n log n) for sorting keys (Kokkos::sort), which dominated the NTC step.
void stable_bucket_sort(const Kokkos::View<std::uint32_t*, MemSpace>& bucket, std::size_t nb,
                        Kokkos::View<std::size_t*, MemSpace>& order, Kokkos::View<std::size_t*, MemSpace>& starts) {
    const std::size_t n = bucket.extent(0);
    const std::size_t C = std::max<std::size_t>(1, std::min<std::size_t>(256, n / (4 * std::max<std::size_t>(nb, 1))));
    const std::size_t len = (n + C - 1) / C;
    Kokkos::View<std::size_t**, Kokkos::LayoutRight, MemSpace> place("kinflow::dsmc::bucket_place", nb, C);
    Kokkos::parallel_for(
        "kinflow::dsmc::bucket_count", Kokkos::RangePolicy<ExecSpace>(0, C), KOKKOS_LAMBDA(const std::size_t c) {
            const std::size_t e = (c + 1) * len < n ? (c + 1) * len : n;
            for (std::size_t i = c * len; i < e; ++i)
                ++place(bucket(i), c);
        });
    starts = Kokkos::View<std::size_t*, MemSpace>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::bucket_starts"), nb + 1);
    auto flat = Kokkos::View<std::size_t*, MemSpace>(place.data(), nb * C);
    auto st = starts;
    Kokkos::parallel_scan(
        "kinflow::dsmc::bucket_scan", Kokkos::RangePolicy<ExecSpace>(0, nb * C),
        KOKKOS_LAMBDA(const std::size_t j, std::size_t& sum, const bool final) {
            const std::size_t x = flat(j);
            if (final) {
                flat(j) = sum;
                if (j % C == 0)
                    st(j / C) = sum;
            }
            sum += x;
        });
    Kokkos::deep_copy(Kokkos::subview(starts, nb), n);
    order = Kokkos::View<std::size_t*, MemSpace>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::bucket_order"), n);
    auto ord = order;
    Kokkos::parallel_for(
        "kinflow::dsmc::bucket_fill", Kokkos::RangePolicy<ExecSpace>(0, C), KOKKOS_LAMBDA(const std::size_t c) {
            const std::size_t e = (c + 1) * len < n ? (c + 1) * len : n;
            for (std::size_t i = c * len; i < e; ++i)
                ord(place(bucket(i), c)++) = i;
        });
}

/// A uniformly random permutation of the local particles (Nanbu–Babovsky pairing): each particle
/// draws a bucket (about 16 particles per bucket) and a 32-bit key; a stable counting sort by
/// bucket followed by an insertion sort of every bucket by (key, local index) orders the particles
/// by (bucket, key) — i.i.d. draws, so every permutation is equally likely (up to key ties, broken
/// by index). Unique sort keys make the result independent of the thread count; O(N) work where
/// Kokkos::sort of 64-bit keys (used before) is O(N log N) and took most of the step.
Kokkos::View<std::size_t*, MemSpace> random_permutation(const ParticleSet& p, const CounterRng& rng, std::uint64_t step) {
    const std::size_t n = p.size();
    const std::size_t nb = std::max<std::size_t>(1, n / 16);
    Kokkos::View<std::uint32_t*, MemSpace> bucket(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::perm_bucket"), n);
    Kokkos::View<std::uint32_t*, MemSpace> key(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::perm_key"), n);
    auto id = p.id;
    Kokkos::parallel_for(
        "kinflow::dsmc::perm_draw", Kokkos::RangePolicy<ExecSpace>(0, n), KOKKOS_LAMBDA(const std::size_t i) {
            const auto r = rng.raw(step, static_cast<std::uint64_t>(id(i)), 0);
            std::size_t b = static_cast<std::size_t>(CounterRng::to_open_unit(r.v[0]) * static_cast<double>(nb));
            bucket(i) = static_cast<std::uint32_t>(b < nb ? b : nb - 1);
            key(i) = r.v[1];
        });
    Kokkos::View<std::size_t*, MemSpace> order, starts;
    stable_bucket_sort(bucket, nb, order, starts);
    // Within a bucket: sort the contiguous words key << 32 | local index (unique), then unpack.
    Kokkos::View<std::uint64_t*, MemSpace> word(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::perm_word"), n);
    Kokkos::parallel_for(
        "kinflow::dsmc::perm_words", Kokkos::RangePolicy<ExecSpace>(0, n), KOKKOS_LAMBDA(const std::size_t k) {
            word(k) = (static_cast<std::uint64_t>(key(order(k))) << 32) | static_cast<std::uint64_t>(order(k));
        });
    Kokkos::parallel_for(
        "kinflow::dsmc::perm_buckets", Kokkos::RangePolicy<ExecSpace>(0, nb), KOKKOS_LAMBDA(const std::size_t b) {
            const std::size_t lo = starts(b), hi = starts(b + 1);
            for (std::size_t k = lo + 1; k < hi; ++k) { // insertion sort (about 16 entries)
                const std::uint64_t x = word(k);
                std::size_t j = k;
                while (j > lo && word(j - 1) > x) {
                    word(j) = word(j - 1);
                    --j;
                }
                word(j) = x;
            }
            for (std::size_t k = lo; k < hi; ++k) order(k) = static_cast<std::size_t>(word(k) & 0xFFFFFFFFULL);
        });
    return order;
}

/// Nanbu–Babovsky (Babovsky, Eur. J. Mech. B 8, 41 (1989)): the local sub-ensemble is paired by
/// a random permutation (consecutive entries of random_permutation); pair (i, j) collides with
/// probability P = n sigma_T(g) g dt, so a particle collides at rate n <sigma_T g> = nu. The
/// expected moments follow the forward-Euler map of the moment equations: first order in dt,
/// e.g. m4 - 15 contracts by (1 - nu dt/3) per step for Maxwell molecules. With an odd count one
/// random particle sits out the step.
template <class CS, class Scat> class NanbuBabovsky final : public StepperBase {
  public:
    NanbuBabovsky(const comm::Communicator& comm, const Params& p, CS cs, Scat scat, std::uint64_t seed)
        : _comm(comm), _n(p.number_density), _cs(cs), _scat(scat), _pairing(seed, kPairing),
          _rng(seed, RngPurpose::Collision) {
        for (int s = 0; s < p.n_species; ++s)
            _mass.m[s] = p.mass[static_cast<std::size_t>(s)];
    }

    void prepare(const std::vector<double>&) override {}
    double sigma_g(int s, int r, double g) const override { return _cs(s, r, g * g); }
    double majorant(int) const override { return 0.0; }
    void set_majorant(int, double) override {}

    StepCounts collide(ParticleSet& p, std::int64_t step, double dt) override {
        const auto n_step = static_cast<std::uint64_t>(step);
        const std::size_t npairs = p.size() / 2;
        const auto order = random_permutation(p, _pairing, n_step);
        const CS cs = _cs;
        const Scat scat = _scat;
        const SpeciesMass sm = _mass;
        const CounterRng rng = _rng;
        const double ndt = _n * dt;
        auto vel = p.velocity;
        auto id = p.id;
        auto sp = p.species;
        std::int64_t ncoll = 0;
        double pmax = 0.0;
        Kokkos::parallel_reduce(
            "kinflow::dsmc::nanbu_babovsky", Kokkos::RangePolicy<ExecSpace>(0, npairs),
            KOKKOS_LAMBDA(const std::size_t k, std::int64_t& nc, double& pm) {
                const std::size_t a = order(2 * k), b = order(2 * k + 1);
                const int s = sp(a), r = sp(b);
                double v1[3] = {vel(a, 0), vel(a, 1), vel(a, 2)};
                double v2[3] = {vel(b, 0), vel(b, 1), vel(b, 2)};
                const double g2 = (v1[0] - v2[0]) * (v1[0] - v2[0]) + (v1[1] - v2[1]) * (v1[1] - v2[1]) +
                                  (v1[2] - v2[2]) * (v1[2] - v2[2]);
                const double P = ndt * cs(s, r, g2);
                if (P > pm)
                    pm = P;
                double u[4];
                rng.uniform4(n_step, static_cast<std::uint64_t>(id(a)), 0, u);
                if (u[0] < P) {
                    collide_pair(scat, s, r, sm.m[s], sm.m[r], v1, v2, u[1], u[2]);
                    for (int c = 0; c < 3; ++c) {
                        vel(a, c) = v1[c];
                        vel(b, c) = v2[c];
                    }
                    ++nc;
                }
            },
            Kokkos::Sum<std::int64_t>(ncoll), Kokkos::Max<double>(pmax));
        StepCounts out;
        out.collisions = ncoll;
        out.attempts = static_cast<std::int64_t>(npairs);
        // Every rank must learn whether some rank met P > 1, so that all stop together (for the
        // Maxwell kernel the deck check already guarantees P = collision_rate dt <= 1).
        out.max_probability = _comm.max(npairs > 0 ? pmax : 0.0);
        return out;
    }

  private:
    comm::Communicator _comm;
    double _n;
    CS _cs;
    Scat _scat;
    SpeciesMass _mass;
    CounterRng _pairing, _rng;
};

/// Bird's no-time-counter scheme (Bird 1994, ch. 11), sequential with replacement, for mixtures
/// with one majorant (sigma_T g)_max per species pair (Bird 1994, ch. 11, mixtures).
///
/// The local sub-ensemble is split at random into collision groups of about kGroupSize particles
/// (virtual cells of the homogeneous gas, regrouped every step: a counter-based draw per particle
/// and a stable counting sort) that are processed in parallel, each on a contiguous copy of its
/// velocities (gathered before, scattered back after: cache-resident candidates);
/// inside a group of M particles with N_s of species s, species pair t = (s, r) gets
/// w_t = N_s N_r (s != r) or N_s (N_s - 1)/2 (s = r) pairs x n/(M - 1) (sigma_T g)_max,t dt
/// expected candidates (the rate n sigma_T g/(M - 1) per pair makes each particle collide at its
/// physical frequency; the expectation over the random grouping is exact). The group draws
/// floor(W) or floor(W) + 1 candidates (W = sum_t w_t, unbiased rounding), each of pair type t with
/// probability w_t / W and uniform partners within the species blocks, accepted with
/// probability sigma_T g / (sigma_T g)_max,t; a candidate is processed after the previous one, so a
/// particle may collide several times in a step. For Maxwell molecules the collision count is then
/// independent of the velocities and the moments have no dt bias (m4 - 15 decays by e^{-nu dt/3}
/// per step, up to O(1/M)). The majorant used in a step is the one it started with (a candidate
/// above it is accepted with probability 1); the largest sigma_T g met by any candidate on any rank
/// raises it for the next step ("updated on the fly"; prepare() starts it at an upper bound from
/// the initial state, so this is rare).
template <class CS, class Scat> class Ntc final : public StepperBase {
  public:
    Ntc(const comm::Communicator& comm, const Params& p, CS cs, Scat scat, std::uint64_t seed)
        : _comm(comm), _n(p.number_density), _ns(p.n_species), _cs(cs), _scat(scat), _seed(seed),
          _pairing(seed, kPairing) {
        for (int s = 0; s < p.n_species; ++s)
            _mass.m[s] = p.mass[static_cast<std::size_t>(s)];
        for (int s = 0; s < _ns; ++s)
            for (int r = s; r < _ns; ++r)
                _maj.v[pair_index(s, r, _ns)] = cs(s, r, 1.0);
    }

    void prepare(const std::vector<double>& g_bound) override {
        double gmax = 0.0;
        for (double g : g_bound)
            gmax = std::max(gmax, g);
        for (int s = 0; s < _ns; ++s)
            for (int r = s; r < _ns; ++r) {
                const int t = pair_index(s, r, _ns);
                // A pair with no relative motion yet (cold species) starts at the gas-wide bound,
                // so that candidates are drawn and the majorant can adapt.
                const double g =
                    g_bound[static_cast<std::size_t>(t)] > 0.0 ? g_bound[static_cast<std::size_t>(t)] : gmax;
                _maj.v[t] = _cs(s, r, g * g);
            }
    }
    double sigma_g(int s, int r, double g) const override { return _cs(s, r, g * g); }
    double majorant(int t) const override { return _maj.v[t]; }
    void set_majorant(int t, double value) override { _maj.v[t] = value; }

    StepCounts collide(ParticleSet& p, std::int64_t step, double dt) override {
        const auto n_step = static_cast<std::uint64_t>(step);
        const std::size_t n = p.size();
        const int S = _ns;
        const int T = S * (S + 1) / 2;
        for (int t = 0; t < T; ++t) {
            const double rate = _n * dt * _maj.v[t];
            if (!(rate <= kMaxCandidateRate)) {
                throw Error("run.dt = " + format_number(dt) + " is far too large for this gas: n (sigma_T g)_max dt = " +
                            format_number(rate) + " > " + format_number(kMaxCandidateRate) +
                            " (a step should be a fraction of a collision time; check dsmc.units, number_density, "
                            "mass and d_ref)");
            }
        }
        const std::size_t G = std::max<std::size_t>(1, n / kGroupSize);

        // Random groups: bucket = group * S + species, each particle's group a counter-based draw;
        // a stable counting sort makes every group a contiguous run of species blocks.
        Kokkos::View<std::uint32_t*, MemSpace> bucket(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::group_bucket"), n);
        {
            auto id = p.id;
            auto sp = p.species;
            const CounterRng rng = _pairing;
            Kokkos::parallel_for(
                "kinflow::dsmc::group_draw", Kokkos::RangePolicy<ExecSpace>(0, n), KOKKOS_LAMBDA(const std::size_t i) {
                    const auto r = rng.raw(n_step, static_cast<std::uint64_t>(id(i)), 0);
                    std::size_t g = static_cast<std::size_t>(CounterRng::to_open_unit(r.v[0]) * static_cast<double>(G));
                    if (g >= G)
                        g = G - 1;
                    bucket(i) = static_cast<std::uint32_t>(g * S + static_cast<std::size_t>(sp(i)));
                });
        }
        // order(k): local index of the k-th particle in group order; offsets(g S + s): first
        // position of species s in group g; offsets(G S) = n.
        Kokkos::View<std::size_t*, MemSpace> order, offsets;
        stable_bucket_sort(bucket, G * S, order, offsets);
        Kokkos::View<double**, Kokkos::LayoutRight, MemSpace> gmax(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::group_max"), G,
            static_cast<std::size_t>(T));
        Kokkos::View<std::int64_t*, MemSpace> gcoll(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::group_collisions"), G);
        Kokkos::View<std::int64_t*, MemSpace> gatt(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::group_attempts"), G);
        // Velocities in group order: the candidates of a group then touch one contiguous block
        // (cache-resident) instead of random rows of the whole array; scattered back afterwards.
        if (_sorted_vel.extent(0) != n)
            _sorted_vel =
                VectorView(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::group_velocities"), n, 3);
        VectorView sv = _sorted_vel;
        {
            auto vel_in = p.velocity;
            Kokkos::parallel_for(
                "kinflow::dsmc::gather_groups", Kokkos::RangePolicy<ExecSpace>(0, n),
                KOKKOS_LAMBDA(const std::size_t k) {
                    const std::size_t i = order(k);
                    for (int c = 0; c < 3; ++c)
                        sv(k, c) = vel_in(i, c);
                });
        }
        const CS cs = _cs;
        const Scat scat = _scat;
        const SpeciesMass sm = _mass;
        const PairValues maj = _maj;
        const double ndt = _n * dt;
        const std::uint64_t seed = _seed;
        auto vel = p.velocity;
        auto id = p.id;
        Kokkos::parallel_for(
            "kinflow::dsmc::ntc", Kokkos::RangePolicy<ExecSpace>(0, G), KOKKOS_LAMBDA(const std::size_t g) {
                std::size_t off[kMaxSpecies + 1];
                for (int s = 0; s <= S; ++s)
                    off[s] = offsets(g * S + s);
                double w[kMaxPairs], seen[kMaxPairs];
                int ts[kMaxPairs], tr[kMaxPairs];
                double W = 0.0;
                const std::size_t M = off[S] - off[0];
                for (int s = 0; s < S; ++s)
                    for (int r = s; r < S; ++r) {
                        const int t = s * S - s * (s - 1) / 2 + (r - s); // pair_index
                        const double ns = static_cast<double>(off[s + 1] - off[s]),
                                     nr = static_cast<double>(off[r + 1] - off[r]);
                        const double pairs = s == r ? 0.5 * ns * (ns - 1.0) : ns * nr;
                        w[t] = M >= 2 ? pairs * ndt * maj.v[t] / static_cast<double>(M - 1) : 0.0;
                        W += w[t];
                        ts[t] = s;
                        tr[t] = r;
                        seen[t] = 0.0;
                    }
                std::int64_t coll = 0, att = 0;
                if (W > 0.0) {
                    // This group's streams: key from the seed and its first particle's global id
                    // (unique within a step over all ranks), counter = (step, candidate, block).
                    const CounterRng rng(mix64(seed ^ mix64(static_cast<std::uint64_t>(id(order(off[0]))))),
                                         RngPurpose::Collision);
                    double u[4];
                    rng.uniform4(n_step, 0, 2, u);
                    const double fl = static_cast<double>(static_cast<std::int64_t>(W)); // floor, W >= 0
                    const std::int64_t C = static_cast<std::int64_t>(fl) + (u[0] < W - fl ? 1 : 0);
                    for (std::int64_t c = 0; c < C; ++c) {
                        double a[4], b[4]; // a: type, partners, acceptance; b: scattering (drawn on acceptance)
                        rng.uniform4(n_step, static_cast<std::uint64_t>(c), 0, a);
                        // pair type t with probability w_t / W
                        const double x = a[0] * W;
                        int t = 0;
                        double cum = w[0];
                        while (t + 1 < T && !(x < cum))
                            cum += w[++t];
                        while (w[t] <= 0.0 && t > 0)
                            --t; // round-off at the top end
                        const int s = ts[t], r = tr[t];
                        const std::size_t Ns = off[s + 1] - off[s], Nr = off[r + 1] - off[r];
                        std::size_t i = static_cast<std::size_t>(a[1] * static_cast<double>(Ns));
                        if (i >= Ns)
                            i = Ns - 1;
                        std::size_t j;
                        if (s == r) { // a partner other than i
                            j = static_cast<std::size_t>(a[2] * static_cast<double>(Ns - 1));
                            if (j >= Ns - 1)
                                j = Ns - 2;
                            if (j >= i)
                                ++j;
                        } else {
                            j = static_cast<std::size_t>(a[2] * static_cast<double>(Nr));
                            if (j >= Nr)
                                j = Nr - 1;
                        }
                        const std::size_t pa = off[s] + i, pb = off[r] + j; // rows of sv
                        double v1[3] = {sv(pa, 0), sv(pa, 1), sv(pa, 2)};
                        double v2[3] = {sv(pb, 0), sv(pb, 1), sv(pb, 2)};
                        const double g2 = (v1[0] - v2[0]) * (v1[0] - v2[0]) + (v1[1] - v2[1]) * (v1[1] - v2[1]) +
                                          (v1[2] - v2[2]) * (v1[2] - v2[2]);
                        const double sg = cs(s, r, g2);
                        if (sg > seen[t])
                            seen[t] = sg;
                        ++att;
                        if (a[3] * maj.v[t] < sg) {
                            rng.uniform4(n_step, static_cast<std::uint64_t>(c), 1, b);
                            collide_pair(scat, s, r, sm.m[s], sm.m[r], v1, v2, b[0], b[1]);
                            for (int k = 0; k < 3; ++k) {
                                sv(pa, k) = v1[k];
                                sv(pb, k) = v2[k];
                            }
                            ++coll;
                        }
                    }
                }
                for (int t = 0; t < T; ++t)
                    gmax(g, t) = seen[t];
                gcoll(g) = coll;
                gatt(g) = att;
            });
        Kokkos::parallel_for(
            "kinflow::dsmc::scatter_groups", Kokkos::RangePolicy<ExecSpace>(0, n), KOKKOS_LAMBDA(const std::size_t k) {
                const std::size_t i = order(k);
                for (int c = 0; c < 3; ++c)
                    vel(i, c) = sv(k, c);
            });

        StepCounts out;
        Kokkos::parallel_reduce(
            "kinflow::dsmc::ntc_counts", Kokkos::RangePolicy<ExecSpace>(0, G),
            KOKKOS_LAMBDA(const std::size_t g, std::int64_t& c, std::int64_t& a) {
                c += gcoll(g);
                a += gatt(g);
            },
            Kokkos::Sum<std::int64_t>(out.collisions), Kokkos::Sum<std::int64_t>(out.attempts));
        for (int t = 0; t < T; ++t) {
            double m = 0.0;
            Kokkos::parallel_reduce(
                "kinflow::dsmc::ntc_majorant", Kokkos::RangePolicy<ExecSpace>(0, G),
                KOKKOS_LAMBDA(const std::size_t g, double& x) {
                    if (gmax(g, t) > x)
                        x = gmax(g, t);
                },
                Kokkos::Max<double>(m));
            _maj.v[t] = std::max(_maj.v[t], _comm.max(std::max(m, 0.0)));
        }
        return out;
    }

  private:
    comm::Communicator _comm;
    double _n;
    int _ns;
    CS _cs;
    Scat _scat;
    std::uint64_t _seed;
    SpeciesMass _mass;
    PairValues _maj;
    CounterRng _pairing;
    VectorView _sorted_vel; ///< scratch: velocities in group order
};

template <class CS, class Scat>
std::unique_ptr<StepperBase> make_scheme(const comm::Communicator& comm, const Params& p, CS cs, Scat scat,
                                         std::uint64_t seed) {
    if (p.scheme == Scheme::NanbuBabovsky)
        return std::make_unique<NanbuBabovsky<CS, Scat>>(comm, p, cs, scat, seed);
    return std::make_unique<Ntc<CS, Scat>>(comm, p, cs, scat, seed);
}

template <class CS>
std::unique_ptr<StepperBase> make_scatter(const comm::Communicator& comm, const Params& p, CS cs, std::uint64_t seed) {
    // VSS exponents of unlike pairs are the mean of the two species' (Bird 1994, ch. 4: mean collision parameters of
    // unlike molecules).
    VssScattering vss;
    bool isotropic = true;
    for (int s = 0; s < p.n_species; ++s)
        for (int r = 0; r < p.n_species; ++r) {
            const double a = 0.5 * (p.alpha[static_cast<std::size_t>(s)] + p.alpha[static_cast<std::size_t>(r)]);
            vss.inv_alpha.set(s, r, 1.0 / a);
            isotropic = isotropic && a == 1.0;
        }
    if (p.kernel != Kernel::Vss || isotropic)
        return make_scheme(comm, p, cs, IsotropicScattering{}, seed);
    return make_scheme(comm, p, cs, vss, seed);
}

} // namespace

std::unique_ptr<StepperBase> make_stepper(const comm::Communicator& comm, const Params& p, std::uint64_t seed) {
    KINFLOW_REQUIRE(p.n_species >= 1 && p.n_species <= kMaxSpecies, "dsmc: bad number of species " << p.n_species);
    if (p.kernel == Kernel::Maxwell) {
        ConstantSigmaG cs;
        for (int s = 0; s < p.n_species; ++s)
            for (int r = 0; r < p.n_species; ++r)
                cs.c.set(s, r, p.collision_rate / p.number_density);
        return make_scatter(comm, p, cs, seed);
    }
    // VHS constants per pair (Bird 1994, ch. 4: sigma_T of the VHS model; d_ref and omega of unlike pairs are
    // the means of the two species' values, m_r the reduced mass).
    PairTable c, e;
    bool all_half = true, all_one = true;
    for (int s = 0; s < p.n_species; ++s)
        for (int r = 0; r < p.n_species; ++r) {
            const auto S = static_cast<std::size_t>(s), R = static_cast<std::size_t>(r);
            const double d = 0.5 * (p.d_ref[S] + p.d_ref[R]);
            const double w = 0.5 * (p.omega[S] + p.omega[R]);
            const double mr = p.mass[S] * p.mass[R] / (p.mass[S] + p.mass[R]);
            c.set(s, r, kPi * d * d * std::pow(2.0 * p.k_boltzmann * p.T_ref / mr, w - 0.5) / std::tgamma(2.5 - w));
            e.set(s, r, 1.0 - w);
            all_half = all_half && w == 0.5;
            all_one = all_one && w == 1.0;
        }
    if (all_one)
        return make_scatter(comm, p, ConstantSigmaG{c}, seed);
    if (all_half)
        return make_scatter(comm, p, HardSphereSigmaG{c}, seed);
    return make_scatter(comm, p, VhsSigmaG{c, e}, seed);
}

} // namespace kinflow::dsmc::detail
