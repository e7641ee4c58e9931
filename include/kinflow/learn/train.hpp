#pragma once
// kinflow-train's entry into the learning module, without LibTorch headers (the driver stays a
// cheap translation unit).
#include <cstdint>
#include <ostream>
#include <string>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/learn/dataset.hpp"
#include "kinflow/learn/options.hpp"

namespace kinflow::learn {

/// A non-finite loss: training stopped; the last checkpoint on disk is the last good state.
struct TrainingDiverged : Error {
    using Error::Error;
};

/// A checkpoint that cannot be resumed (missing, damaged, or written for another deck).
struct ResumeError : Error {
    using Error::Error;
};

struct TrainSummary {
    std::int64_t first_step = 0; ///< step the run started from (> 0 after --resume)
    std::int64_t step = 0;       ///< step reached
    double loss = 0.0;           ///< global loss of the last step
    double seconds = 0.0;
    bool finished = false; ///< reached config.steps and wrote the model file
    std::int64_t global_batch = 0;
    std::int64_t parameters = 0;
};

/// reflow: replace the rows of `data` by config.reflow_pairs pairs (x0, x1'), x0 standard normal
/// (counter-based, keyed by run.seed and the pair's index: independent of the rank count) and x1'
/// the end of the ODE of the model config.teacher from x0 (RK4, config.teacher_nfe evaluations),
/// in the data's normalised coordinates; each rank generates its block (collective). Throws Error
/// for a teacher that cannot serve (another objective, a condition, another dimension or data).
void make_reflow_pairs(const comm::Communicator& comm, const TrainConfig& config, Dataset& data);

/// w2map with train.corrector: replace the source of `data` (one part, unconditional) by the
/// one-jump samples of the first-stage model config.corrector (meanflow or flowmap) of fresh
/// standard normal noise, one per data row (counter-based, keyed by run.seed and the row's global
/// index), paired with the rows. Throws Error for a model that cannot serve.
void make_corrector_pairs(const TrainConfig& config, Dataset& data);
/// Train (collective). `resume`: continue from checkpoint_path(config.model_file). Progress lines
/// go to `progress` when not null (rank 0 only). Throws TrainingDiverged, ResumeError (both the same on
/// every rank) or Error.
TrainSummary train(const comm::Communicator& comm, const TrainConfig& config, const Dataset& data, bool resume,
                   std::ostream* progress);

} // namespace kinflow::learn
