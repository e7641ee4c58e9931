// Benchmark: spatial DSMC in SPARTA's bench set-up (examples/bench: argon, n = 7.07e22 m^-3,
// T = 273.15 K, 10 particles per cell, a reflecting (specular) box of cubic cells of edge about
// one mean free path, dt = 5e-9 s ~ tau/10): "free" = collisions off, "collide" = NTC VSS (argon
// d_ref = 4.17e-10 m, omega = 0.81, alpha = 1.4).
// Usage: mpirun -n P bench-dsmc-spatial [particles=1000000] [steps=50] [free|collide]
// Prints particle-moves per second, total and per rank (SPARTA's logs: 1.2e7 free and 6.6e6
// collide moves/s/core at 10^6 particles).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/compat.hpp"
#include "kinflow/engines/dsmc/spatial.hpp"

int main(int argc, char** argv) {
    kinflow::comm::Environment mpi(argc, argv);
    Kokkos::initialize(argc, argv);
    {
        using namespace kinflow;
        const auto comm = comm::Communicator::world();
        const double N = argc > 1 ? std::atof(argv[1]) : 1e6;
        const int steps = argc > 2 ? std::atoi(argv[2]) : 50;
        const std::string mode = argc > 3 ? argv[3] : "collide";
        // cubic cells of edge h with 10 particles: F_N = n h^3 / 10; a cube of C^3 cells (C ~ (N/10)^(1/3))
        const double n = 7.07e22, h = 2.5e-5;
        const auto C = static_cast<std::int64_t>(std::llround(std::cbrt(N / 10.0)));
        dsmc::Options o;
        o.space = "grid";
        o.units = "si";
        o.kernel = "vss";
        o.d_ref = "4.17e-10";
        o.omega = "0.81";
        o.alpha = "1.4";
        o.T_ref = 273.15;
        o.mass = "6.63e-26";
        o.number_density = n;
        o.temperature = "273.15";
        o.init = "uniform";
        const std::string edge = std::to_string(h * static_cast<double>(C));
        o.box_hi = edge + "," + edge + "," + edge;
        o.cells = std::to_string(C) + "," + std::to_string(C) + "," + std::to_string(C);
        o.boundary = "specular";
        o.collisions = mode == "free" ? "false" : "true";
        o.particles = 10 * C * C * C;
        const double dt = 5e-9;
        dsmc::SpatialEngine engine(comm, dsmc::validate(o, dt), 7);
        ParticleSet particles;
        engine.init(particles);
        engine.step(particles, 0, dt); // warm-up
        Kokkos::fence();
        comm.barrier();
        const std::int64_t c0 = engine.collisions();
        Kokkos::Timer timer;
        double moves = 0;
        for (int s = 1; s <= steps; ++s) {
            moves += static_cast<double>(comm.sum(static_cast<std::int64_t>(particles.size())));
            engine.step(particles, s, dt);
        }
        Kokkos::fence();
        comm.barrier();
        const double secs = timer.seconds();
        const double coll = static_cast<double>(engine.collisions() - c0);
        if (comm.is_root()) {
            std::printf("bench-dsmc-spatial %s: %lld cells, %.0f particles, %d steps, %d ranks x %d threads\n",
                        mode.c_str(), static_cast<long long>(C * C * C), moves / steps, steps, comm.size(),
                        concurrency());
            std::printf("  %.3f s: %.3e particle-moves/s, %.3e per rank; %.3e collisions/s (%.3f per particle-step)\n",
                        secs, moves / secs, moves / secs / comm.size(), coll / secs, coll / moves);
        }
    }
    Kokkos::finalize();
    return 0;
}
