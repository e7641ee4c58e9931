// kinflow-generate DECK [--section.key=value ...]: kinflow-sample's deterministic samplers (flow
// ODEs, meanflow/flowmap jumps, w2map maps) on the MODEL.h5 that kinflow-train writes beside the
// model file, without LibTorch and, started alone, without MPI: a one-step generation costs the
// process start-up of a small C++ program. Same deck keys and output file as kinflow-sample.
#include "kinflow/generate/generate.hpp"
#include "sample_driver.hpp"

int main(int argc, char** argv) {
    using namespace kinflow;
    const drivers::SampleDriverText text{
        "kinflow-generate",
        "kinflow-generate DECK.ini [--section.key=value ...] [--quiet]\n"
        "kinflow-sample's deck keys and output without LibTorch: sample.model_file names the model file "
        "(its MODEL.h5 beside it, X.pt -> X.h5, is read) or the MODEL.h5 itself; fm, otfm, reflow, tfm "
        "(euler | heun | rk4), meanflow, flowmap (jumps) and w2map models (dsm: use kinflow-sample); "
        "sample.threads: threads over chunks of sample.batch rows; sample.device: cpu only. Started alone "
        "(or by mpiexec -n 1) it does not initialise MPI; on several ranks the rows are split as in kinflow-sample",
        "seed of the source noise (as kinflow-sample's), >= 0",
        "kinflow-generate: LibTorch not linked (the line above is the build's; this driver reads MODEL.h5)\n"};
    return drivers::driver_main(
        argc, argv, "kinflow-generate",
        [&](int ac, char** av, const comm::Communicator& comm) { return drivers::sample_driver(ac, av, comm, text, generate::run_generation); },
        drivers::Mpi::WhenLaunched);
}
