#pragma once
// Validation helpers shared by every module's Options: each throws OptionError naming the key.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "kinflow/core/error.hpp"

namespace kinflow {

/// Format a number for a message or a resolved deck (shortest round-trip form).
std::string format_number(double v);

/// Require lo <= value <= hi.
void check_range(const std::string& key, double value, double lo, double hi);
void check_range(const std::string& key, std::int64_t value, std::int64_t lo, std::int64_t hi);
/// Require value > 0 (strictly).
void check_positive(const std::string& key, double value);
/// Require value to be one of `choices`.
void check_choice(const std::string& key, const std::string& value, std::initializer_list<const char*> choices);
void check_choice(const std::string& key, const std::string& value, const std::vector<const char*>& choices);

/// Physical memory of this machine in bytes (0 when unknown).
double physical_memory();
/// Require that `bytes` (what `key` = `value` makes one rank allocate, estimated) fit in this
/// machine's physical memory: a clear error before the allocation, not a failed malloc or the
/// kernel's OOM killer half-way through.
void check_memory(const std::string& key, const std::string& value, double bytes);

/// Parse a comma list of numbers; one number means the same for every component.
/// Throws OptionError unless it has 1 or `n` entries, all finite.
std::vector<double> parse_vector(const std::string& key, const std::string& text, int n);

} // namespace kinflow
