#include "kinflow/core/progress.hpp"

#include <cmath>
#include <cstdio>

namespace kinflow {

Progress::Progress(std::ostream& os, std::int64_t total_steps, std::int64_t particles, bool enabled, double interval_s,
                   std::int64_t first_step)
    : _os(os), _total_steps(total_steps), _particles(particles), _first(first_step), _enabled(enabled),
      _interval(interval_s) {}

void Progress::update(std::int64_t step, double time) {
    if (!_enabled) return;
    const double now = _timer.seconds();
    if (now - _last < _interval) return;
    _last = now;
    print(step, time, false);
}

void Progress::finish(std::int64_t step, double time) {
    if (_enabled) print(step, time, true);
}

void Progress::print(std::int64_t step, double time, bool final) {
    const double secs = _timer.seconds();
    const double done = static_cast<double>(step - _first);
    const double rate = secs > 0 ? done * static_cast<double>(_particles) / secs : 0.0;
    char buf[256];
    if (final) {
        std::snprintf(buf, sizeof buf, "kinflow: done %lld steps, t = %.6g, %.3g s wall, %.3g particle-steps/s",
                      static_cast<long long>(step), time, secs, rate);
    } else {
        const double eta = done > 0 ? secs * static_cast<double>(_total_steps - step) / done : 0.0;
        std::snprintf(buf, sizeof buf, "kinflow: step %lld/%lld (%.0f%%), t = %.6g, %.3g particle-steps/s, ETA %.0f s",
                      static_cast<long long>(step), static_cast<long long>(_total_steps),
                      _total_steps > 0 ? 100.0 * static_cast<double>(step) / static_cast<double>(_total_steps) : 100.0,
                      time, rate, std::ceil(eta));
    }
    _os << buf << std::endl;
}

} // namespace kinflow
