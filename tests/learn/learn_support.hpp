#pragma once
// Helpers of the learning tests: configurations, and the exact flow-matching velocity and VP noise
// prediction for Gaussian data (VERIFICATION.md, Generative models).
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "kinflow/learn/dataset.hpp"
#include "kinflow/learn/options.hpp"

namespace kinflow::test {

/// A validated configuration from [train] options (seed 1 unless given).
inline learn::TrainConfig config(learn::TrainOptions o, std::int64_t seed = 1) { return learn::validate(o, seed); }

/// 2x2 symmetric matrices and 2-vectors.
using M2 = std::array<double, 4>;
using V2 = std::array<double, 2>;
inline M2 inverse(const M2& a) {
    const double det = a[0] * a[3] - a[1] * a[2];
    return {a[3] / det, -a[1] / det, -a[2] / det, a[0] / det};
}
inline V2 apply(const M2& a, const V2& x) { return {a[0] * x[0] + a[1] * x[1], a[2] * x[0] + a[3] * x[1]}; }

/// builtin:gaussian in the normalised coordinates of a data set: N(m', S') with
/// m' = (m - mean) / std, S'_ij = S_ij / (std_i std_j).
inline void normalised_gaussian(const learn::Normalization& n, V2& m, M2& s) {
    const auto pm = learn::builtin_gaussian_mean();
    const auto ps = learn::builtin_gaussian_cov();
    for (int i = 0; i < 2; ++i) m[i] = (pm[i] - n.mean[i]) / n.std[i];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) s[2 * i + j] = ps[2 * i + j] / (n.std[i] * n.std[j]);
}

/// Exact CondOT velocity for x_1 ~ N(m, S), x_0 ~ N(0, I) independent:
/// u_t(x) = m + (t S - (1 - t) I) Sigma_t^{-1} (x - t m), Sigma_t = t^2 S + (1 - t)^2 I.
inline V2 exact_velocity(const V2& m, const M2& s, double t, const V2& x) {
    const M2 sig = {t * t * s[0] + (1 - t) * (1 - t), t * t * s[1], t * t * s[2], t * t * s[3] + (1 - t) * (1 - t)};
    const M2 c = {t * s[0] - (1 - t), t * s[1], t * s[2], t * s[3] - (1 - t)};
    const V2 r = apply(inverse(sig), {x[0] - t * m[0], x[1] - t * m[1]});
    const V2 v = apply(c, r);
    return {m[0] + v[0], m[1] + v[1]};
}

/// Exact noise prediction of the VP path x_t = alpha x_1 + sigma eps:
/// eps_hat = -sigma score = sigma Sigma_t^{-1} (x - alpha m), Sigma_t = alpha^2 S + sigma^2 I.
inline V2 exact_eps(const V2& m, const M2& s, double alpha, double sigma, const V2& x) {
    const M2 sig = {alpha * alpha * s[0] + sigma * sigma, alpha * alpha * s[1], alpha * alpha * s[2],
                    alpha * alpha * s[3] + sigma * sigma};
    const V2 r = apply(inverse(sig), {x[0] - alpha * m[0], x[1] - alpha * m[1]});
    return {sigma * r[0], sigma * r[1]};
}

/// Symmetric square root of a 2x2 SPD matrix: (S + sqrt(det) I) / sqrt(tr S + 2 sqrt(det)).
inline M2 sqrt_spd(const M2& s) {
    const double r = std::sqrt(s[0] * s[3] - s[1] * s[2]);
    const double d = std::sqrt(s[0] + s[3] + 2 * r);
    return {(s[0] + r) / d, s[1] / d, s[2] / d, (s[3] + r) / d};
}

/// Product of 2x2 matrices.
inline M2 mul(const M2& a, const M2& b) {
    return {a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3]};
}

/// Exact average velocity (Geng et al. 2025) of fm's marginal flow for x_0 ~ N(0, I), x_1 ~ N(m, S)
/// independent: Sigma_tau = tau^2 S + (1 - tau)^2 I commutes with S, so the flow of exact_velocity
/// is X_tau(x_0) = tau m + Sigma_tau^{1/2} x_0 (d/dtau Sigma^{1/2} = (tau S - (1 - tau) I) Sigma^{-1/2})
/// and u(x, s, t) = [X_t(X_s^{-1}(x)) - x] / (t - s) = [t m + Sigma_t^{1/2} Sigma_s^{-1/2} (x - s m) - x] / (t - s),
/// s < t (affine in x). For S = sigma^2 I: X_tau(x_0) = tau m + sqrt((1 - tau)^2 + tau^2 sigma^2) x_0,
/// which is the straight-line (1 - tau + tau sigma) x_0 + tau m only at tau = 0 and 1: the
/// independent coupling's paths bend.
/// The flow map itself, X_{s,t}(x) = X_t(X_s^{-1}(x)) = t m + Sigma_t^{1/2} Sigma_s^{-1/2} (x - s m) (any s, t).
inline V2 exact_flow_map(const V2& m, const M2& cov, double s, double t, const V2& x) {
    auto sigma = [&](double tau) {
        return M2{tau * tau * cov[0] + (1 - tau) * (1 - tau), tau * tau * cov[1], tau * tau * cov[2],
                  tau * tau * cov[3] + (1 - tau) * (1 - tau)};
    };
    const M2 a = mul(sqrt_spd(sigma(t)), inverse(sqrt_spd(sigma(s))));
    const V2 y = apply(a, {x[0] - s * m[0], x[1] - s * m[1]});
    return {t * m[0] + y[0], t * m[1] + y[1]};
}
inline V2 exact_average_velocity(const V2& m, const M2& cov, double s, double t, const V2& x) {
    const V2 y = exact_flow_map(m, cov, s, t, x);
    return {(y[0] - x[0]) / (t - s), (y[1] - x[1]) / (t - s)};
}

/// Unique scratch directory name shared by all ranks (relative to the test's working directory).
inline std::string scratch(const std::string& name) { return "learn_scratch/" + name; }

} // namespace kinflow::test
