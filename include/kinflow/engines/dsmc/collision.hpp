#pragma once
// Binary collision physics of the DSMC engine, callable in kernels and on the host: collision
// kernels sigma_T g per species pair, scattering laws, and the momentum- and energy-conserving
// two-body rule. Each scheme (stepper.cpp) is a template over a cross-section and a scattering law.
#include <cstdint>

#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/fast_math.hpp"
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

/// The VHS/VSS constants of species pair (s, r) (Bird 1994, "Molecular Gas Dynamics and the Direct
/// Simulation of Gas Flows", ch. 4, gas mixtures): an unlike pair takes the means of the two
/// species' d_ref, omega and VSS alpha; m_r = m_s m_r/(m_s + m_r) is the reduced mass. The one
/// definition of the pair mixing, for the collision model (detail::with_collision_model) and the
/// adjoint's kernel-parameter tables.
struct PairMixture {
    double d_ref, omega, alpha, reduced_mass;
};
inline PairMixture pair_mixture(const Params& p, int s, int r) {
    const auto S = static_cast<std::size_t>(s), R = static_cast<std::size_t>(r);
    return {0.5 * (p.d_ref[S] + p.d_ref[R]), 0.5 * (p.omega[S] + p.omega[R]), 0.5 * (p.alpha[S] + p.alpha[R]),
            p.mass[S] * p.mass[R] / (p.mass[S] + p.mass[R])};
}

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
/// or -P/(1 - P) times it (rejected): the score-function term of the acceptance-rejection step in
/// Yang, Silantyev & Caflisch, J. Comput. Phys. 488, 112247 (2023) (arXiv:2207.11579), taken here
/// by the kernel parameter instead of the velocities. `alpha`: the VSS exponent (adjoint.parameters
/// alpha) is differentiated too; it acts through the post-collision direction (a pathwise term).
struct KernelTangent {
    int n = 0; ///< kernel parameters in use (0: none)
    PairTable a[kMaxKernelParameters], b[kMaxKernelParameters];
    bool alpha = false; ///< accumulate d/d alpha of every accepted collision (KernelScore::alpha_*)
    KOKKOS_INLINE_FUNCTION double operator()(int q, int s, int r, double g2) const {
        const double bq = b[q](s, r);
        return a[q](s, r) + (bq != 0.0 && g2 > 0.0 ? bq * math::log(g2) : 0.0);
    }
};
/// One step's sums on one rank: v[q] = explicit d L/d theta_q of the kernel parameters (L:
/// log-probability of the step's acceptance decisions); alpha_pathwise = sum over accepted
/// collisions of gamma'.dv'/d alpha, alpha_score = the same with beta (the adjoint of L).
struct KernelScore {
    double v[kMaxKernelParameters] = {};
    double alpha_pathwise = 0.0, alpha_score = 0.0;
};

// ---- scattering laws: the unit vector of the post-collision relative velocity ------------

/// Isotropic scattering (Maxwell, hard sphere, VHS): g'/|g'| uniform on the sphere,
/// cos theta = 2 u1 - 1, phi = 2 pi u2 (sin and cos of 2 pi u by fast_math::sincos_2pi, within
/// 2 ulp, as in the VSS law below).
struct IsotropicScattering {
    KOKKOS_INLINE_FUNCTION void operator()(int, int, const double g[3], double /*gm*/, double u1, double u2,
                                           double out[3]) const {
        (void)g;
        const double ct = 2.0 * u1 - 1.0;
        const double st = math::sqrt(1.0 - ct * ct > 0.0 ? 1.0 - ct * ct : 0.0);
        double sp, cp; // sin, cos of phi = 2 pi u2
        fast_math::sincos_2pi(u2, sp, cp);
        out[0] = ct;
        out[1] = st * cp;
        out[2] = st * sp;
    }
    /// |g| (de/dg)^T z: zero, e does not depend on g.
    KOKKOS_INLINE_FUNCTION void direction_adjoint(int, int, const double*, double, double, double, const double*,
                                                  double out[3]) const {
        out[0] = out[1] = out[2] = 0.0;
    }
    /// de/d alpha: zero (no alpha).
    KOKKOS_INLINE_FUNCTION void direction_dalpha(int, int, const double*, double, double, double, double out[3]) const {
        out[0] = out[1] = out[2] = 0.0;
    }
};

