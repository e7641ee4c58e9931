#pragma once
// Named global values an engine reports once per snapshot (identical on every rank).
#include <string>
#include <utility>
#include <vector>

namespace kinflow {

using Diagnostics = std::vector<std::pair<std::string, double>>;

} // namespace kinflow
