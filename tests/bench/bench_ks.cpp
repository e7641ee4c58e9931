// Benchmark: Keller–Segel blob particles, direct all-pairs interaction (Euler–Maruyama steps).
// Usage: mpirun -n P bench-ks [particles=65536] [steps=3] [dim=2] [exchange=allgather|ring] [check_every=0]
// (check_every > 0: a collapse check, i.e. the pair sum with the snapshot extras, every that many steps)
// Prints pair interactions per second: N_local x N pair evaluations per rank and step (every pair
// is evaluated from both sides, no symmetric half-sum; the self pair is included in the count),
// summed over ranks, over the wall time of whole steps (gather, pair sum, drift, noise, update).
// The CPU time of rank 0 is printed too: on a shared machine wall time includes time slices lost
// to other processes, CPU time does not.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/compat.hpp"
#include "kinflow/engines/ks/ks_engine.hpp"

namespace {
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
} // namespace

int main(int argc, char** argv) {
    kinflow::comm::Environment mpi(argc, argv);
    Kokkos::initialize(argc, argv);
    {
        using namespace kinflow;
        const auto comm = comm::Communicator::world();
        const std::int64_t n = argc > 1 ? std::atoll(argv[1]) : 65536;
        const int steps = argc > 2 ? std::atoi(argv[2]) : 3;
        const int dim = argc > 3 ? std::atoi(argv[3]) : 2;
        const std::string exchange = argc > 4 ? argv[4] : "allgather";
        const std::int64_t check_every = argc > 5 ? std::atoll(argv[5]) : 0;
        ks::Params p;
        p.dim = dim;
        p.particles = n;
        p.mass = 1.0;
        p.chi = 1.0;
        p.mu = 1.0;
        p.delta = 0.01;
        p.exchange = exchange == "ring" ? ks::Exchange::Ring : ks::Exchange::Allgather;
        p.blowup_fraction = check_every > 0 ? 1.0 : 0.0; // 1.0: checked, never met (init_std 1 >> delta)
        p.blowup_check_every = check_every > 0 ? check_every : 1;
        ks::KsEngine engine(comm, p, 7);
        ParticleSet particles;
        engine.init(particles);
        const double dt = 1e-6;
        engine.step(particles, 0, dt); // warm-up
        Kokkos::fence();
        comm.barrier();
        Kokkos::Timer timer;
        const double cpu0 = cpu_seconds();
        for (int s = 1; s <= steps; ++s)
            engine.step(particles, s, dt);
        Kokkos::fence();
        const double cpu = cpu_seconds() - cpu0;
        comm.barrier();
        const double secs = timer.seconds();
        const double pairs = static_cast<double>(n) * static_cast<double>(n) * steps;
        if (comm.is_root()) {
            std::printf("bench-ks: dim=%d N=%lld steps=%d ranks=%d exchange=%s check_every=%lld threads/rank=%d exec=%s "
                        "lanes=%d\n",
                        dim, static_cast<long long>(n), steps, comm.size(), exchange.c_str(),
                        static_cast<long long>(check_every), kinflow::concurrency(), ExecSpace::name(),
                        ks::detail::lanes());
            std::printf("  %.3f s wall, %.3f s/step, %.3e pair interactions/s total, %.3e per rank\n", secs,
                        secs / steps, pairs / secs, pairs / secs / comm.size());
            std::printf("  rank 0 CPU time %.3f s: %.3e pair interactions/s per rank\n", cpu,
                        pairs / comm.size() / cpu);
        }
    }
    Kokkos::finalize();
    return 0;
}
