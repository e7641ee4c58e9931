// Benchmark: overdamped 3D Ornstein–Uhlenbeck steps (Euler–Maruyama + Philox noise).
// Usage: mpirun -n P bench-langevin [particles=1000000] [steps=50] [dim=3]
// Prints particle-steps per second, total and per rank.
#include <cstdio>
#include <cstdlib>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/compat.hpp"
#include "kinflow/engines/langevin/langevin_engine.hpp"

int main(int argc, char** argv) {
    kinflow::comm::Environment mpi(argc, argv);
    Kokkos::initialize(argc, argv);
    {
        using namespace kinflow;
        const auto comm = comm::Communicator::world();
        const std::int64_t n = argc > 1 ? std::atoll(argv[1]) : 1000000;
        const int steps = argc > 2 ? std::atoi(argv[2]) : 50;
        const int dim = argc > 3 ? std::atoi(argv[3]) : 3;
        langevin::Params p;
        p.dim = dim;
        p.particles = n;
        p.potential = langevin::Potential::Harmonic;
        p.stiffness = 1.0;
        p.temperature = 1.0;
        p.init_std = {1.0, 1.0, 1.0};
        langevin::LangevinEngine engine(comm, p, 7);
        ParticleSet particles;
        engine.init(particles);
        engine.step(particles, 0, 1e-3); // warm-up
        Kokkos::fence();
        comm.barrier();
        Kokkos::Timer timer;
        for (int s = 1; s <= steps; ++s) engine.step(particles, s, 1e-3);
        Kokkos::fence();
        comm.barrier();
        const double secs = timer.seconds();
        const double rate = static_cast<double>(n) * steps / secs;
        if (comm.is_root()) {
            std::printf("bench-langevin: overdamped OU dim=%d N=%lld steps=%d ranks=%d threads/rank=%d exec=%s\n", dim,
                        static_cast<long long>(n), steps, comm.size(), kinflow::concurrency(), ExecSpace::name());
            std::printf("  %.3f s, %.3e particle-steps/s total, %.3e per rank\n", secs, rate, rate / comm.size());
        }
    }
    Kokkos::finalize();
    return 0;
}
