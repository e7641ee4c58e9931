// Benchmark: flow-matching training steps and Euler sampling of an MLP 2 -> layers x hidden -> 2
// (SiLU, 16 time features), the figures the README compares with Python PyTorch.
// Usage: mpiexec -n P bench-learn [hidden=64] [layers=3] [batch=4096 per rank] [steps=200]
//        [threads=1] [samples=10000 in total] [euler_steps=100]
// Prints training steps/s and samples/s (global batch), and the sampling time, wall clock and
// CPU time of rank 0 (the CPU time shows how much of the wall time other processes took).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/comm/decomposition.hpp"
#include "kinflow/learn/trainer.hpp"
#include "kinflow/sample/sampler.hpp"

namespace {
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
double wall_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
} // namespace

int main(int argc, char** argv) {
    kinflow::comm::Environment mpi(argc, argv);
    Kokkos::initialize(argc, argv);
    {
        using namespace kinflow;
        const auto comm = comm::Communicator::world();
        const int hidden = argc > 1 ? std::atoi(argv[1]) : 64;
        const int layers = argc > 2 ? std::atoi(argv[2]) : 3;
        const std::int64_t batch = argc > 3 ? std::atoll(argv[3]) : 4096;
        const std::int64_t steps = argc > 4 ? std::atoll(argv[4]) : 200;
        const int threads = argc > 5 ? std::atoi(argv[5]) : 1;
        const std::int64_t samples = argc > 6 ? std::atoll(argv[6]) : 10000;
        const std::int64_t euler = argc > 7 ? std::atoll(argv[7]) : 100;
        torch::set_num_threads(threads);

        learn::TrainOptions o;
        o.objective = "fm";
        o.data = "builtin:eight_gaussians";
        o.builtin_size = 100000;
        o.hidden = hidden;
        o.layers = layers;
        o.batch_size = batch;
        o.steps = steps + 10;
        o.threads = threads;
        auto cfg = learn::validate(o, 1);
        learn::Dataset data(comm, cfg.data);
        learn::Trainer trainer(comm, cfg, data);
        trainer.run(10); // warm-up: buffers, BLAS
        comm.barrier();
        double w0 = wall_seconds(), c0 = cpu_seconds();
        trainer.run(10 + steps);
        comm.barrier();
        const double tw = wall_seconds() - w0, tc = cpu_seconds() - c0;
        const double rate = static_cast<double>(steps) / tw;
        if (comm.is_root()) {
            std::printf("bench-learn: fm MLP 2->%dx%d->2 silu, %lld parameters, ranks=%d threads/rank=%d\n", layers, hidden,
                        static_cast<long long>(trainer.model()->parameter_count()), comm.size(), threads);
            std::printf("  train: batch %lld/rank (global %lld), %lld steps: %.3f s wall (%.3f s CPU rank 0), %.1f steps/s, %.3e samples/s\n",
                        static_cast<long long>(batch), static_cast<long long>(trainer.global_batch()),
                        static_cast<long long>(steps), tw, tc, rate, rate * static_cast<double>(trainer.global_batch()));
        }

        // Sampling: `samples` in total split over ranks, `euler` Euler steps.
        const auto dec = comm::BlockDecomposition::make(samples, comm.size(), comm.rank());
        learn::MLPWorkspace ws(trainer.model());
        const auto info = trainer.info();
        const auto net = sample::network(ws, torch::Tensor(), 2048);
        auto x = torch::randn({dec.n_local(), 2});
        comm.barrier();
        w0 = wall_seconds();
        c0 = cpu_seconds();
        std::int64_t nfe = 0;
        for (std::int64_t b = 0; b < dec.n_local(); b += 2048) {
            auto chunk = x.narrow(0, b, std::min<std::int64_t>(2048, dec.n_local() - b));
            nfe = sample::transport(info, net, sample::Method::Euler, euler, chunk, {});
        }
        comm.barrier();
        const double sw = wall_seconds() - w0, sc = cpu_seconds() - c0;
        if (comm.is_root()) {
            std::printf("  sample: %lld samples, euler nfe %lld: %.3f s wall (%.3f s CPU rank 0), %.3e samples/s\n",
                        static_cast<long long>(samples), static_cast<long long>(nfe), sw, sc, static_cast<double>(samples) / sw);
        }
    }
    Kokkos::finalize();
    return 0;
}
