#pragma once
// What the drivers print for --version: kinflow's version and the libraries it runs on.
#include <string>

namespace kinflow::io {

/// Lines "PROGRAM VERSION", then "Kokkos: ...", "MPI: ...", "HDF5: ...", "LibTorch: ..." (the
/// version and enabled execution spaces of Kokkos, the first line of MPI_Get_library_version,
/// the HDF5 library version and whether it is parallel, whether LibTorch is built in and its version).
std::string version_report(const std::string& program);

} // namespace kinflow::io
