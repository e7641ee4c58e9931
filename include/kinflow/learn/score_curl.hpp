#pragma once
// kinflow-compare --score-curl's entry into the learning module, without LibTorch headers.
#include <cstdint>
#include <string>
#include <vector>

namespace kinflow::learn {

/// The non-conservative part of a trained model's field (Vuong, McCann, Santos, Lin 2025):
/// ||J - J^T||_F / ||J||_F of its x-Jacobian, per network time, over the given points.
struct ScoreCurl {
    std::string objective, score_model;
    std::vector<double> times;    ///< network times (kinflow's direction: 0 noise, 1 data)
    std::vector<double> mean, max; ///< per time: mean and largest ratio over the points
    double mean_all = 0.0;        ///< mean over every time and point
    std::int64_t points = 0;      ///< points per time
};

/// The Jacobian asymmetry of the field of the model in `model_file` (dsm: the noise prediction,
/// whose Jacobian is -sigma_t times the score's; fm/otfm: the velocity) at `points` (physical rows
/// [n, dim], normalised with the model's statistics) carried along the training path to each time
/// t: dsm x_t = alpha_t x + sigma_t eps, fm/otfm x_t = t x + (1 - t) eps, eps standard normal
/// from `seed`. Float64 throughout. Throws Error naming the file for another objective, a
/// conditional model, a dimension mismatch or a time outside the model's range.
ScoreCurl score_curl(const std::string& model_file, const std::vector<double>& points, int dim,
                     const std::vector<double>& times, std::uint64_t seed);

} // namespace kinflow::learn
