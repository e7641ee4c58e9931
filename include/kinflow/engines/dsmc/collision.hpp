#pragma once
// Binary collision physics of the DSMC engine, callable in kernels and on the host: collision
// kernels sigma_T g per species pair, scattering laws, and the momentum- and energy-conserving
// two-body rule. Each scheme (stepper.cpp) is a template over a cross-section and a scattering law.
#include <cstdint>

#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"
#include "kinflow/engines/dsmc/options.hpp"

namespace kinflow::dsmc {

/// A symmetric per-species-pair table of constants, copied by value into kernels.
struct PairTable {
    double v[kMaxSpecies * kMaxSpecies] = {};
    KOKKOS_INLINE_FUNCTION double operator()(int s, int r) const { return v[s * kMaxSpecies + r]; }
    void set(int s, int r, double x) {
        v[s * kMaxSpecies + r] = x;
        v[r * kMaxSpecies + s] = x;
    }
};

// ---- collision kernels: sigma_T(g) g as a function of g^2 ----------------------------------

/// Constant sigma_T g: Maxwell molecules. Normalized Maxwell kernel: c = collision_rate / n, so
/// every particle collides at rate collision_rate whatever its species; VHS with omega = 1 gives
/// the mass-dependent constant of the table built by make_cross_section().
struct ConstantSigmaG {
    static constexpr bool kVelocityDependent = false; ///< acceptance independent of the velocities
    PairTable c;
    KOKKOS_INLINE_FUNCTION double operator()(int s, int r, double /*g2*/) const { return c(s, r); }
    /// d ln(sigma_T g) / d(g^2) (the adjoint's score-function term; 0 here).
    KOKKOS_INLINE_FUNCTION double dlog(int, int, double) const { return 0.0; }
};
/// Hard spheres: sigma_T g = pi d^2 g.
struct HardSphereSigmaG {
    static constexpr bool kVelocityDependent = true;
    PairTable c;
    KOKKOS_INLINE_FUNCTION double operator()(int s, int r, double g2) const { return c(s, r) * math::sqrt(g2); }
    KOKKOS_INLINE_FUNCTION double dlog(int, int, double g2) const { return g2 > 0.0 ? 0.5 / g2 : 0.0; }
};
/// Variable hard sphere (Bird 1994, ch. 4; VERIFICATION.md): sigma_T = pi d_ref^2 (2 k T_ref / (m_r g^2))^(omega - 1/2)
/// / Gamma(5/2 - omega), so sigma_T g = c (g^2)^(1 - omega) with c = pi d_ref^2 (2 k T_ref / m_r)^(omega - 1/2)
/// / Gamma(5/2 - omega).
struct VhsSigmaG {
    static constexpr bool kVelocityDependent = true;
    PairTable c, exponent; ///< exponent = 1 - omega of the pair
    KOKKOS_INLINE_FUNCTION double operator()(int s, int r, double g2) const {
        return g2 > 0.0 ? c(s, r) * math::pow(g2, exponent(s, r)) : 0.0;
    }
    KOKKOS_INLINE_FUNCTION double dlog(int s, int r, double g2) const { return g2 > 0.0 ? exponent(s, r) / g2 : 0.0; }
};

/// Most collision-kernel parameters one adjoint run differentiates by (adjoint.parameters omega,
/// d_ref, collision_rate: at most two apply to one kernel).
inline constexpr int kMaxKernelParameters = 2;
/// d ln(sigma_T g)/d theta_q for the collision-kernel parameters of the adjoint. Every kernel above
/// is sigma_T g = c (g^2)^(1 - omega), so the derivative is a_q(s, r) + b_q(s, r) ln g^2: omega (all
/// species together) a = ln(2 k T_ref/m_r) + psi(5/2 - omega), b = -1 (from the VHS constant c;
/// psi = digamma); d_ref a = 2/d_ref of the pair, b = 0; collision_rate (Maxwell) a = 1/nu, b = 0.
/// The score of an acceptance decision of probability P(theta) is d ln P/d theta = this (accepted)
/// or -P/(1 - P) times it (rejected); Yang, Silantyev & Caflisch, J. Comput. Phys. 488, 112247 (2023).
struct KernelTangent {
    int n = 0; ///< kernel parameters in use (0: none)
    PairTable a[kMaxKernelParameters], b[kMaxKernelParameters];
    KOKKOS_INLINE_FUNCTION double operator()(int q, int s, int r, double g2) const {
        const double bq = b[q](s, r);
        return a[q](s, r) + (bq != 0.0 && g2 > 0.0 ? bq * math::log(g2) : 0.0);
    }
};
/// One step's explicit d L/d theta_q on one rank (L: log-probability of its acceptance decisions).
struct KernelScore {
    double v[kMaxKernelParameters] = {};
};

// ---- scattering laws: the unit vector of the post-collision relative velocity ------------

/// Isotropic scattering (Maxwell, hard sphere, VHS): g'/|g'| uniform on the sphere,
/// cos theta = 2 u1 - 1, phi = 2 pi u2.
struct IsotropicScattering {
    KOKKOS_INLINE_FUNCTION void operator()(int, int, const double g[3], double /*gm*/, double u1, double u2,
                                           double out[3]) const {
        (void)g;
        const double ct = 2.0 * u1 - 1.0;
        const double st = math::sqrt(1.0 - ct * ct > 0.0 ? 1.0 - ct * ct : 0.0);
        const double phi = 2.0 * kPi * u2;
        out[0] = ct;
        out[1] = st * math::cos(phi);
        out[2] = st * math::sin(phi);
    }
};

/// Variable soft sphere (Koura & Matsumoto, Phys. Fluids A 3, 2459 (1991)): the deflection of the
/// relative velocity has cos chi = 2 R^(1/alpha) - 1 with R uniform on (0, 1), azimuth uniform.
/// The rotation uses an orthonormal basis (e1, e2) of the plane normal to g (Duff et al., JCGT 6(1),
/// 2017), which is well conditioned for every direction of g.
struct VssScattering {
    PairTable inv_alpha;
    KOKKOS_INLINE_FUNCTION void operator()(int s, int r, const double g[3], double gm, double u1, double u2,
                                           double out[3]) const {
        const double cchi = 2.0 * math::pow(u1, inv_alpha(s, r)) - 1.0;
        const double schi = math::sqrt(1.0 - cchi * cchi > 0.0 ? 1.0 - cchi * cchi : 0.0);
        if (!(gm > 0.0)) { // no relative motion: the direction does not matter (g' = 0)
            out[0] = 1.0;
            out[1] = out[2] = 0.0;
            return;
        }
        const double n[3] = {g[0] / gm, g[1] / gm, g[2] / gm};
        const double sign = n[2] >= 0.0 ? 1.0 : -1.0;
        const double a = -1.0 / (sign + n[2]);
        const double b = n[0] * n[1] * a;
        const double e1[3] = {1.0 + sign * n[0] * n[0] * a, sign * b, -sign * n[0]};
        const double e2[3] = {b, sign + n[1] * n[1] * a, -n[1]};
        const double eps = 2.0 * kPi * u2;
        const double ce = math::cos(eps), se = math::sin(eps);
        for (int k = 0; k < 3; ++k)
            out[k] = cchi * n[k] + schi * (ce * e1[k] + se * e2[k]);
    }
};

// ---- the two-body rule ---------------------------------------------------------------------

/// Elastic collision of masses m1, m2 (Bird 1994, ch. 2): centre-of-mass velocity
/// V = (m1 v1 + m2 v2)/(m1 + m2) and |g| are kept, the relative velocity g = v1 - v2 turns to
/// g' = |g| e (e from the scattering law), v1' = V + m2/(m1+m2) g', v2' = V - m1/(m1+m2) g'.
/// Momentum m1 v1 + m2 v2 and energy (m1|v1|^2 + m2|v2|^2)/2 are conserved to round-off.
template <class Scatter>
KOKKOS_INLINE_FUNCTION void collide_pair(const Scatter& scatter, int s, int r, double m1, double m2, double v1[3],
                                         double v2[3], double u1, double u2) {
    const double M = m1 + m2;
    const double g[3] = {v1[0] - v2[0], v1[1] - v2[1], v1[2] - v2[2]};
    const double gm = math::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
    double e[3];
    scatter(s, r, g, gm, u1, u2, e);
    const double a1 = m2 / M * gm, a2 = m1 / M * gm;
    for (int k = 0; k < 3; ++k) {
        const double V = (m1 * v1[k] + m2 * v2[k]) / M;
        v1[k] = V + a1 * e[k];
        v2[k] = V - a2 * e[k];
    }
}

/// Adjoint of collide_pair for a scattering direction e that does not depend on v1, v2 (isotropic
/// scattering): y1, y2 = dJ/dv1', dJ/dv2' become dJ/dv1, dJ/dv2, the transpose of the collision
/// Jacobian applied to them. With alpha = g/|g| (d|g|/dv1 = alpha^T):
///   dv1'/dv1 = (m1/M) I + (m2/M) e alpha^T,   dv1'/dv2 = (m2/M) (I - e alpha^T),
///   dv2'/dv1 = (m1/M) (I - e alpha^T),        dv2'/dv2 = (m2/M) I + (m1/M) e alpha^T.
/// For m1 = m2 these are the Maxwell-molecule adjoint collision rule of Caflisch, Silantyev & Yang,
/// J. Comput. Phys. 439, 110404 (2021): dv1'/dv1 = (I + e alpha^T)/2, dv1'/dv2 = (I - e alpha^T)/2;
/// unequal masses follow by differentiating Bird's rule above the same way.
KOKKOS_INLINE_FUNCTION void collide_pair_adjoint(double m1, double m2, const double g[3], double gm, const double e[3],
                                                 double y1[3], double y2[3]) {
    const double M = m1 + m2;
    const double e1 = e[0] * y1[0] + e[1] * y1[1] + e[2] * y1[2];
    const double e2 = e[0] * y2[0] + e[1] * y2[1] + e[2] * y2[2];
    const double inv = gm > 0.0 ? 1.0 / gm : 0.0; // g = 0: |g| is not differentiable; the event has measure 0
    const double c = (m2 * e1 - m1 * e2) / M * inv;
    for (int k = 0; k < 3; ++k) {
        const double y = y1[k] + y2[k];
        y1[k] = m1 / M * y + c * g[k];
        y2[k] = m2 / M * y - c * g[k];
    }
}

/// Counter-based streams of one collision group (NTC): a Philox key derived from the master seed
/// and a salt (the global id of the group's first particle this step), SplitMix64 finaliser
/// (Steele et al., OOPSLA 2014) so that nearby salts give unrelated keys.
KOKKOS_INLINE_FUNCTION std::uint64_t mix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

} // namespace kinflow::dsmc
