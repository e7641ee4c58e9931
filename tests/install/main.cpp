// kinflow-consumer: the Langevin engine used as a library by a project outside kinflow's tree.
// Ornstein–Uhlenbeck from N(2, 1) to t = 1 (stiffness 1, temperature 1): E X_1 = 2 e^{-1} = 0.7358,
// Var X_1 = 1. Prints one line test_install.py checks.
#include <iostream>
#include <string>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/core/version.hpp"
#include "kinflow/engines/langevin/langevin_engine.hpp"
#include "kinflow/engines/langevin/options.hpp"

int main(int argc, char** argv) {
    kinflow::comm::Environment mpi(argc, argv);
    Kokkos::initialize(argc, argv);
    {
        const auto comm = kinflow::comm::Communicator::world();
        kinflow::langevin::Options options;
        options.particles = 4000;
        options.init_mean = "2";
        const double dt = 0.01;
        const auto params = kinflow::langevin::validate(options, dt);
        kinflow::langevin::LangevinEngine engine(comm, params, 7);
        kinflow::ParticleSet particles;
        engine.init(particles);
        for (int step = 0; step < 100; ++step) engine.step(particles, step, dt);
        const auto diagnostics = engine.diagnostics(particles); // collective: every rank
        if (comm.is_root()) {
            std::cout << "kinflow-consumer: kinflow " << kinflow::kVersion << ", particles " << particles.n_global;
            for (const auto& [name, value] : diagnostics) std::cout << ", " << name << " " << value;
            std::cout << std::endl;
        }
    }
    Kokkos::finalize();
    return 0;
}
