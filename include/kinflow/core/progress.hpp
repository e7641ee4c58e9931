#pragma once
// A progress line on rank 0 for long runs: step, simulated time, particle-steps/s, ETA.
#include <cstdint>
#include <ostream>

#include <Kokkos_Timer.hpp>

namespace kinflow {

/// Prints at most every `interval_s` seconds; silent when disabled (`--quiet` or rank != 0).
class Progress {
  public:
    /// `first_step`: where this process started (a resumed run); rates and the ETA count from it.
    Progress(std::ostream& os, std::int64_t total_steps, std::int64_t particles, bool enabled, double interval_s = 5.0,
             std::int64_t first_step = 0);

    /// Report that `step` steps are done and simulated time is `time`.
    void update(std::int64_t step, double time);
    /// Final summary line (always printed when enabled).
    void finish(std::int64_t step, double time);

    double elapsed() const { return _timer.seconds(); }

  private:
    void print(std::int64_t step, double time, bool final);
    std::ostream& _os;
    std::int64_t _total_steps, _particles, _first;
    bool _enabled;
    double _interval, _last = 0.0;
    Kokkos::Timer _timer;
};

} // namespace kinflow
