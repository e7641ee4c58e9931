#pragma once
// What a trained model is, apart from its weights: architecture, objective, normalisation,
// conditions, source and schedule (the model file's and MODEL.h5's attributes). No LibTorch here:
// kinflow-generate reads it from MODEL.h5 (generate/model.hpp).
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "kinflow/learn/dataset.hpp"
#include "kinflow/learn/options.hpp"

namespace kinflow::learn {

struct ModelInfo {
    ModelSpec spec;
    Objective objective = Objective::FM;
    std::vector<std::string> conditions;
    Normalization norm;
    std::string source = "gaussian"; ///< gaussian | uniform | snapshot:<index>
    std::string data;                ///< train.data as given
    std::vector<std::string> files;  ///< the data files (empty for builtin data)
    double target_time = 0.0;        ///< time of the first target snapshot
    /// tfm: the network's time input is (t - time_origin) / time_scale, t the physical time;
    /// time_origin is the source snapshot's time, time_origin + time_scale the last target's.
    double time_origin = 0.0, time_scale = 1.0;
    double beta_min = 0.1, beta_max = 20.0, vp_eps = 1e-3;
    /// w2map with a corrector: the first-stage model file (train.corrector); a sample is
    /// y + f(y), y its one jump from the noise. Empty otherwise.
    std::string corrector;
    std::int64_t step = 0; ///< optimizer steps behind the weights
    std::string deck;      ///< resolved training deck
};

/// The lists a model file holds as one string attribute (conditions: ',', files: '\n'): joined, and
/// split back (an empty string: no items).
inline std::string join_attribute(const std::vector<std::string>& v, char sep) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? std::string(1, sep) : "") + v[i];
    return out;
}
inline std::vector<std::string> split_attribute(const std::string& s, char sep) {
    std::vector<std::string> out;
    if (s.empty()) return out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep)) out.push_back(item);
    return out;
}

} // namespace kinflow::learn
