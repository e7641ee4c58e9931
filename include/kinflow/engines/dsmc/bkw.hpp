#pragma once
// The BKW solution of the homogeneous Boltzmann equation for Maxwell molecules with isotropic
// scattering (Bobylev, Sov. Phys. Dokl. 20, 822 (1976); Krook & Wu, Phys. Fluids 20, 1589 (1977)),
// normalised to unit density, zero mean and temperature 1 (∫|v|^2 f = 3), collision rate nu:
//   f = (2 pi K)^(-3/2) exp(-|v|^2/(2K)) [ (5K-3)/(2K) + (1-K)|v|^2/(2K^2) ],
//   K(tau) = 1 - exp(-tau/6) at BKW time tau = bkw_t0 + nu t (K >= 3/5 keeps f >= 0).
#include <cmath>

#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"

namespace kinflow::dsmc::bkw {

/// K at BKW time tau (in collision times).
inline double K_of_time(double tau) { return -std::expm1(-tau / 6.0); }

/// Moment M_{2k} = ∫|v|^{2k} f = (2k+1)!! K^(k-1) (k - (k-1) K): m2 = 3, m4 = 30K - 15K^2,
/// m6 = 315K^2 - 210K^3.
inline double moment(int k, double K) {
    double df = 1.0; // (2k+1)!!
    for (int j = 3; j <= 2 * k + 1; j += 2)
        df *= j;
    return df * std::pow(K, k - 1) * (k - (k - 1) * K);
}
inline double m4(double K) { return 30.0 * K - 15.0 * K * K; }
inline double m6(double K) { return 315.0 * K * K - 210.0 * K * K * K; }

/// Exact sample of f for parameter K: with probability (5K-3)/(2K) a Gaussian of variance K per
/// component, otherwise speed sqrt(K) chi_5 in a uniform direction. `u` is uniform on (0, 1), `z`
/// five independent standard normals. The chi_5 speed is |z| and its direction that of
/// (z0, z1, z2), which is uniform and independent of |z|.
KOKKOS_INLINE_FUNCTION void sample(double K, double u, const double z[5], double w[3]) {
    const double sk = math::sqrt(K);
    if (u < (5.0 * K - 3.0) / (2.0 * K)) {
        for (int k = 0; k < 3; ++k)
            w[k] = sk * z[k];
        return;
    }
    const double r3 = z[0] * z[0] + z[1] * z[1] + z[2] * z[2];
    const double r5 = r3 + z[3] * z[3] + z[4] * z[4];
    const double scale = r3 > 0.0 ? sk * math::sqrt(r5 / r3) : 0.0;
    for (int k = 0; k < 3; ++k)
        w[k] = scale * z[k];
}

} // namespace kinflow::dsmc::bkw
