#include "kinflow/io/version_report.hpp"

#include <sstream>
#include <vector>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/version.hpp"
#include "kinflow/io/hdf5.hpp"

namespace kinflow::io {

namespace {
/// The execution spaces this Kokkos was built with, by their Kokkos names.
std::vector<const char*> kokkos_execution_spaces() {
    std::vector<const char*> spaces;
#ifdef KOKKOS_ENABLE_SERIAL
    spaces.push_back("Serial");
#endif
#ifdef KOKKOS_ENABLE_OPENMP
    spaces.push_back("OpenMP");
#endif
#ifdef KOKKOS_ENABLE_THREADS
    spaces.push_back("Threads");
#endif
#ifdef KOKKOS_ENABLE_HPX
    spaces.push_back("HPX");
#endif
#ifdef KOKKOS_ENABLE_CUDA
    spaces.push_back("Cuda");
#endif
#ifdef KOKKOS_ENABLE_HIP
    spaces.push_back("HIP");
#endif
#ifdef KOKKOS_ENABLE_SYCL
    spaces.push_back("SYCL");
#endif
#ifdef KOKKOS_ENABLE_OPENMPTARGET
    spaces.push_back("OpenMPTarget");
#endif
    return spaces;
}
} // namespace

std::string version_report(const std::string& program) {
    std::ostringstream os;
    os << program << " " << kVersion << "\n";
    // KOKKOS_VERSION is major * 10000 + minor * 100 + patch (3.4 and 4.x alike).
    os << "Kokkos: " << KOKKOS_VERSION / 10000 << "." << KOKKOS_VERSION / 100 % 100 << "." << KOKKOS_VERSION % 100
       << ", execution spaces:";
    for (const char* s : kokkos_execution_spaces()) os << " " << s;
    os << " (default " << Kokkos::DefaultExecutionSpace::name() << ")\n";
    os << "MPI: " << comm::mpi_library_version() << "\n";
    os << "HDF5: " << hdf5_version() << ", parallel: " << (hdf5_is_parallel() ? "yes" : "no") << "\n";
    const std::string torch = kTorchVersion;
    os << "LibTorch: " << (torch.empty() ? "no" : "yes, " + torch) << "\n";
    return os.str();
}

} // namespace kinflow::io
