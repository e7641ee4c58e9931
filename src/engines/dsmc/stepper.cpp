// Collision steps of the DSMC engine, one template instantiation per (scheme, cross-section,
// scattering law); make_stepper() is the single factory that picks one (CabanaMD's mdfactory
// pattern). Work is per pair (Nanbu–Babovsky) or per collision group (NTC) and every random
// number is a counter-based draw keyed by global ids, so a rank's result does not depend on the
// thread count.
#include <algorithm>
#include <cmath>
#include <string>

#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/engines/dsmc/collision.hpp"
#include "kinflow/engines/dsmc/dsmc_engine.hpp"
#include "kinflow/engines/dsmc/detail/ntc.hpp"

namespace kinflow::dsmc::detail {

namespace {

/// Draws that pair particles (Nanbu–Babovsky) or assign them to collision groups (NTC).
constexpr RngPurpose kPairing = static_cast<RngPurpose>(static_cast<std::uint32_t>(RngPurpose::User) + 1);
/// Particles per NTC collision group (virtual collision cell) — see Ntc below.
constexpr std::size_t kGroupSize = 1024;
/// Most Nanbu–Babovsky pairs per chunk of the collision kernel (see NanbuBabovsky::collide).
constexpr std::size_t kPairChunk = 512;
/// Largest n (sigma_T g)_max dt an NTC step accepts: twice the candidates per particle and step.
/// A physical time step makes it O(1) (a fraction of a collision time); a value beyond this comes
/// from inconsistent units or a huge dt and would make the step draw an astronomical number of
/// candidates (a hang, then an integer overflow).
constexpr double kMaxCandidateRate = 1000.0;

struct SpeciesMass {
    double m[kMaxSpecies] = {};
};

/// Scratch arrays of the per-step sorts and groupings, kept from step to step: a fresh allocation
/// of every step's arrays costs a page fault per page on first touch, a large share of the step on
/// hosts where faults are slow.
struct SortScratch {
    Kokkos::View<std::uint32_t*, MemSpace> bucket, key;
    Kokkos::View<std::size_t*, MemSpace> order, starts, place;
};

/// The first n entries of the scratch array v (contents undefined), reallocated only when v is
/// shorter; the returned view does not own its memory (v does).
template <class T> Kokkos::View<T*, MemSpace> scratch(Kokkos::View<T*, MemSpace>& v, std::size_t n, const char* label) {
    if (v.extent(0) < n)
        v = Kokkos::View<T*, MemSpace>(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)), n);
    return Kokkos::View<T*, MemSpace>(v.data(), n);
}

/// Stable counting sort of local indices by bucket (0 <= bucket < nb): order(k) is the local index
/// at sorted position k, starts(b) the first position of bucket b (starts(nb) = n). Equal buckets
/// keep increasing local index, so the result is unique whatever the thread count: chunks of the
/// index range histogram their buckets, an exclusive scan over (bucket, chunk) gives every chunk
/// its place in every bucket, and each chunk then fills its places in order. O(n + chunks nb),
/// against O(n log n) for sorting keys (Kokkos::sort), which dominated the NTC step. The chunk
/// count follows the execution space's concurrency (the result does not depend on it): a few per
/// thread, at most 256. order and starts are views into `ws` (valid until its next use). With
/// `high` given (n entries), order(k) holds high(i) << 32 | i instead of i: a key carried into
/// sorted order, read in index order (where reading it through order would be a random access).
void stable_bucket_sort(const Kokkos::View<std::uint32_t*, MemSpace>& bucket, std::size_t nb, SortScratch& ws,
                        Kokkos::View<std::size_t*, MemSpace>& order, Kokkos::View<std::size_t*, MemSpace>& starts,
                        const Kokkos::View<std::uint32_t*, MemSpace>& high = {}) {
    static_assert(sizeof(std::size_t) == 8, "dsmc: sort words need a 64-bit size_t");
    const std::size_t n = bucket.extent(0);
    const bool with_high = high.extent(0) == n && n > 0;
    const std::size_t C =
        std::max<std::size_t>(1, std::min<std::size_t>({256, n / (4 * std::max<std::size_t>(nb, 1)),
                                                        8 * static_cast<std::size_t>(std::max(1, concurrency()))}));
    const std::size_t len = (n + C - 1) / C;
    // place(b, c) = flat(b * C + c): chunk c's count of bucket b, then its next position in b.
    const auto flat = scratch(ws.place, nb * C, "kinflow::dsmc::bucket_place");
    Kokkos::deep_copy(flat, std::size_t{0});
    Kokkos::parallel_for(
        "kinflow::dsmc::bucket_count", Kokkos::RangePolicy<ExecSpace>(0, C), KOKKOS_LAMBDA(const std::size_t c) {
            const std::size_t e = (c + 1) * len < n ? (c + 1) * len : n;
            for (std::size_t i = c * len; i < e; ++i)
                ++flat(bucket(i) * C + c);
        });
    starts = scratch(ws.starts, nb + 1, "kinflow::dsmc::bucket_starts");
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
    order = scratch(ws.order, n, "kinflow::dsmc::bucket_order");
    auto ord = order;
    Kokkos::parallel_for(
        "kinflow::dsmc::bucket_fill", Kokkos::RangePolicy<ExecSpace>(0, C), KOKKOS_LAMBDA(const std::size_t c) {
            const std::size_t e = (c + 1) * len < n ? (c + 1) * len : n;
            for (std::size_t i = c * len; i < e; ++i)
                ord(flat(bucket(i) * C + c)++) = with_high ? (static_cast<std::size_t>(high(i)) << 32) | i : i;
        });
}

