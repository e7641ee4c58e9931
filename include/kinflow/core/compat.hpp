#pragma once
// The one place where Kokkos 3.4 (Debian) and Kokkos 4.x (clusters) differ for kinflow.
#include <Kokkos_Core.hpp>

#ifndef KOKKOS_VERSION
#error "Kokkos version macro missing"
#endif

namespace kinflow {

/// π (Kokkos 3.4 has no Kokkos::numbers::pi).
inline constexpr double kPi = 3.14159265358979323846264338327950288;

namespace math {
#if KOKKOS_VERSION >= 40000
using Kokkos::cos;
using Kokkos::exp;
using Kokkos::fabs;
using Kokkos::log;
using Kokkos::pow;
using Kokkos::sin;
using Kokkos::sqrt;
#else
using Kokkos::Experimental::cos;
using Kokkos::Experimental::exp;
using Kokkos::Experimental::fabs;
using Kokkos::Experimental::log;
using Kokkos::Experimental::pow;
using Kokkos::Experimental::sin;
using Kokkos::Experimental::sqrt;
#endif
/// Finite check usable in kernels.
KOKKOS_INLINE_FUNCTION bool is_finite(double x) { return x - x == 0.0; }
} // namespace math

/// Threads (or GPU lanes) of the default execution space; `concurrency()` on an instance
/// works in 3.4 (static) and 4.x (member).
inline int concurrency() { return static_cast<int>(Kokkos::DefaultExecutionSpace().concurrency()); }

} // namespace kinflow