/// Variable soft sphere (Koura & Matsumoto, Phys. Fluids A 3, 2459 (1991)): the deflection of the
/// relative velocity has cos chi = 2 R^(1/alpha) - 1 with R uniform on (0, 1), azimuth uniform.
/// The rotation uses an orthonormal basis (e1, e2) of the plane normal to g (Duff et al., JCGT 6(1),
/// 2017), which is well conditioned for every direction of g.
struct VssScattering {
    PairTable inv_alpha;
    /// The orthonormal basis (e1, e2) of the plane normal to the unit vector n (Duff et al. 2017)
    /// and, if de1, de2 are given, its derivatives de_k[i][j] = d e_k,i / d n_j (n unconstrained).
    KOKKOS_INLINE_FUNCTION static void basis(const double n[3], double e1[3], double e2[3], double (*de1)[3] = nullptr,
                                             double (*de2)[3] = nullptr) {
        const double sign = n[2] >= 0.0 ? 1.0 : -1.0;
        const double a = -1.0 / (sign + n[2]);
        const double b = n[0] * n[1] * a;
        e1[0] = 1.0 + sign * n[0] * n[0] * a;
        e1[1] = sign * b;
        e1[2] = -sign * n[0];
        e2[0] = b;
        e2[1] = sign + n[1] * n[1] * a;
        e2[2] = -n[1];
        if (de1 == nullptr)
            return;
        // da/dn = (0, 0, a^2); db/dn = (n1 a, n0 a, n0 n1 a^2)
        const double db[3] = {n[1] * a, n[0] * a, n[0] * n[1] * a * a};
        const double a2 = a * a;
        const double r0[3] = {2.0 * sign * n[0] * a, 0.0, sign * n[0] * n[0] * a2};
        const double r2[3] = {-sign, 0.0, 0.0};
        const double q1[3] = {0.0, 2.0 * n[1] * a, n[1] * n[1] * a2};
        const double q2[3] = {0.0, -1.0, 0.0};
        for (int j = 0; j < 3; ++j) {
            de1[0][j] = r0[j];
            de1[1][j] = sign * db[j];
            de1[2][j] = r2[j];
            de2[0][j] = db[j];
            de2[1][j] = q1[j];
            de2[2][j] = q2[j];
        }
    }
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
        double e1[3], e2[3];
        basis(n, e1, e2);
        double se, ce; // sin, cos of eps = 2 pi u2
        fast_math::sincos_2pi(u2, se, ce);
        for (int k = 0; k < 3; ++k)
            out[k] = cchi * n[k] + schi * (ce * e1[k] + se * e2[k]);
    }
    /// |g| (de/dg)^T z for the direction e(g) above: with n = g/|g|, dn/dg = (I - n n^T)/|g| and
    /// de/dn = cos chi I + sin chi (cos eps de1/dn + sin eps de2/dn), so |g| (de/dg)^T z =
    /// (I - n n^T) (de/dn)^T z. The basis jumps across n_z = 0 (a reflection of (e1, e2)); the jump
    /// only shifts the uniform azimuth eps, so its expected contribution vanishes and the pathwise
    /// derivative stays unbiased (a common-random-number difference sees the rare jumps as noise).
    KOKKOS_INLINE_FUNCTION void direction_adjoint(int s, int r, const double g[3], double gm, double u1, double u2,
                                                  const double z[3], double out[3]) const {
        out[0] = out[1] = out[2] = 0.0;
        if (!(gm > 0.0))
            return;
        const double cchi = 2.0 * math::pow(u1, inv_alpha(s, r)) - 1.0;
        const double schi = math::sqrt(1.0 - cchi * cchi > 0.0 ? 1.0 - cchi * cchi : 0.0);
        const double n[3] = {g[0] / gm, g[1] / gm, g[2] / gm};
        double e1[3], e2[3], de1[3][3], de2[3][3];
        basis(n, e1, e2, de1, de2);
        double se, ce; // sin, cos of eps = 2 pi u2
        fast_math::sincos_2pi(u2, se, ce);
        double w[3]; // (de/dn)^T z
        for (int j = 0; j < 3; ++j) {
            w[j] = cchi * z[j];
            for (int i = 0; i < 3; ++i)
                w[j] += schi * (ce * de1[i][j] + se * de2[i][j]) * z[i];
        }
        const double nw = n[0] * w[0] + n[1] * w[1] + n[2] * w[2];
        for (int j = 0; j < 3; ++j)
            out[j] = w[j] - nw * n[j];
    }
    /// de/d alpha of the pair's alpha at fixed (u1, u2, g): cos chi = 2 u1^(1/alpha) - 1 gives
    /// d cos chi/d alpha = -2 u1^(1/alpha) ln(u1)/alpha^2 and d sin chi = -(cos chi/sin chi) d cos chi.
    KOKKOS_INLINE_FUNCTION void direction_dalpha(int s, int r, const double g[3], double gm, double u1, double u2,
                                                 double out[3]) const {
        out[0] = out[1] = out[2] = 0.0;
        if (!(gm > 0.0) || !(u1 > 0.0))
            return;
        const double ia = inv_alpha(s, r);
        const double x = math::pow(u1, ia);
        const double cchi = 2.0 * x - 1.0;
        const double s2 = 1.0 - cchi * cchi;
        if (!(s2 > 0.0))
            return;
        const double schi = math::sqrt(s2);
        const double dc = -2.0 * x * math::log(u1) * ia * ia;
        const double ds = -cchi / schi * dc;
        const double n[3] = {g[0] / gm, g[1] / gm, g[2] / gm};
        double e1[3], e2[3];
        basis(n, e1, e2);
        double se, ce; // sin, cos of eps = 2 pi u2
        fast_math::sincos_2pi(u2, se, ce);
        for (int k = 0; k < 3; ++k)
            out[k] = dc * n[k] + ds * (ce * e1[k] + se * e2[k]);
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

/// Adjoint of collide_pair: y1, y2 = dJ/dv1', dJ/dv2' become dJ/dv1, dJ/dv2, the transpose of the
/// collision Jacobian applied to them. With alpha = g/|g| (d|g|/dv1 = alpha^T) and e = e(g) the
/// scattering law's direction:
///   dv1'/dv1 = (m1/M) I + (m2/M) (e alpha^T + |g| de/dg),   dv1'/dv2 = (m2/M) (I - e alpha^T - |g| de/dg),
///   dv2'/dv1 = (m1/M) (I - e alpha^T - |g| de/dg),          dv2'/dv2 = (m2/M) I + (m1/M) (e alpha^T + |g| de/dg).
/// For m1 = m2 and isotropic scattering (de/dg = 0) these are the adjoint collision rule for
/// Maxwell molecules of Caflisch, Silantyev & Yang, J. Comput. Phys. 439, 110404 (2021)
/// (arXiv:2009.01363; the transposed Jacobian (I +- e alpha^T)/2 of their discrete adjoint DSMC);
/// unequal masses follow by differentiating Bird's rule above the same way. A direction that
/// depends on g (VSS: e is built from g/|g|) adds |g| (de/dg)^T z, z = (m2 y1 - m1 y2)/M: the
/// "adjoint Jacobian of the collision parameter's dependence on the velocities" of Yang, Silantyev
/// & Caflisch, J. Comput. Phys. 488, 112247 (2023) (arXiv:2207.11579), for the VSS deflection.
template <class Scatter>
KOKKOS_INLINE_FUNCTION void collide_pair_adjoint(const Scatter& scatter, int s, int r, double m1, double m2,
                                                 const double g[3], double gm, const double e[3], double u1, double u2,
                                                 double y1[3], double y2[3]) {
    const double M = m1 + m2;
    const double z[3] = {(m2 * y1[0] - m1 * y2[0]) / M, (m2 * y1[1] - m1 * y2[1]) / M, (m2 * y1[2] - m1 * y2[2]) / M};
    const double ez = e[0] * z[0] + e[1] * z[1] + e[2] * z[2];
    double w[3];
    scatter.direction_adjoint(s, r, g, gm, u1, u2, z, w);
    const double inv = gm > 0.0 ? 1.0 / gm : 0.0; // g = 0: |g| is not differentiable; the event has measure 0
    for (int k = 0; k < 3; ++k) {
        const double y = y1[k] + y2[k];
        const double dg = ez * g[k] * inv + w[k]; // the adjoint of g = v1 - v2
        y1[k] = m1 / M * y + dg;
        y2[k] = m2 / M * y - dg;
    }
}
/// The isotropic case (e independent of v1, v2).
KOKKOS_INLINE_FUNCTION void collide_pair_adjoint(double m1, double m2, const double g[3], double gm, const double e[3],
                                                 double y1[3], double y2[3]) {
    collide_pair_adjoint(IsotropicScattering{}, 0, 0, m1, m2, g, gm, e, 0.0, 0.0, y1, y2);
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
