#pragma once
// The candidate selection of Bird's no-time-counter scheme for one collision group (a virtual
// collision cell of the homogeneous engine, a spatial cell of the spatial engine), shared by both
// engines: per-species-pair candidate weights, unbiased candidate counts, candidate draws; and the
// deck's collision model (cross-section and scattering law) both engines are templates over.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/engines/dsmc/collision.hpp"
#include "kinflow/engines/dsmc/options.hpp"

namespace kinflow::dsmc::detail {

/// Species pairs a run may have.
inline constexpr int kMaxPairs = kMaxSpecies * (kMaxSpecies + 1) / 2;

/// Per species-pair values indexed by pair_index (NTC majorants), copied into kernels.
struct PairValues {
    double v[kMaxPairs] = {};
};

/// The candidate weights of one NTC group (see Ntc): w_t for species pair t = (ts[t], tr[t]) and
/// their sum W. `off[s]` is the first row of species s in the group, off[S] one past its end.
struct GroupWeights {
    double w[kMaxPairs];
    int ts[kMaxPairs], tr[kMaxPairs];
    double W;
};
KOKKOS_INLINE_FUNCTION void group_weights(const std::size_t* off, int S, double ndt, const PairValues& maj,
                                          GroupWeights& gw) {
    gw.W = 0.0;
    if (S < 1 || S > kMaxSpecies) // never (S = n_species); tells the host compiler off[S] is in bounds
        return;
    const std::size_t M = off[S] - off[0];
    for (int s = 0; s < S; ++s)
        for (int r = s; r < S; ++r) {
            const int t = s * S - s * (s - 1) / 2 + (r - s); // pair_index
            const double ns = static_cast<double>(off[s + 1] - off[s]), nr = static_cast<double>(off[r + 1] - off[r]);
            const double pairs = s == r ? 0.5 * ns * (ns - 1.0) : ns * nr;
            gw.w[t] = M >= 2 ? pairs * ndt * maj.v[t] / static_cast<double>(M - 1) : 0.0;
            gw.W += gw.w[t];
            gw.ts[t] = s;
            gw.tr[t] = r;
        }
}
/// A group's streams: key from the seed and its first particle's global id (unique within a step
/// over all ranks), counter = (step, candidate, block).
KOKKOS_INLINE_FUNCTION CounterRng group_rng(std::uint64_t seed, std::uint64_t first_id) {
    return CounterRng(mix64(seed ^ mix64(first_id)), RngPurpose::Collision);
}
/// floor(W) or floor(W) + 1 candidates (unbiased rounding).
KOKKOS_INLINE_FUNCTION std::int64_t candidate_count(const CounterRng& rng, std::uint64_t n_step, double W) {
    double u[4];
    rng.uniform4(n_step, 0, 2, u);
    const double fl = static_cast<double>(static_cast<std::int64_t>(W)); // floor, W >= 0
    return static_cast<std::int64_t>(fl) + (u[0] < W - fl ? 1 : 0);
}
/// A candidate from its draws a[0..2]: pair type t with probability w_t / W (returned), uniform
/// partners within the species blocks (rows pa, pb of the group-ordered velocities).
KOKKOS_INLINE_FUNCTION int pick_candidate(const double a[4], const GroupWeights& gw, int T, const std::size_t* off,
                                          std::size_t& pa, std::size_t& pb) {
    const double x = a[0] * gw.W;
    int t = 0;
    double cum = gw.w[0];
    while (t + 1 < T && !(x < cum))
        cum += gw.w[++t];
    while (gw.w[t] <= 0.0 && t > 0)
        --t; // round-off at the top end
    const int s = gw.ts[t], r = gw.tr[t];
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
    pa = off[s] + i;
    pb = off[r] + j;
    return t;
}

/// The collision model of the deck: calls f(cs, scattering) with the cross-section functor
/// (ConstantSigmaG, HardSphereSigmaG or VhsSigmaG) and the scattering law (IsotropicScattering or
/// VssScattering) and returns what f returns (the same type for every model).
/// Maxwell: sigma_T g = collision_rate / number_density. VHS per pair (Bird 1994, "Molecular Gas
/// Dynamics and the Direct Simulation of Gas Flows", ch. 4): sigma_T g = pi d^2 (2 k T_ref /
/// m_r)^(omega - 1/2) / Gamma(5/2 - omega) g^(2 (1 - omega)) with the pair's d, omega, m_r (and
/// VSS alpha) from pair_mixture(); omega = 1/2 is a hard sphere, omega = 1 a constant sigma_T g.
/// `isotropic_at_unit_alpha`: kernel = vss with every alpha = 1 takes IsotropicScattering (the
/// same law in distribution, cheaper). The homogeneous engine passes false: there kernel = vss
/// keeps the VSS law at alpha = 1 (other draws), which the adjoint's d/d alpha differentiates.
template <class F> decltype(auto) with_collision_model(const Params& p, bool isotropic_at_unit_alpha, F&& f) {
    const auto with_scatter = [&](auto cs) -> decltype(auto) {
        VssScattering vss;
        bool isotropic = true;
        for (int s = 0; s < p.n_species; ++s)
            for (int r = 0; r < p.n_species; ++r) {
                const double a = pair_mixture(p, s, r).alpha;
                vss.inv_alpha.set(s, r, 1.0 / a);
                isotropic = isotropic && a == 1.0;
            }
        if (p.kernel != Kernel::Vss || (isotropic_at_unit_alpha && isotropic))
            return f(cs, IsotropicScattering{});
        return f(cs, vss);
    };
    if (p.kernel == Kernel::Maxwell) {
        ConstantSigmaG cs;
        for (int s = 0; s < p.n_species; ++s)
            for (int r = 0; r < p.n_species; ++r)
                cs.c.set(s, r, p.collision_rate / p.number_density);
        return with_scatter(cs);
    }
    PairTable c, e;
    bool all_half = true, all_one = true;
    for (int s = 0; s < p.n_species; ++s)
        for (int r = 0; r < p.n_species; ++r) {
            const PairMixture x = pair_mixture(p, s, r);
            const double d = x.d_ref, w = x.omega, mr = x.reduced_mass;
            c.set(s, r, kPi * d * d * std::pow(2.0 * p.k_boltzmann * p.T_ref / mr, w - 0.5) / std::tgamma(2.5 - w));
            e.set(s, r, 1.0 - w);
            all_half = all_half && w == 0.5;
            all_one = all_one && w == 1.0;
        }
    if (all_one)
        return with_scatter(ConstantSigmaG{c});
    if (all_half)
        return with_scatter(HardSphereSigmaG{c});
    return with_scatter(VhsSigmaG{c, e});
}

} // namespace kinflow::dsmc::detail
