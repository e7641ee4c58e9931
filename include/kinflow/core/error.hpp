#pragma once
// kinflow's exception types and the KINFLOW_REQUIRE check.
#include <sstream>
#include <stdexcept>
#include <string>

namespace kinflow {

/// Any error kinflow reports to the user.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// A bad deck value: `key` is the full deck key (`section.name`), `value` the text given.
/// Drivers prefix the message with where the value came from (deck file or command line).
class OptionError : public Error {
  public:
    OptionError(std::string key, std::string value, const std::string& reason)
        : Error(key + " = '" + value + "': " + reason), _key(std::move(key)), _value(std::move(value)),
          _reason(reason) {}
    const std::string& key() const { return _key; }
    const std::string& value() const { return _value; }
    const std::string& reason() const { return _reason; }

  private:
    std::string _key, _value, _reason;
};

namespace detail {
[[noreturn]] inline void require_failed(const char* file, int line, const std::string& msg) {
    std::ostringstream os;
    os << msg << " (" << file << ":" << line << ")";
    throw Error(os.str());
}
} // namespace detail

} // namespace kinflow

/// Throw kinflow::Error with `msg` (a streamable expression) and file:line unless `cond` holds.
#define KINFLOW_REQUIRE(cond, msg)                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::ostringstream kinflow_require_os_;                                                \
            kinflow_require_os_ << msg;                                                            \
            ::kinflow::detail::require_failed(__FILE__, __LINE__, kinflow_require_os_.str());      \
        }                                                                                          \
    } while (0)