/// A uniformly random permutation of the local particles (Nanbu–Babovsky pairing): each particle
/// draws a bucket (about 16 particles per bucket) and a 32-bit key; a stable counting sort by
/// bucket followed by an insertion sort of every bucket by (key, local index) orders the particles
/// by (bucket, key) — i.i.d. draws, so every permutation is equally likely (up to key ties, broken
/// by index). Unique sort keys make the result independent of the thread count; O(N) work where
/// Kokkos::sort of 64-bit keys (used before) is O(N log N) and took most of the step. The result
/// is a view into `ws`.
Kokkos::View<std::size_t*, MemSpace> random_permutation(const ParticleSet& p, const CounterRng& rng, std::uint64_t step,
                                                        SortScratch& ws) {
    const std::size_t n = p.size();
    const std::size_t nb = std::max<std::size_t>(1, n / 16);
    const auto bucket = scratch(ws.bucket, n, "kinflow::dsmc::perm_bucket");
    const auto key = scratch(ws.key, n, "kinflow::dsmc::perm_key");
    auto id = p.id;
    Kokkos::parallel_for(
        "kinflow::dsmc::perm_draw", Kokkos::RangePolicy<ExecSpace>(0, n), KOKKOS_LAMBDA(const std::size_t i) {
            const auto r = rng.raw(step, static_cast<std::uint64_t>(id(i)), 0);
            std::size_t b = static_cast<std::size_t>(CounterRng::to_open_unit(r.v[0]) * static_cast<double>(nb));
            bucket(i) = static_cast<std::uint32_t>(b < nb ? b : nb - 1);
            key(i) = r.v[1];
        });
    // Sorted by bucket, as the words key << 32 | local index (unique); within a bucket these words
    // are then sorted and unpacked.
    Kokkos::View<std::size_t*, MemSpace> word, starts;
    stable_bucket_sort(bucket, nb, ws, word, starts, key);
    const auto order = word;
    Kokkos::parallel_for(
        "kinflow::dsmc::perm_buckets", Kokkos::RangePolicy<ExecSpace>(0, nb), KOKKOS_LAMBDA(const std::size_t b) {
            const std::size_t lo = starts(b), hi = starts(b + 1);
            for (std::size_t k = lo + 1; k < hi; ++k) { // insertion sort (about 16 entries)
                const std::size_t x = word(k);
                std::size_t j = k;
                while (j > lo && word(j - 1) > x) {
                    word(j) = word(j - 1);
                    --j;
                }
                word(j) = x;
            }
            for (std::size_t k = lo; k < hi; ++k)
                order(k) = word(k) & 0xFFFFFFFFULL;
        });
    return order;
}

/// dst(k) = src(order(k)) and its inverse (rows of 3).
void gather_rows(const VectorView& src, const Kokkos::View<std::size_t*, MemSpace>& order, const VectorView& dst) {
    Kokkos::parallel_for(
        "kinflow::dsmc::gather_groups", Kokkos::RangePolicy<ExecSpace>(0, order.extent(0)),
        KOKKOS_LAMBDA(const std::size_t k) {
            const std::size_t i = order(k);
            for (int c = 0; c < 3; ++c)
                dst(k, c) = src(i, c);
        });
}
void scatter_rows(const VectorView& src, const Kokkos::View<std::size_t*, MemSpace>& order, const VectorView& dst) {
    Kokkos::parallel_for(
        "kinflow::dsmc::scatter_groups", Kokkos::RangePolicy<ExecSpace>(0, order.extent(0)),
        KOKKOS_LAMBDA(const std::size_t k) {
            const std::size_t i = order(k);
            for (int c = 0; c < 3; ++c)
                dst(i, c) = src(k, c);
        });
}

