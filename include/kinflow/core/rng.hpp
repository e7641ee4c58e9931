#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11 "Parallel random numbers:
// as easy as 1, 2, 3"). A draw is a pure function of (seed, purpose, step, global id, block):
// no generator state, so a trajectory does not depend on how particles are spread over ranks,
// threads or GPUs.
#include <cstdint>

#include <Kokkos_Core.hpp>
#include <Random123/philox.h>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/fast_math.hpp"

namespace kinflow {

/// What a stream of random numbers is for; streams with different purposes are independent.
enum class RngPurpose : std::uint32_t {
    InitPosition = 1,
    InitVelocity = 2,
    Noise = 3,
    Collision = 4,
    Shuffle = 5,
    User = 100
};

/// Stateless counter-based generator keyed by the master seed and a purpose.
class CounterRng {
  public:
    using Philox = r123::Philox4x32;

    CounterRng() = default;
    KOKKOS_INLINE_FUNCTION CounterRng(std::uint64_t seed, RngPurpose purpose)
        : _k0(static_cast<std::uint32_t>(seed)), _k1(static_cast<std::uint32_t>(seed >> 32)),
          _purpose(static_cast<std::uint32_t>(purpose)) {}

    /// Four independent 32-bit words for (step, id, block); ids up to 2^48, blocks up to 2^16.
    KOKKOS_INLINE_FUNCTION Philox::ctr_type raw(std::uint64_t step, std::uint64_t id, std::uint32_t block) const {
        Philox::ctr_type ctr = {{static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(id),
                                 static_cast<std::uint32_t>((id >> 32) & 0xFFFFu) | (block << 16),
                                 _purpose ^ (static_cast<std::uint32_t>(step >> 32) << 8)}};
        Philox::key_type key = {{_k0, _k1}};
        return Philox()(ctr, key);
    }

    /// Four uniforms in the open interval (0, 1), resolution 2^-32.
    KOKKOS_INLINE_FUNCTION void uniform4(std::uint64_t step, std::uint64_t id, std::uint32_t block,
                                         double u[4]) const {
        const auto r = raw(step, id, block);
        for (int k = 0; k < 4; ++k) u[k] = open_unit_from_word(r.v[k]);
    }

    /// Four independent standard normals (Box–Muller on two pairs of uniforms).
    KOKKOS_INLINE_FUNCTION void normal4(std::uint64_t step, std::uint64_t id, std::uint32_t block,
                                        double z[4]) const {
        double u[4];
        uniform4(step, id, block, u);
        box_muller(u[0], u[1], z[0], z[1]);
        box_muller(u[2], u[3], z[2], z[3]);
    }

    /// normal4 for B particles at once: z[k][j] = normal4(step, id[j], block)[k], bit for bit,
    /// whatever B and whichever particles share a batch. Pairs = 1 makes only z[0] and z[1]
    /// (one Box–Muller pair, enough for 1D/2D; z[2], z[3] are not written).
    /// Written for SIMD on CPUs (B = 1 on GPUs): the first lane loop (Philox, branch-free log and
    /// sincos) vectorizes with any flags; the square roots have a loop of their own because with
    /// errno-setting math (GCC's default) each sqrt keeps a conditional library call, which would
    /// stop the vectorization of the whole loop (with -fno-math-errno that loop vectorizes too).
    template <int B, int Pairs = 2>
    KOKKOS_INLINE_FUNCTION void normal4_lanes(std::uint64_t step, const std::uint64_t (&id)[B], std::uint32_t block,
                                              double (&z)[4][B]) const {
        static_assert(B >= 1 && (Pairs == 1 || Pairs == 2), "normal4_lanes: B >= 1 lanes, 1 or 2 pairs");
        double rr[Pairs][B]; // -2 ln u1 of each pair
        for (int j = 0; j < B; ++j) {
            double u[4];
            uniform4(step, id[j], block, u);
            for (int p = 0; p < Pairs; ++p) {
                rr[p][j] = -2.0 * fast_math::log(u[2 * p]);
                fast_math::sincos_2pi(u[2 * p + 1], z[2 * p + 1][j], z[2 * p][j]);
            }
        }
        for (int j = 0; j < B; ++j)
            for (int p = 0; p < Pairs; ++p) {
                const double r = math::sqrt(rr[p][j]);
                z[2 * p][j] *= r;
                z[2 * p + 1][j] *= r;
            }
    }

    /// Map a 32-bit word to (0, 1): (w + 1/2) 2^-32, never 0 or 1.
    KOKKOS_INLINE_FUNCTION static double to_open_unit(std::uint32_t w) {
        return (static_cast<double>(w) + 0.5) * 2.3283064365386963e-10;
    }

    /// to_open_unit(w), the same double, by bits instead of an unsigned-to-double conversion (which
    /// SSE2/AVX2 lack): 1 + (w + 1/2) 2^-32 is exact in a double, and so is subtracting 1.
    /// w must be below 2^32.
    KOKKOS_INLINE_FUNCTION static double open_unit_from_word(std::uint64_t w) {
        return fast_math::from_bits(0x3FF0000000000000ULL | (w << 20) | (std::uint64_t{1} << 19)) - 1.0;
    }

    /// Box & Muller (1958): two uniforms on (0, 1) to two independent standard normals,
    /// z1 = sqrt(-2 ln u1) cos(2 pi u2), z2 = sqrt(-2 ln u1) sin(2 pi u2). The log and sincos are
    /// kinflow::fast_math's branch-free fdlibm versions (< 1 ulp, < 2 ulp: see fast_math.hpp), so
    /// the transform vectorizes, and its bits do not depend on the C library (only on whether the
    /// compiler contracts a*b+c into FMAs; kinflow builds with -ffp-contract=off).
    KOKKOS_INLINE_FUNCTION static void box_muller(double u1, double u2, double& z1, double& z2) {
        const double r = math::sqrt(-2.0 * fast_math::log(u1));
        double s, c;
        fast_math::sincos_2pi(u2, s, c);
        z1 = r * c;
        z2 = r * s;
    }

  private:
    std::uint32_t _k0 = 0, _k1 = 0, _purpose = 0;
};

} // namespace kinflow
