#pragma once
// Kokkos aliases used across kinflow. Data that goes to HDF5 or LibTorch is LayoutRight.
#include <cstdint>

#include <Kokkos_Core.hpp>

namespace kinflow {

using ExecSpace = Kokkos::DefaultExecutionSpace;
using MemSpace = ExecSpace::memory_space;
using HostSpace = Kokkos::HostSpace;

/// [n, components] row-major array on the device (positions, velocities).
using VectorView = Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>;
using IdView = Kokkos::View<std::int64_t*, Kokkos::LayoutRight, MemSpace>;
using SpeciesView = Kokkos::View<std::int32_t*, Kokkos::LayoutRight, MemSpace>;
using ScalarView = Kokkos::View<double*, Kokkos::LayoutRight, MemSpace>;

} // namespace kinflow
