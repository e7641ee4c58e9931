// Benchmark: the cost of MeanFlow's JVP by each route (learn::JvpRoute) relative to one forward
// pass, and of a meanflow training step relative to an fm step, for an MLP 2 -> layers x hidden
// -> 2 (SiLU, 16 time features each for s and t - s) on one rank.
// Usage: bench-meanflow [hidden=128] [layers=3] [rows=1024] [repeats=50] [steps=200]
// Prints milliseconds per call and the ratio to the hand-written forward pass.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/learn/trainer.hpp"

namespace {
double seconds_per_call(int repeats, const std::function<void()>& f) {
    f(); // warm-up: buffers, BLAS
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < repeats; ++r) f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeats;
}
} // namespace

int main(int argc, char** argv) {
    kinflow::comm::Environment mpi(argc, argv);
    Kokkos::initialize(argc, argv);
    {
        using namespace kinflow;
        const int hidden = argc > 1 ? std::atoi(argv[1]) : 128;
        const int layers = argc > 2 ? std::atoi(argv[2]) : 3;
        const std::int64_t rows = argc > 3 ? std::atoll(argv[3]) : 1024;
        const int repeats = argc > 4 ? std::atoi(argv[4]) : 50;
        const std::int64_t steps = argc > 5 ? std::atoll(argv[5]) : 200;
        torch::set_num_threads(1);
        torch::manual_seed(1);

        learn::ModelSpec spec;
        spec.hidden = hidden;
        spec.layers = layers;
        spec.time_inputs = 2;
        learn::MLP model(spec);
        const auto x = torch::randn({rows, 2}), v = torch::randn({rows, 2});
        const auto s = torch::rand({rows}) * 0.5, gap = torch::rand({rows}) * 0.5;
        learn::MLPWorkspace ws(model);
        ws.set_features(x, s, {}, gap);
        learn::MLP m64(spec);
        {
            torch::NoGradGuard ng;
            m64->flat_parameters().copy_(model->flat_parameters());
        }
        m64->to(torch::kFloat64);
        const auto x64 = x.to(torch::kFloat64), v64 = v.to(torch::kFloat64);
        const auto s64 = s.to(torch::kFloat64), g64 = gap.to(torch::kFloat64);

        const double fwd = seconds_per_call(repeats, [&] { ws.forward(); });
        std::printf("bench-meanflow: MLP 2 -> %d x %d -> 2, %lld rows, 1 thread\n", layers, hidden, static_cast<long long>(rows));
        auto report = [&](const char* what, double t) {
            std::printf("  %-52s %8.3f ms  %5.2fx forward\n", what, 1e3 * t, t / fwd);
        };
        report("forward (hand-written, training buffers)", fwd);
        report("forward (MLP::forward, no grad)", seconds_per_call(repeats, [&] {
                   torch::NoGradGuard ng;
                   model->forward(x, s, {}, gap);
               }));
        report("JVP hand: forward + tangent pass (training route)", seconds_per_call(repeats, [&] { ws.forward_jvp(v, 1.0, -1.0); }));
        for (auto route : {learn::JvpRoute::ForwardAD, learn::JvpRoute::DoubleBackward}) {
            const std::string what = std::string("JVP ") + learn::to_string(route) + " (LibTorch autograd)";
            report(what.c_str(), seconds_per_call(repeats, [&] { learn::output_jvp(model, x, s, {}, gap, v, 1.0, -1.0, route); }));
        }
        report("JVP central difference, float64 (3 forwards: y, y+, y-)", seconds_per_call(repeats, [&] {
                   torch::NoGradGuard ng;
                   const double e = 1e-4;
                   m64->forward(x64, s64, {}, g64);
                   const auto up = m64->forward(x64 + e * v64, s64 + e, {}, g64 - e);
                   const auto down = m64->forward(x64 - e * v64, s64 - e, {}, g64 + e);
                   (void)((up - down) / (2 * e));
               }));

        // Training steps: fm against meanflow (builtin eight Gaussians, batch = rows).
        const auto comm = comm::Communicator::self();
        double rate[2];
        int k = 0;
        for (const char* objective : {"fm", "meanflow"}) {
            learn::TrainOptions o;
            o.objective = objective;
            o.data = "builtin:eight_gaussians";
            o.builtin_size = 100000;
            o.hidden = hidden;
            o.layers = layers;
            o.batch_size = rows;
            o.steps = steps + 10;
            auto cfg = learn::validate(o, 1);
            learn::Dataset data(comm, cfg.data);
            learn::Trainer trainer(comm, cfg, data);
            trainer.run(10);
            const auto t0 = std::chrono::steady_clock::now();
            trainer.run(10 + steps);
            rate[k++] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
        }
        std::printf("  training step (batch %lld): fm %.3f ms, meanflow %.3f ms, ratio %.2f\n", static_cast<long long>(rows),
                    1e3 * rate[0], 1e3 * rate[1], rate[1] / rate[0]);
    }
    Kokkos::finalize();
    return 0;
}
