#pragma once
// What an engine carries beyond its particles from one step to the next (NTC majorants, the
// committed Keller–Segel field, counters), as named arrays: the checkpoint stores it and a
// resumed engine takes it back (io/checkpoint.hpp). Caches that can be rebuilt from the
// particles are not state.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kinflow/core/error.hpp"

namespace kinflow {

struct EngineState {
    /// Values identical on every rank.
    std::vector<std::pair<std::string, std::vector<double>>> global;
    /// This rank's values (every rank has the same names and lengths; restored only on the
    /// same rank count).
    std::vector<std::pair<std::string, std::vector<std::int64_t>>> per_rank;

    void set(const std::string& name, std::vector<double> v) { global.emplace_back(name, std::move(v)); }
    void set_rank(const std::string& name, std::vector<std::int64_t> v) { per_rank.emplace_back(name, std::move(v)); }
    const std::vector<double>& get(const std::string& name) const {
        for (const auto& e : global)
            if (e.first == name) return e.second;
        throw Error("checkpoint: engine state '" + name + "' is missing");
    }
    const std::vector<std::int64_t>& get_rank(const std::string& name) const {
        for (const auto& e : per_rank)
            if (e.first == name) return e.second;
        throw Error("checkpoint: engine state '" + name + "' (per rank) is missing");
    }
};

} // namespace kinflow
