#pragma once
// Prescribed divergence-free flows that advect the Keller–Segel particles (DeepParticle setting,
// Wang, Xin & Zhang, J. Comput. Phys. 2022): v(x) at a point, usable in kernels and on the host.
// Each is divergence-free: every component is independent of its own coordinate (shear,
// Kolmogorov, ABC) or it derives from a stream function (cellular: psi = A sin x sin y).
#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"

namespace kinflow::ks {

/// v = 0.
struct NoFlow {
    template <int Dim> KOKKOS_INLINE_FUNCTION void velocity(const double*, double* v) const {
        for (int k = 0; k < Dim; ++k)
            v[k] = 0.0;
    }
};

/// Plane shear v = A (y, 0[, 0]).
struct ShearFlow {
    double a;
    template <int Dim> KOKKOS_INLINE_FUNCTION void velocity(const double* x, double* v) const {
        v[0] = a * x[1];
        for (int k = 1; k < Dim; ++k)
            v[k] = 0.0;
    }
};

/// 2D cellular flow, stream function psi = A sin x sin y: v = (psi_y, -psi_x) =
/// A (sin x cos y, -cos x sin y). Cells [0, pi]^2 + pi Z^2 are invariant; v = 0 on their edges.
struct CellularFlow {
    double a;
    template <int Dim> KOKKOS_INLINE_FUNCTION void velocity(const double* x, double* v) const {
        static_assert(Dim == 2, "cellular flow is two-dimensional");
        v[0] = a * math::sin(x[0]) * math::cos(x[1]);
        v[1] = -a * math::cos(x[0]) * math::sin(x[1]);
    }
};

/// 3D Kolmogorov flow v = A (sin z, sin x, sin y) (the DeepParticle KS setting).
struct KolmogorovFlow {
    double a;
    template <int Dim> KOKKOS_INLINE_FUNCTION void velocity(const double* x, double* v) const {
        static_assert(Dim == 3, "Kolmogorov flow is three-dimensional");
        v[0] = a * math::sin(x[2]);
        v[1] = a * math::sin(x[0]);
        v[2] = a * math::sin(x[1]);
    }
};

/// Arnold–Beltrami–Childress flow with A = B = C: v = A (sin z + cos y, sin x + cos z, sin y + cos x).
struct AbcFlow {
    double a;
    template <int Dim> KOKKOS_INLINE_FUNCTION void velocity(const double* x, double* v) const {
        static_assert(Dim == 3, "ABC flow is three-dimensional");
        v[0] = a * (math::sin(x[2]) + math::cos(x[1]));
        v[1] = a * (math::sin(x[0]) + math::cos(x[2]));
        v[2] = a * (math::sin(x[1]) + math::cos(x[0]));
    }
};

} // namespace kinflow::ks
