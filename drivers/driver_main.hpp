#pragma once
// What every kinflow driver's main() does: MPI and Kokkos set-up (hiding --help from Kokkos 3.4,
// which would print its own), one error report, and the exit code.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/error.hpp"

namespace kinflow::drivers {

/// An error every rank meets identically (bad deck, missing file): reported once by rank 0,
/// clean exit. Any other exception is reported by the rank that met it and aborts all ranks.
struct SetupError : Error {
    using Error::Error;
};

/// `what` on one line: every line break (with the blanks around it) becomes one space. Errors from
/// libraries (a Kokkos allocation failure, LibTorch) span several lines; the report is one.
inline std::string one_line(const std::string& what) {
    std::string out;
    bool brk = false;
    for (const char c : what) {
        if (c == '\n' || c == '\r') {
            brk = true;
            while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
            continue;
        }
        if (brk && (c == ' ' || c == '\t')) continue;
        if (brk && !out.empty()) out += ' ';
        brk = false;
        out += c;
    }
    return out;
}

/// When a driver initialises MPI: always, or only when a launcher started it on several ranks
/// (a process alone then runs without MPI on comm::Communicator::local(), sparing MPI_Init's
/// singleton start-up, ~0.7 s).
enum class Mpi { Always, WhenLaunched };

/// `run(args, comm)` gets argv without the Kokkos arguments (args[0] is the program name).
template <class Run>
int driver_main(int argc, char** argv, const char* name, Run&& run, Mpi mpi_use = Mpi::Always) {
    comm::Environment mpi(argc, argv, mpi_use == Mpi::Always || comm::launched_ranks() > 1);
    bool help = false;
    std::vector<char*> kargs;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (i > 0 && (a == "--help" || a == "-h")) help = true;
        else kargs.push_back(argv[i]);
    }
    int kargc = static_cast<int>(kargs.size());
    Kokkos::initialize(kargc, kargs.data());
    std::vector<char*> args(kargs.begin(), kargs.begin() + kargc);
    std::string help_flag = "--help";
    if (help) args.push_back(help_flag.data());
    int rc = 0;
    {
        const auto comm = mpi.initialised() ? comm::Communicator::world() : comm::Communicator::local();
        try {
            rc = run(static_cast<int>(args.size()), args.data(), comm);
        } catch (const SetupError& e) {
            if (comm.is_root()) std::cerr << name << ": error: " << one_line(e.what()) << std::endl;
            rc = 1;
        } catch (const std::exception& e) {
            std::cerr << name << ": error" << (comm.size() > 1 ? " (rank " + std::to_string(comm.rank()) + ")" : "")
                      << ": " << one_line(e.what()) << std::endl;
            if (comm.size() > 1) comm.abort(1);
            rc = 1;
        }
    }
    Kokkos::finalize();
    return rc;
}

} // namespace kinflow::drivers
