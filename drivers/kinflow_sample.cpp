// kinflow-sample DECK [--section.key=value ...]: draw samples from a model trained by
// kinflow-train (ODE or SDE integration, or one map evaluation) into a kinflow HDF5 file.
#include "sample_driver.hpp"

int main(int argc, char** argv) {
    using namespace kinflow;
    return drivers::driver_main(argc, argv, "kinflow-sample", [](int ac, char** av, const comm::Communicator& comm) {
        return drivers::sample_driver(ac, av, comm,
                                      {"kinflow-sample", "kinflow-sample DECK.ini [--section.key=value ...] [--quiet]",
                                       "seed of the source noise and the SDE noise, >= 0", ""},
                                      sample::run_sampling);
    });
}
