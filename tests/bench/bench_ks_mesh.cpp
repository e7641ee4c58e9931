// Benchmark: Keller–Segel particle–mesh solver (ks.solver = mesh) against the direct sum.
// Usage: mpirun -n P bench-ks-mesh [dim=2] [n_max=1000000] [direct_max=100000] [steps=3] [cells=0] [p3m_cutoff=0]
//                                   [mesh_fft=auto] [n_min=100]
// For N = 10^2, 3 10^2, 10^3, ... up to n_max: the wall time of one Euler–Maruyama step (mean over
// `steps` steps after a warm-up step) with the mesh solver (mesh_cells = cells, or 0: the power of two
// >= N^(1/dim), at least 64, so the grid grows with N and the cost like N log N) and with the direct
// sum where N <= direct_max; beyond it the direct time is estimated from the pair rate measured at
// the largest direct N (N^2 scaling). Prints the crossover N where mesh becomes cheaper, and the
// mesh drift's relative L2 error against the direct sum where both ran. mesh_fft = auto | replicated |
// distributed (ks.mesh_fft; the column fft says which ran); the series starts at n_min (e.g. 1e6 with
// n_max = 1e6 and direct_max = 0 times that size alone).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/compat.hpp"
#include "kinflow/engines/ks/ks_engine.hpp"

namespace {

using namespace kinflow;

/// Seconds per step (mean over `steps`) and the drift of the initial state.
double time_step(const comm::Communicator& comm, const ks::Params& p, int steps, std::vector<double>* drift,
                 bool* distributed = nullptr) {
    ks::KsEngine engine(comm, p, 7);
    ParticleSet particles;
    engine.init(particles);
    if (distributed)
        *distributed = engine.mesh_info() && engine.mesh_info()->distributed;
    if (drift) {
        auto d = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), engine.drift(particles));
        drift->assign(d.data(), d.data() + d.size());
    }
    const double dt = 1e-6;
    engine.step(particles, 0, dt); // warm-up (and the kernel transform of the mesh)
    Kokkos::fence();
    comm.barrier();
    Kokkos::Timer timer;
    for (int s = 1; s <= steps; ++s)
        engine.step(particles, s, dt);
    Kokkos::fence();
    comm.barrier();
    return comm.max(timer.seconds()) / steps;
}

} // namespace

int main(int argc, char** argv) {
    kinflow::comm::Environment mpi(argc, argv);
    Kokkos::initialize(argc, argv);
    {
        const auto comm = comm::Communicator::world();
        const int dim = argc > 1 ? std::atoi(argv[1]) : 2;
        const double n_max = argc > 2 ? std::atof(argv[2]) : 1e6;
        const double direct_max = argc > 3 ? std::atof(argv[3]) : 1e5;
        const int steps = argc > 4 ? std::atoi(argv[4]) : 3;
        const int cells_arg = argc > 5 ? std::atoi(argv[5]) : 0;
        const double p3m = argc > 6 ? std::atof(argv[6]) : 0.0;
        const std::string fft_arg = argc > 7 ? argv[7] : "auto";
        const double n_min = argc > 8 ? std::atof(argv[8]) : 1e2;
        ks::MeshFft fft = ks::MeshFft::Auto;
        if (fft_arg == "replicated") {
            fft = ks::MeshFft::Replicated;
        } else if (fft_arg == "distributed") {
            fft = ks::MeshFft::Distributed;
        } else if (fft_arg != "auto") {
            if (comm.is_root())
                std::fprintf(stderr, "bench-ks-mesh: mesh_fft must be auto | replicated | distributed, not '%s'\n",
                             fft_arg.c_str());
            Kokkos::finalize();
            return 2;
        }
        if (comm.is_root()) {
            std::printf("bench-ks-mesh: dim=%d ranks=%d threads/rank=%d exec=%s steps=%d p3m_cutoff=%g mesh_fft=%s "
                        "(wall s/step, "
                        "max over ranks)\n",
                        dim, comm.size(), concurrency(), ExecSpace::name(), steps, p3m, fft_arg.c_str());
            std::printf("%10s %6s %5s %12s %12s %10s %12s\n", "N", "cells", "fft", "mesh s/step", "direct", "ratio",
                        "mesh L2 err");
        }
        double pair_rate = 0, prev_n = 0, prev_ratio = 0, crossover = 0;
        for (double n = n_min; n <= n_max * 1.0001; n *= (std::fmod(std::log10(n), 1.0) < 0.1 ? 3.0 : 10.0 / 3.0)) {
            const auto N = static_cast<std::int64_t>(std::llround(n));
            ks::Params p;
            p.dim = dim;
            p.particles = N;
            p.delta = 0.05;
            p.blowup_fraction = 0.0;
            p.solver = ks::Solver::Mesh;
            int cells = cells_arg;
            if (cells == 0) {
                cells = 64;
                while (cells < std::pow(static_cast<double>(N), 1.0 / dim))
                    cells *= 2;
            }
            p.mesh_cells = cells;
            p.p3m_cutoff = p3m;
            p.mesh_fft = fft;
            std::vector<double> dm, dd;
            bool distributed = false;
            const double mesh = time_step(comm, p, steps, &dm, &distributed);
            double direct = 0, err = -1;
            bool measured = false;
            if (n <= direct_max * 1.0001) {
                p.solver = ks::Solver::Direct;
                direct = time_step(comm, p, 1, &dd);
                pair_rate = static_cast<double>(N) * static_cast<double>(N) / direct;
                measured = true;
                double num = 0, den = 0;
                for (std::size_t i = 0; i < dm.size(); ++i) {
                    num += (dm[i] - dd[i]) * (dm[i] - dd[i]);
                    den += dd[i] * dd[i];
                }
                err = std::sqrt(comm.sum(num) / comm.sum(den));
            } else if (pair_rate > 0) {
                direct = static_cast<double>(N) * static_cast<double>(N) / pair_rate;
            }
            const double ratio = direct / mesh;
            if (crossover == 0 && ratio > 1 && prev_n > 0 && prev_ratio <= 1) // log-log interpolation
                crossover = std::exp(std::log(prev_n) + (std::log(n) - std::log(prev_n)) * (0 - std::log(prev_ratio)) /
                                                            (std::log(ratio) - std::log(prev_ratio)));
            if (comm.is_root()) {
                char e[32], d[32], r[32];
                std::snprintf(e, sizeof e, err >= 0 ? "%.2e" : "-", err);
                if (direct > 0)
                    std::snprintf(d, sizeof d, "%.4g%s", direct, measured ? " " : "*");
                else
                    std::snprintf(d, sizeof d, "- ");
                std::snprintf(r, sizeof r, direct > 0 ? "%.3g" : "-", ratio);
                std::printf("%10lld %6d %5s %12.4g %12s %10s %12s\n", static_cast<long long>(N), cells,
                            distributed ? "dist" : "repl", mesh, d, r, e);
            }
            prev_n = n;
            prev_ratio = ratio;
        }
        if (comm.is_root()) {
            if (pair_rate > 0)
                std::printf("  * estimated from the direct pair rate %.3e pairs/s at the largest measured N\n",
                            pair_rate);
            else
                std::printf("  direct sum not run (direct_max below the series)\n");
            if (crossover > 0)
                std::printf("  crossover: mesh cheaper than direct above N ~ %.3g\n", crossover);
            else
                std::printf("  crossover: not within the series (mesh %s)\n",
                            prev_ratio > 1 ? "always cheaper" : "never cheaper");
        }
    }
    Kokkos::finalize();
    return 0;
}
