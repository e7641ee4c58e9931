// Benchmark: DSMC collision steps of a gas in equilibrium (n = T = m = 1, hard spheres d = 0.33:
// nu ~ 0.77), dt = 0.5 (NTC) or 0.2 (Nanbu–Babovsky).
// Usage: mpirun -n P bench-dsmc [particles=1000000] [steps=20] [scheme=ntc|nanbu_babovsky]
//                               [kernel=hard_sphere|maxwell|vhs|vss] [shuffle_every=10]
// Prints collisions per second (total and per rank) and particle-steps per second.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/compat.hpp"
#include "kinflow/engines/dsmc/dsmc_engine.hpp"

int main(int argc, char** argv) {
    kinflow::comm::Environment mpi(argc, argv);
    Kokkos::initialize(argc, argv);
    {
        using namespace kinflow;
        const auto comm = comm::Communicator::world();
        dsmc::Options o;
        o.particles = argc > 1 ? std::atoll(argv[1]) : 1000000;
        const int steps = argc > 2 ? std::atoi(argv[2]) : 20;
        o.scheme = argc > 3 ? argv[3] : "ntc";
        o.kernel = argc > 4 ? argv[4] : "hard_sphere";
        o.shuffle_every = argc > 5 ? std::atoll(argv[5]) : 10;
        o.d_ref = "0.33"; // hard spheres: nu = 4 sqrt(pi) d^2 ~ 0.77 at n = T = m = 1
        o.omega = "0.81";
        o.alpha = "1.4";
        // NTC: dt = 0.5 (~0.4 collisions per particle per step); Nanbu–Babovsky: dt = 0.2 keeps the
        // largest pair probability n sigma_T g dt below 1 for hard spheres.
        const double step_dt = o.scheme == "ntc" ? 0.5 : 0.2;
        dsmc::DsmcEngine engine(comm, dsmc::validate(o, step_dt), 7);
        ParticleSet particles;
        engine.init(particles);
        engine.step(particles, 0, step_dt); // warm-up
        Kokkos::fence();
        comm.barrier();
        const std::int64_t c0 = engine.collisions(), a0 = engine.attempts();
        Kokkos::Timer timer;
        for (int s = 1; s <= steps; ++s)
            engine.step(particles, s, step_dt);
        Kokkos::fence();
        comm.barrier();
        const double secs = timer.seconds();
        const double coll = static_cast<double>(engine.collisions() - c0);
        const double att = static_cast<double>(engine.attempts() - a0);
        if (comm.is_root()) {
            std::printf("bench-dsmc: %s %s N=%lld steps=%d dt=%g shuffle_every=%lld ranks=%d threads/rank=%d exec=%s\n",
                        o.scheme.c_str(), o.kernel.c_str(), static_cast<long long>(o.particles), steps, step_dt,
                        static_cast<long long>(o.shuffle_every), comm.size(), kinflow::concurrency(),
                        ExecSpace::name());
            std::printf(
                "  %.3f s, %.0f collisions (%.0f %s), %.3e collisions/s total, %.3e per rank, %.3e particle-steps/s\n",
                secs, coll, att, o.scheme == "ntc" ? "candidates" : "pairs", coll / secs, coll / secs / comm.size(),
                static_cast<double>(o.particles) * steps / secs);
        }
    }
    Kokkos::finalize();
    return 0;
}
