#pragma once
// How kinflow-simulate knows an engine: its [section] keys and how to run it. Each engine's
// entry lives in drivers/simulate_<engine>.cpp.
#include <string>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/io/deck.hpp"
#include "kinflow/io/run_options.hpp"

namespace kinflow::drivers {

struct EngineEntry {
    const char* name; ///< value of run.engine (and the deck section)
    /// Register the engine's section with the deck (its Options live inside the entry's file).
    void (*describe)(io::Deck& deck);
    /// Validate, initialise, run, write `out.file`. Deck errors are thrown as SetupError.
    void (*run)(const comm::Communicator& comm, const io::Deck& deck, const io::RunOptions& run,
                const io::OutputOptions& out);
};

EngineEntry langevin_entry();
#ifdef KINFLOW_HAVE_KS
EngineEntry ks_entry();
#endif
#ifdef KINFLOW_HAVE_DSMC
EngineEntry dsmc_entry();
#endif

} // namespace kinflow::drivers