/// Sums of one step's adjoint sweep, reduced over its pairs or groups (KernelScore).
struct AdjointSums {
    double k0 = 0.0, k1 = 0.0, alpha_pathwise = 0.0, alpha_score = 0.0;
};

/// One acceptance decision of either scheme taken back (the same per-pair update for Nanbu–Babovsky
/// and NTC). `g` = v1 - v2 before the decision (|g|^2 = g2), P its acceptance probability, `accepted`
/// what the forward run decided, (u1, u2) the scattering draws; ga, gb (gamma) and ba, bb (beta)
/// enter as the adjoints after the decision and leave as those before it; `sum` gathers the
/// parameter terms. In the notation of the papers:
/// - accepted: gamma, beta <- the transposed collision Jacobian (collide_pair_adjoint; the adjoint
///   collision rule of Caflisch, Silantyev & Yang, JCP 439, 110404 (2021), with the VSS direction's
///   velocity dependence of Yang, Silantyev & Caflisch, JCP 488, 112247 (2023));
/// - accepted, adjoint.parameters alpha: dJ/d alpha += gamma'.dv'/d alpha and dL/d alpha +=
///   beta'.dv'/d alpha with dv1'/d alpha = (m2/M)|g| de/d alpha = -(m1/m2) dv2'/d alpha (the chain
///   rule through the post-collision direction, evaluated with the adjoints after the collision);
/// - velocity-dependent kernel: beta += grad_v ln p(decision), p = P (accepted) or 1 - P (rejected),
///   grad_{v1} ln P = 2 (d ln sigma_T g/d g^2) g = -grad_{v2} ln P: the score-function term of the
///   acceptance-rejection step (Yang, Silantyev & Caflisch 2023); the weight is 1 (accepted) or
///   -P/(1 - P) (rejected), and 0 when P >= 1 (a certain decision has no score);
/// - kernel parameters theta_q: dL/d theta_q += the same weight times d ln(sigma_T g)/d theta_q at
///   fixed velocities (KernelTangent).
template <class CS, class Scat>
KOKKOS_INLINE_FUNCTION void decision_adjoint(const CS& cs, const Scat& scat, const KernelTangent& kt, int s, int r,
                                             double m1, double m2, const double g[3], double g2, double P,
                                             bool accepted, double u1, double u2, double ga[3], double gb[3],
                                             double ba[3], double bb[3], AdjointSums& sum) {
    if (accepted) {
        const double gm = math::sqrt(g2);
        double e[3];
        scat(s, r, g, gm, u1, u2, e);
        if (kt.alpha) {
            double de[3];
            scat.direction_dalpha(s, r, g, gm, u1, u2, de);
            const double M = m1 + m2;
            for (int q = 0; q < 3; ++q) {
                sum.alpha_pathwise += gm * (m2 * ga[q] - m1 * gb[q]) / M * de[q];
                sum.alpha_score += gm * (m2 * ba[q] - m1 * bb[q]) / M * de[q];
            }
        }
        collide_pair_adjoint(scat, s, r, m1, m2, g, gm, e, u1, u2, ga, gb);
        collide_pair_adjoint(scat, s, r, m1, m2, g, gm, e, u1, u2, ba, bb);
    }
    if (CS::kVelocityDependent || kt.n > 0) {
        const double w = P >= 1.0 ? 0.0 : (accepted ? 1.0 : -P / (1.0 - P));
        if (CS::kVelocityDependent) {
            const double c = 2.0 * w * cs.dlog(s, r, g2);
            for (int q = 0; q < 3; ++q) {
                ba[q] += c * g[q];
                bb[q] -= c * g[q];
            }
        }
        if (kt.n > 0)
            sum.k0 += w * kt(0, s, r, g2);
        if (kt.n > 1)
            sum.k1 += w * kt(1, s, r, g2);
    }
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
        : _comm(comm), _n(p.number_density), _mixture(p.n_species > 1), _cs(cs), _scat(scat), _pairing(seed, kPairing),
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
        const auto order = random_permutation(p, _pairing, n_step, _ws);
        const CS cs = _cs;
        const Scat scat = _scat;
        const SpeciesMass sm = _mass;
        const CounterRng rng = _rng;
        const double ndt = _n * dt;
        auto vel = p.velocity;
        auto id = p.id;
        auto sp = p.species;
        const bool mixture = _mixture;
        // The pairs run in chunks: a chunk first copies its pairs' velocities and keys (random rows,
        // a short loop whose loads the processor overlaps) into contiguous scratch, then decides
        // its pairs there and writes back the colliding ones. Chunks of kPairChunk pairs while
        // that leaves at least 64 chunks per thread; down to a pair per chunk (as many parallel
        // iterations as pairs) on a GPU.
        if (_pair_vel.extent(0) != 2 * npairs) {
            _pair_vel = VectorView(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::pair_velocities"),
                                   2 * npairs, 3);
            _pair_id = Kokkos::View<std::uint64_t*, MemSpace>(
                Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::pair_ids"), npairs);
        }
        const VectorView pv = _pair_vel;
        const auto pid = _pair_id;
        const std::size_t chunk = std::max<std::size_t>(
            1, std::min(kPairChunk, npairs / (64 * static_cast<std::size_t>(std::max(1, concurrency())))));
        const std::size_t nchunks = (npairs + chunk - 1) / chunk;
        std::int64_t ncoll = 0;
        double pmax = 0.0;
        Kokkos::parallel_reduce(
            "kinflow::dsmc::nanbu_babovsky", Kokkos::RangePolicy<ExecSpace>(0, nchunks),
            KOKKOS_LAMBDA(const std::size_t ch, std::int64_t& nc, double& pm) {
                const std::size_t k0 = ch * chunk, k1 = k0 + chunk < npairs ? k0 + chunk : npairs;
                for (std::size_t j = 2 * k0; j < 2 * k1; ++j) {
                    const std::size_t i = order(j);
                    for (int c = 0; c < 3; ++c)
                        pv(j, c) = vel(i, c);
                    if (j % 2 == 0)
                        pid(j / 2) = static_cast<std::uint64_t>(id(i));
                }
                for (std::size_t k = k0; k < k1; ++k) {
                    const std::size_t a = order(2 * k), b = order(2 * k + 1);
                    const int s = mixture ? sp(a) : 0, r = mixture ? sp(b) : 0;
                    double v1[3] = {pv(2 * k, 0), pv(2 * k, 1), pv(2 * k, 2)};
                    double v2[3] = {pv(2 * k + 1, 0), pv(2 * k + 1, 1), pv(2 * k + 1, 2)};
                    const double g2 = (v1[0] - v2[0]) * (v1[0] - v2[0]) + (v1[1] - v2[1]) * (v1[1] - v2[1]) +
                                      (v1[2] - v2[2]) * (v1[2] - v2[2]);
                    const double P = ndt * cs(s, r, g2);
                    if (P > pm)
                        pm = P;
                    double u[4];
                    rng.uniform4(n_step, pid(k), 0, u);
                    if (u[0] < P) {
                        collide_pair(scat, s, r, sm.m[s], sm.m[r], v1, v2, u[1], u[2]);
                        for (int c = 0; c < 3; ++c) {
                            vel(a, c) = v1[c];
                            vel(b, c) = v2[c];
                        }
                        ++nc;
                    }
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

    /// Adjoint of collide(): the same pairs and draws; pairs are disjoint, so each is taken back
    /// independently. An accepted collision applies the transposed Jacobian (collide_pair_adjoint;
    /// Caflisch, Silantyev & Yang 2021). For a velocity-dependent kernel the decision "u < P" with
    /// P = n sigma_T(g) g dt adds the score d ln p/dv of its probability p = P (accepted) or 1 - P
    /// (rejected) to beta (Yang, Silantyev & Caflisch 2023): d ln P/dv1 = 2 (d ln sigma_T g/d g^2) g.
    /// The same decision's explicit derivative by a kernel parameter, d ln P/d theta = d ln(sigma_T g)/d theta
    /// (KernelTangent) times 1 or -P/(1 - P), is summed into the returned kernel-parameter score.
    /// Each pair's update is decision_adjoint (shared with Ntc::adjoint).
    KernelScore adjoint(const ParticleSet& p, std::int64_t step, double dt, const VectorView& gamma,
                        const VectorView& beta, const KernelTangent& kernel) override {
        const auto n_step = static_cast<std::uint64_t>(step);
        const std::size_t npairs = p.size() / 2;
        const auto order = random_permutation(p, _pairing, n_step, _ws);
        const CS cs = _cs;
        const Scat scat = _scat;
        const SpeciesMass sm = _mass;
        const CounterRng rng = _rng;
        const double ndt = _n * dt;
        auto vel = p.velocity;
        auto id = p.id;
        auto sp = p.species;
        const bool mixture = _mixture;
        const KernelTangent kt = kernel;
        KernelScore out;
        AdjointSums acc;
        Kokkos::parallel_reduce(
            "kinflow::dsmc::nanbu_babovsky_adjoint", Kokkos::RangePolicy<ExecSpace>(0, npairs),
            KOKKOS_LAMBDA(const std::size_t k, double& k0, double& k1, double& ap, double& as) {
                const std::size_t a = order(2 * k), b = order(2 * k + 1);
                const int s = mixture ? sp(a) : 0, r = mixture ? sp(b) : 0;
                const double g[3] = {vel(a, 0) - vel(b, 0), vel(a, 1) - vel(b, 1), vel(a, 2) - vel(b, 2)};
                const double g2 = g[0] * g[0] + g[1] * g[1] + g[2] * g[2];
                const double P = ndt * cs(s, r, g2);
                double u[4];
                rng.uniform4(n_step, static_cast<std::uint64_t>(id(a)), 0, u);
                double ga[3] = {gamma(a, 0), gamma(a, 1), gamma(a, 2)}, gb[3] = {gamma(b, 0), gamma(b, 1), gamma(b, 2)};
                double ba[3] = {beta(a, 0), beta(a, 1), beta(a, 2)}, bb[3] = {beta(b, 0), beta(b, 1), beta(b, 2)};
                AdjointSums x;
                decision_adjoint(cs, scat, kt, s, r, sm.m[s], sm.m[r], g, g2, P, u[0] < P, u[1], u[2], ga, gb, ba, bb,
                                 x);
                k0 += x.k0;
                k1 += x.k1;
                ap += x.alpha_pathwise;
                as += x.alpha_score;
                for (int q = 0; q < 3; ++q) {
                    gamma(a, q) = ga[q];
                    gamma(b, q) = gb[q];
                    beta(a, q) = ba[q];
                    beta(b, q) = bb[q];
                }
            },
            Kokkos::Sum<double>(acc.k0), Kokkos::Sum<double>(acc.k1), Kokkos::Sum<double>(acc.alpha_pathwise),
            Kokkos::Sum<double>(acc.alpha_score));
        out.v[0] = acc.k0;
        out.v[1] = acc.k1;
        out.alpha_pathwise = acc.alpha_pathwise;
        out.alpha_score = acc.alpha_score;
        return out;
    }

  private:
    comm::Communicator _comm;
    double _n;
    bool _mixture; ///< more than one species (else the species of a pair is 0: no random loads of it)
    CS _cs;
    Scat _scat;
    SpeciesMass _mass;
    CounterRng _pairing, _rng;
    // Scratch kept from step to step (see SortScratch).
    SortScratch _ws;
    VectorView _pair_vel;                            ///< velocities of the pairs' particles, in pair order
    Kokkos::View<std::uint64_t*, MemSpace> _pair_id; ///< id of each pair's first particle (its draws' key)
};

/// Bird's no-time-counter scheme (Bird 1994, ch. 11), sequential with replacement, for mixtures
/// with one majorant (sigma_T g)_max per species pair (Bird 1994, ch. 11, mixtures).
///
/// The local sub-ensemble is split at random into collision groups of about kGroupSize particles
/// (virtual cells of the homogeneous gas, regrouped every step: a counter-based draw per particle
/// and a stable counting sort) that are processed in parallel, each on a contiguous copy of its
/// velocities (copied in and back by the group itself, so the block is still in cache when its
/// candidates run: cache-resident candidates, one pass over the particles);
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
        Kokkos::View<std::size_t*, MemSpace> order, offsets;
        group_order(p, n_step, G, order, offsets);
        if (_gmax.extent(0) != G || _gmax.extent(1) != static_cast<std::size_t>(T)) {
            _gmax = Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>(
                Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::group_max"), G,
                static_cast<std::size_t>(T));
            _gcount = Kokkos::View<std::int64_t* [2], Kokkos::LayoutRight, MemSpace>(
                Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::group_counts"), G);
        }
        const auto gmax = _gmax;
        const auto gcount = _gcount; // (collisions, candidates) per group
        // Each group copies its velocities into one contiguous block of sv (group order), runs its
        // candidates there (cache-resident, where rows of the whole array would be random memory
        // accesses) and copies them back: one pass over the particles, the block still in cache.
        if (_sorted_vel.extent(0) != n)
            _sorted_vel =
                VectorView(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::group_velocities"), n, 3);
        VectorView sv = _sorted_vel;
        const CS cs = _cs;
        const Scat scat = _scat;
        const SpeciesMass sm = _mass;
        const PairValues maj = _maj;
        const double ndt = _n * dt;
        const std::uint64_t seed = _seed;
        auto id = p.id;
        auto vel = p.velocity;
        Kokkos::parallel_for(
            "kinflow::dsmc::ntc", Kokkos::RangePolicy<ExecSpace>(0, G), KOKKOS_LAMBDA(const std::size_t g) {
                std::size_t off[kMaxSpecies + 1] = {};
                for (int s = 0; s <= S; ++s)
                    off[s] = offsets(g * S + s);
                for (std::size_t k = off[0]; k < off[S]; ++k) {
                    const std::size_t i = order(k);
                    for (int c = 0; c < 3; ++c)
                        sv(k, c) = vel(i, c);
                }
                GroupWeights gw;
                group_weights(off, S, ndt, maj, gw);
                double seen[kMaxPairs];
                for (int t = 0; t < T; ++t)
                    seen[t] = 0.0;
                std::int64_t coll = 0, att = 0;
                if (gw.W > 0.0) {
                    const CounterRng rng = group_rng(seed, static_cast<std::uint64_t>(id(order(off[0]))));
                    const std::int64_t C = candidate_count(rng, n_step, gw.W);
                    for (std::int64_t c = 0; c < C; ++c) {
                        double a[4], b[4]; // a: type, partners, acceptance; b: scattering (drawn on acceptance)
                        rng.uniform4(n_step, static_cast<std::uint64_t>(c), 0, a);
                        std::size_t pa, pb; // rows of sv
                        const int t = pick_candidate(a, gw, T, off, pa, pb);
                        const int s = gw.ts[t], r = gw.tr[t];
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
                for (std::size_t k = off[0]; k < off[S]; ++k) {
                    const std::size_t i = order(k);
                    for (int c = 0; c < 3; ++c)
                        vel(i, c) = sv(k, c);
                }
                for (int t = 0; t < T; ++t)
                    gmax(g, t) = seen[t];
                gcount(g, 0) = coll;
                gcount(g, 1) = att;
            });

        StepCounts out;
        Kokkos::parallel_reduce(
            "kinflow::dsmc::ntc_counts", Kokkos::RangePolicy<ExecSpace>(0, G),
            KOKKOS_LAMBDA(const std::size_t g, std::int64_t& c, std::int64_t& a) {
                c += gcount(g, 0);
                a += gcount(g, 1);
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

    /// Adjoint of collide(): the same groups and candidates (majorants as the forward step had
    /// them; they are not raised here). A particle may collide several times in a step, so each
    /// group first replays its candidates in order, recording the pre-collision velocities of every
    /// candidate, then takes them back in reverse order: an accepted collision applies the
    /// transposed Jacobian (collide_pair_adjoint; Caflisch, Silantyev & Yang 2021); for a
    /// velocity-dependent kernel every decision "a3 (sigma_T g)_max < sigma_T g" adds the score of
    /// its probability p = P (accepted) or 1 - P (rejected), P = min(1, sigma_T g/(sigma_T g)_max),
    /// to beta (Yang, Silantyev & Caflisch 2023). The majorant is treated as a constant: the
    /// scheme's law does not depend on it while it bounds sigma_T g. The kernel-parameter score
    /// (returned) sums d ln p/d theta of every decision at fixed velocities: d ln(sigma_T g)/d theta
    /// (KernelTangent) for an accepted candidate, -P/(1 - P) times it for a rejected one. The majorant
    /// is held fixed here too: it sets the number of candidates, a discrete quantity, and moving it
    /// with theta would change E[J] only through the scheme's O(dt) error (the expected collision
    /// count W <P> does not depend on it). Each candidate's update is decision_adjoint (shared with
    /// NanbuBabovsky::adjoint).
    KernelScore adjoint(const ParticleSet& p, std::int64_t step, double dt, const VectorView& gamma,
                        const VectorView& beta, const KernelTangent& kernel) override {
        const auto n_step = static_cast<std::uint64_t>(step);
        const std::size_t n = p.size();
        const int S = _ns;
        const int T = S * (S + 1) / 2;
        const std::size_t G = std::max<std::size_t>(1, n / kGroupSize);
        Kokkos::View<std::size_t*, MemSpace> order, offsets;
        group_order(p, n_step, G, order, offsets);
        VectorView sv(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::adjoint_velocities"), n, 3);
        VectorView sg(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::adjoint_gamma"), n, 3);
        VectorView sb(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::adjoint_beta"), n, 3);
        gather_rows(p.velocity, order, sv);
        gather_rows(gamma, order, sg);
        gather_rows(beta, order, sb);
        const PairValues maj = _maj;
        const double ndt = _n * dt;
        const std::uint64_t seed = _seed;
        auto id = p.id;
        // Candidates per group, then their record offsets (exclusive scan).
        Kokkos::View<std::size_t*, MemSpace> first("kinflow::dsmc::adjoint_records", G + 1);
        Kokkos::parallel_for(
            "kinflow::dsmc::ntc_adjoint_count", Kokkos::RangePolicy<ExecSpace>(0, G), KOKKOS_LAMBDA(const std::size_t g) {
                std::size_t off[kMaxSpecies + 1] = {};
                for (int s = 0; s <= S; ++s)
                    off[s] = offsets(g * S + s);
                GroupWeights gw;
                group_weights(off, S, ndt, maj, gw);
                first(g) = gw.W > 0.0 ? static_cast<std::size_t>(candidate_count(
                                            group_rng(seed, static_cast<std::uint64_t>(id(order(off[0])))), n_step, gw.W))
                                      : 0;
            });
        Kokkos::parallel_scan(
            "kinflow::dsmc::ntc_adjoint_scan", Kokkos::RangePolicy<ExecSpace>(0, G + 1),
            KOKKOS_LAMBDA(const std::size_t g, std::size_t& sum, const bool final) {
                const std::size_t x = g < G ? first(g) : 0;
                if (final)
                    first(g) = sum;
                sum += x;
            });
        std::size_t total = 0;
        Kokkos::deep_copy(total, Kokkos::subview(first, G));
        // Per candidate: the pre-collision velocities (v1, v2) of its pair.
        Kokkos::View<double* [6], Kokkos::LayoutRight, MemSpace> rec(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::adjoint_pre"), total);
        const CS cs = _cs;
        const Scat scat = _scat;
        const SpeciesMass sm = _mass;
        const KernelTangent kt = kernel;
        KernelScore out;
        AdjointSums acc;
        Kokkos::parallel_reduce(
            "kinflow::dsmc::ntc_adjoint", Kokkos::RangePolicy<ExecSpace>(0, G),
            KOKKOS_LAMBDA(const std::size_t g, double& k0, double& k1, double& ap, double& as) {
                const std::size_t C = first(g + 1) - first(g), r0 = first(g);
                if (C == 0)
                    return;
                std::size_t off[kMaxSpecies + 1] = {};
                for (int s = 0; s <= S; ++s)
                    off[s] = offsets(g * S + s);
                GroupWeights gw;
                group_weights(off, S, ndt, maj, gw);
                const CounterRng rng = group_rng(seed, static_cast<std::uint64_t>(id(order(off[0]))));
                // forward replay, recording
                for (std::size_t c = 0; c < C; ++c) {
                    double a[4], b[4];
                    rng.uniform4(n_step, static_cast<std::uint64_t>(c), 0, a);
                    std::size_t pa, pb;
                    const int t = pick_candidate(a, gw, T, off, pa, pb);
                    const int s = gw.ts[t], r = gw.tr[t];
                    double v1[3] = {sv(pa, 0), sv(pa, 1), sv(pa, 2)};
                    double v2[3] = {sv(pb, 0), sv(pb, 1), sv(pb, 2)};
                    for (int k = 0; k < 3; ++k) {
                        rec(r0 + c, k) = v1[k];
                        rec(r0 + c, 3 + k) = v2[k];
                    }
                    const double g2 = (v1[0] - v2[0]) * (v1[0] - v2[0]) + (v1[1] - v2[1]) * (v1[1] - v2[1]) +
                                      (v1[2] - v2[2]) * (v1[2] - v2[2]);
                    if (a[3] * maj.v[t] < cs(s, r, g2)) {
                        rng.uniform4(n_step, static_cast<std::uint64_t>(c), 1, b);
                        collide_pair(scat, s, r, sm.m[s], sm.m[r], v1, v2, b[0], b[1]);
                        for (int k = 0; k < 3; ++k) {
                            sv(pa, k) = v1[k];
                            sv(pb, k) = v2[k];
                        }
                    }
                }
                // backward, last candidate first
                for (std::size_t cc = C; cc-- > 0;) {
                    double a[4], b[4] = {0.0, 0.0, 0.0, 0.0};
                    rng.uniform4(n_step, static_cast<std::uint64_t>(cc), 0, a);
                    std::size_t pa, pb;
                    const int t = pick_candidate(a, gw, T, off, pa, pb);
                    const int s = gw.ts[t], r = gw.tr[t];
                    const double gv[3] = {rec(r0 + cc, 0) - rec(r0 + cc, 3), rec(r0 + cc, 1) - rec(r0 + cc, 4),
                                          rec(r0 + cc, 2) - rec(r0 + cc, 5)};
                    const double g2 = gv[0] * gv[0] + gv[1] * gv[1] + gv[2] * gv[2];
                    const double sgv = cs(s, r, g2);
                    const bool accepted = a[3] * maj.v[t] < sgv;
                    double ga[3] = {sg(pa, 0), sg(pa, 1), sg(pa, 2)}, gb[3] = {sg(pb, 0), sg(pb, 1), sg(pb, 2)};
                    double ba[3] = {sb(pa, 0), sb(pa, 1), sb(pa, 2)}, bb[3] = {sb(pb, 0), sb(pb, 1), sb(pb, 2)};
                    if (accepted)
                        rng.uniform4(n_step, static_cast<std::uint64_t>(cc), 1, b);
                    const double P = maj.v[t] > 0.0 ? sgv / maj.v[t] : 1.0; // P >= 1: accepted with certainty
                    AdjointSums x;
                    decision_adjoint(cs, scat, kt, s, r, sm.m[s], sm.m[r], gv, g2, P, accepted, b[0], b[1], ga, gb, ba,
                                     bb, x);
                    k0 += x.k0;
                    k1 += x.k1;
                    ap += x.alpha_pathwise;
                    as += x.alpha_score;
                    for (int q = 0; q < 3; ++q) {
                        sg(pa, q) = ga[q];
                        sg(pb, q) = gb[q];
                        sb(pa, q) = ba[q];
                        sb(pb, q) = bb[q];
                    }
                }
            },
            Kokkos::Sum<double>(acc.k0), Kokkos::Sum<double>(acc.k1), Kokkos::Sum<double>(acc.alpha_pathwise),
            Kokkos::Sum<double>(acc.alpha_score));
        out.v[0] = acc.k0;
        out.v[1] = acc.k1;
        out.alpha_pathwise = acc.alpha_pathwise;
        out.alpha_score = acc.alpha_score;
        scatter_rows(sg, order, gamma);
        scatter_rows(sb, order, beta);
        return out;
    }

    // Public only because nvcc refuses extended device lambdas in private member functions.
    /// Random groups: bucket = group * S + species, each particle's group a counter-based draw;
    /// a stable counting sort makes every group a contiguous run of species blocks. order(k): local
    /// index of the k-th particle in group order; offsets(g S + s): first position of species s in
    /// group g; offsets(G S) = n.
    void group_order(const ParticleSet& p, std::uint64_t n_step, std::size_t G,
                     Kokkos::View<std::size_t*, MemSpace>& order, Kokkos::View<std::size_t*, MemSpace>& offsets) {
        const std::size_t n = p.size();
        const int S = _ns;
        const auto bucket = scratch(_ws.bucket, n, "kinflow::dsmc::group_bucket");
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
        stable_bucket_sort(bucket, G * S, _ws, order, offsets);
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
    // Scratch kept from step to step (see SortScratch).
    SortScratch _ws;
    VectorView _sorted_vel;                                                 ///< velocities in group order
    Kokkos::View<double**, Kokkos::LayoutRight, MemSpace> _gmax;            ///< largest sigma_T g per (group, pair)
    Kokkos::View<std::int64_t* [2], Kokkos::LayoutRight, MemSpace> _gcount; ///< (collisions, candidates) per group
};

template <class CS, class Scat>
std::unique_ptr<StepperBase> make_scheme(const comm::Communicator& comm, const Params& p, CS cs, Scat scat,
                                         std::uint64_t seed) {
    if (p.scheme == Scheme::NanbuBabovsky)
        return std::make_unique<NanbuBabovsky<CS, Scat>>(comm, p, cs, scat, seed);
    return std::make_unique<Ntc<CS, Scat>>(comm, p, cs, scat, seed);
}

} // namespace

std::unique_ptr<StepperBase> make_stepper(const comm::Communicator& comm, const Params& p, std::uint64_t seed) {
    KINFLOW_REQUIRE(p.n_species >= 1 && p.n_species <= kMaxSpecies, "dsmc: bad number of species " << p.n_species);
    return with_collision_model(p, false, [&](auto cs, auto scat) -> std::unique_ptr<StepperBase> {
        return make_scheme(comm, p, cs, scat, seed);
    });
}

} // namespace kinflow::dsmc::detail
