#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11 "Parallel random numbers:
// as easy as 1, 2, 3"). A draw is a pure function of (seed, purpose, step, global id, block):
// no generator state, so a trajectory does not depend on how particles are spread over ranks,
// threads or GPUs.
#include <cstdint>

#include <Kokkos_Core.hpp>
#include <Random123/philox.h>

#include "kinflow/core/compat.hpp"

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
        for (int k = 0; k < 4; ++k) u[k] = to_open_unit(r.v[k]);
    }

    /// Four independent standard normals (Box–Muller on two pairs of uniforms).
    KOKKOS_INLINE_FUNCTION void normal4(std::uint64_t step, std::uint64_t id, std::uint32_t block,
                                        double z[4]) const {
        double u[4];
        uniform4(step, id, block, u);
        box_muller(u[0], u[1], z[0], z[1]);
        box_muller(u[2], u[3], z[2], z[3]);
    }

    /// Map a 32-bit word to (0, 1): (w + 1/2) 2^-32, never 0 or 1.
    KOKKOS_INLINE_FUNCTION static double to_open_unit(std::uint32_t w) {
        return (static_cast<double>(w) + 0.5) * 2.3283064365386963e-10;
    }

    /// Box & Muller (1958): two uniforms on (0, 1) to two independent standard normals.
    KOKKOS_INLINE_FUNCTION static void box_muller(double u1, double u2, double& z1, double& z2) {
        const double r = math::sqrt(-2.0 * math::log(u1));
        const double a = 2.0 * kPi * u2;
        z1 = r * math::cos(a);
        z2 = r * math::sin(a);
    }

  private:
    std::uint32_t _k0 = 0, _k1 = 0, _purpose = 0;
};

} // namespace kinflow
