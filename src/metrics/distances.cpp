#include "kinflow/metrics/distances.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "kinflow/core/error.hpp"

namespace kinflow::metrics {

namespace {
double sqdist(const Cloud& a, std::size_t i, const Cloud& b, std::size_t j) {
    double s = 0;
    for (int k = 0; k < a.dim; ++k) {
        const double d = a.at(i, k) - b.at(j, k);
        s += d * d;
    }
    return s;
}

void check_pair(const Cloud& a, const Cloud& b) {
    KINFLOW_REQUIRE(a.dim == b.dim, "point clouds have different dimensions (" << a.dim << " vs " << b.dim << ")");
    KINFLOW_REQUIRE(a.n > 0 && b.n > 0, "empty point cloud");
}
} // namespace

namespace {
/// Mean pair cost over a strided subsample (the scale where ε-scaling starts).
double mean_cost(const Cloud& a, const Cloud& b) {
    const std::size_t sa = std::max<std::size_t>(1, a.n / 64), sb = std::max<std::size_t>(1, b.n / 64);
    double c = 0, cnt = 0;
    for (std::size_t i = 0; i < a.n; i += sa)
        for (std::size_t j = 0; j < b.n; j += sb, cnt += 1) c += sqdist(a, i, b, j);
    return c / cnt;
}

/// ε levels: halving from the cost scale down to eps (Schmitzer 2019, §3.2).
std::vector<double> eps_levels(double eps, double scale) {
    std::vector<double> levels;
    for (double e = std::max(eps, scale); e > eps; e *= 0.5) levels.push_back(e);
    levels.push_back(eps);
    return levels;
}

/// Dense variant (Schmitzer 2019, Alg. 2 "stabilized scaling with absorption"): the kernel
/// K = exp((f ⊕ g − C)/ε) is formed once per absorption and the iterations are matrix–vector
/// products; scalings are absorbed into the log-domain potentials before they can overflow.
SinkhornResult sinkhorn_dense(const Cloud& a, const Cloud& b, double eps, int max_iter, double tol) {
    const std::size_t n = a.n, m = b.n;
    const double wa = 1.0 / static_cast<double>(n), wb = 1.0 / static_cast<double>(m);
    std::vector<double> C(n * m), K(n * m), f(n, 0.0), g(m, 0.0), u(n), v(m), Kv(n), Ktu(m);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < m; ++j) C[i * m + j] = sqdist(a, i, b, j);
    SinkhornResult res;
    int total = 0;
    const auto levels = eps_levels(eps, mean_cost(a, b));
    for (std::size_t level = 0; level < levels.size(); ++level) {
        const double e = levels[level];
        const bool last = level + 1 == levels.size();
        const double level_tol = last ? tol : std::max(tol, 1e-4);
        // One log-domain half step so that every row of K has an entry of order one.
        for (std::size_t i = 0; i < n; ++i) {
            double mx = -INFINITY;
            for (std::size_t j = 0; j < m; ++j) mx = std::max(mx, (g[j] - C[i * m + j]) / e);
            double sum = 0;
            for (std::size_t j = 0; j < m; ++j) sum += std::exp((g[j] - C[i * m + j]) / e - mx);
            f[i] = -e * (mx + std::log(sum * wb));
        }
        bool converged = false;
        int it = 0;
        while (!converged && it < max_iter) {
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < m; ++j) K[i * m + j] = std::exp((f[i] + g[j] - C[i * m + j]) / e);
            std::fill(u.begin(), u.end(), 1.0);
            std::fill(v.begin(), v.end(), 1.0);
            bool absorb = false;
            while (!absorb && it < max_iter) {
                ++it;
                ++total;
                for (std::size_t i = 0; i < n; ++i) {
                    double s = 0;
                    for (std::size_t j = 0; j < m; ++j) s += K[i * m + j] * v[j];
                    u[i] = 1.0 / (s * wb); // P = a b diag(u) K diag(v): row sums a
                }
                std::fill(Ktu.begin(), Ktu.end(), 0.0);
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t j = 0; j < m; ++j) Ktu[j] += K[i * m + j] * u[i];
                for (std::size_t j = 0; j < m; ++j) v[j] = 1.0 / (Ktu[j] * wa);
                // Column marginals are exact now; the row marginal error decides convergence.
                double err = 0;
                for (std::size_t i = 0; i < n; ++i) {
                    double s = 0;
                    for (std::size_t j = 0; j < m; ++j) s += K[i * m + j] * v[j];
                    err += std::fabs(wa * u[i] * s * wb - wa);
                }
                converged = err < level_tol;
                res.marginal_error = err;
                double big = 0;
                for (double x : u) big = std::max(big, std::fabs(std::log(x)));
                for (double x : v) big = std::max(big, std::fabs(std::log(x)));
                absorb = converged || big > 30.0 || !std::isfinite(big);
            }
            for (std::size_t i = 0; i < n; ++i) f[i] += e * std::log(u[i]);
            for (std::size_t j = 0; j < m; ++j) g[j] += e * std::log(v[j]);
        }
        if (last) {
            double cost = 0;
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < m; ++j) cost += std::exp((f[i] + g[j] - C[i * m + j]) / e) * wa * wb * C[i * m + j];
            res.cost = cost;
            res.iterations = total;
        }
    }
    return res;
}

/// Log-domain variant for sets too large to hold the cost matrix: O(n m) exponentials per
/// iteration, O(n + m) memory.
SinkhornResult sinkhorn_log(const Cloud& a, const Cloud& b, double eps, int max_iter, double tol) {
    const std::size_t n = a.n, m = b.n;
    const double log_a = -std::log(static_cast<double>(n)), log_b = -std::log(static_cast<double>(m));
    std::vector<double> f(n, 0.0), g(m, 0.0), row(std::max(n, m));
    // ε-scaling (Schmitzer 2019, §3.2): anneal from the cost scale down to eps, warm-starting the
    // dual potentials, which makes small eps converge in far fewer iterations.
    double cmean = 0;
    for (std::size_t i = 0; i < n; i += std::max<std::size_t>(1, n / 64))
        for (std::size_t j = 0; j < m; j += std::max<std::size_t>(1, m / 64)) cmean += sqdist(a, i, b, j);
    cmean /= static_cast<double>(((n + std::max<std::size_t>(1, n / 64) - 1) / std::max<std::size_t>(1, n / 64)) *
                                 ((m + std::max<std::size_t>(1, m / 64) - 1) / std::max<std::size_t>(1, m / 64)));
    std::vector<double> levels;
    for (double e = std::max(eps, cmean); e > eps; e *= 0.5) levels.push_back(e);
    levels.push_back(eps);
    SinkhornResult res;
    int total = 0;
    for (std::size_t level = 0; level < levels.size(); ++level) {
        const double e = levels[level];
        const bool last = level + 1 == levels.size();
        for (int it = 1; it <= max_iter; ++it) {
            ++total;
            for (std::size_t i = 0; i < n; ++i) {
                double mx = -INFINITY;
                for (std::size_t j = 0; j < m; ++j) {
                    row[j] = (g[j] - sqdist(a, i, b, j)) / e;
                    mx = std::max(mx, row[j]);
                }
                double sum = 0;
                for (std::size_t j = 0; j < m; ++j) sum += std::exp(row[j] - mx);
                f[i] = -e * (mx + std::log(sum) + log_b);
            }
            for (std::size_t j = 0; j < m; ++j) {
                double mx = -INFINITY;
                for (std::size_t i = 0; i < n; ++i) {
                    row[i] = (f[i] - sqdist(a, i, b, j)) / e;
                    mx = std::max(mx, row[i]);
                }
                double sum = 0;
                for (std::size_t i = 0; i < n; ++i) sum += std::exp(row[i] - mx);
                g[j] = -e * (mx + std::log(sum) + log_a);
            }
            // After the g update the column marginals are exact; measure the row marginal error
            // (every 5 iterations: it costs as much as an update).
            if (it % 5 != 0 && it != max_iter) continue;
            double err = 0, cost = 0;
            for (std::size_t i = 0; i < n; ++i) {
                double ri = 0;
                for (std::size_t j = 0; j < m; ++j) {
                    const double c = sqdist(a, i, b, j);
                    const double pij = std::exp((f[i] + g[j] - c) / e + log_a + log_b);
                    ri += pij;
                    cost += pij * c;
                }
                err += std::fabs(ri - std::exp(log_a));
            }
            res = {cost, err, total};
            if (err < (last ? tol : std::max(tol, 1e-4))) break;
        }
    }
    return res;
}
} // namespace

SinkhornResult sinkhorn_w2_squared(const Cloud& a, const Cloud& b, double eps, int max_iter, double tol,
                                   std::size_t dense_limit) {
    check_pair(a, b);
    KINFLOW_REQUIRE(eps > 0, "sinkhorn: eps must be > 0");
    if (a.n * b.n <= dense_limit) return sinkhorn_dense(a, b, eps, max_iter, tol);
    return sinkhorn_log(a, b, eps, max_iter, tol);
}

double w2_squared_1d(std::vector<double> x, std::vector<double> y) {
    KINFLOW_REQUIRE(!x.empty() && !y.empty(), "empty sample");
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    // Walk the merged quantile grid: on each piece both quantile functions are constant.
    const double nx = static_cast<double>(x.size()), ny = static_cast<double>(y.size());
    std::size_t i = 0, j = 0;
    double t = 0, s = 0;
    while (i < x.size() && j < y.size()) {
        const double ti = static_cast<double>(i + 1) / nx, tj = static_cast<double>(j + 1) / ny;
        const double next = std::min(ti, tj);
        const double d = x[i] - y[j];
        s += (next - t) * d * d;
        t = next;
        if (ti <= tj) ++i;
        if (tj <= ti) ++j;
    }
    return s;
}

double sliced_w2_squared(const Cloud& a, const Cloud& b, int projections, std::uint64_t seed) {
    check_pair(a, b);
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> dir(static_cast<std::size_t>(a.dim)), pa(a.n), pb(b.n);
    double total = 0;
    for (int p = 0; p < projections; ++p) {
        double norm = 0;
        for (auto& d : dir) {
            d = normal(gen);
            norm += d * d;
        }
        norm = std::sqrt(norm);
        for (auto& d : dir) d /= norm;
        for (std::size_t i = 0; i < a.n; ++i) {
            pa[i] = 0;
            for (int k = 0; k < a.dim; ++k) pa[i] += dir[static_cast<std::size_t>(k)] * a.at(i, k);
        }
        for (std::size_t j = 0; j < b.n; ++j) {
            pb[j] = 0;
            for (int k = 0; k < b.dim; ++k) pb[j] += dir[static_cast<std::size_t>(k)] * b.at(j, k);
        }
        total += w2_squared_1d(pa, pb);
    }
    return total / projections;
}

double energy_distance(const Cloud& a, const Cloud& b, bool unbiased) {
    check_pair(a, b);
    auto mean_dist = [unbiased](const Cloud& x, const Cloud& y, bool same) {
        double s = 0;
        for (std::size_t i = 0; i < x.n; ++i)
            for (std::size_t j = same ? i + 1 : 0; j < y.n; ++j) s += std::sqrt(sqdist(x, i, y, j));
        const double nx = static_cast<double>(x.n), ny = static_cast<double>(y.n);
        // Within-sample sums hold each unordered pair once: 2s over n(n-1) (U) or n² (V) ordered pairs.
        const double pairs = same ? (unbiased ? 0.5 * nx * (nx - 1) : 0.5 * nx * nx) : nx * ny;
        return pairs > 0 ? s / pairs : 0.0;
    };
    const double e = 2 * mean_dist(a, b, false) - mean_dist(a, a, true) - mean_dist(b, b, true);
    // The V-statistic is >= 0 exactly (a negative-definite kernel, Székely & Rizzo 2013 Prop. 1),
    // up to rounding; the U-statistic can be negative by O(1/n). Both are clamped at 0.
    return std::max(e, 0.0);
}

void mean_cov(const Cloud& a, std::vector<double>& mean, std::vector<double>& cov) {
    const auto d = static_cast<std::size_t>(a.dim);
    mean.assign(d, 0.0);
    cov.assign(d * d, 0.0);
    for (std::size_t i = 0; i < a.n; ++i)
        for (std::size_t k = 0; k < d; ++k) mean[k] += a.at(i, static_cast<int>(k));
    for (auto& m : mean) m /= static_cast<double>(a.n);
    for (std::size_t i = 0; i < a.n; ++i)
        for (std::size_t k = 0; k < d; ++k)
            for (std::size_t l = 0; l < d; ++l)
                cov[k * d + l] += (a.at(i, static_cast<int>(k)) - mean[k]) * (a.at(i, static_cast<int>(l)) - mean[l]);
    for (auto& c : cov) c /= static_cast<double>(a.n);
}

std::vector<double> sqrtm_psd(const std::vector<double>& s, int dim) {
    // Cyclic Jacobi eigen-decomposition S = V diag(w) Vᵀ (Golub & Van Loan, §8.5).
    const auto d = static_cast<std::size_t>(dim);
    std::vector<double> A = s, V(d * d, 0.0);
    for (std::size_t i = 0; i < d; ++i) V[i * d + i] = 1.0;
    for (int sweep = 0; sweep < 100; ++sweep) {
        double off = 0;
        for (std::size_t p = 0; p < d; ++p)
            for (std::size_t q = p + 1; q < d; ++q) off += A[p * d + q] * A[p * d + q];
        if (off < 1e-30) break;
        for (std::size_t p = 0; p < d; ++p) {
            for (std::size_t q = p + 1; q < d; ++q) {
                if (std::fabs(A[p * d + q]) < 1e-300) continue;
                const double theta = (A[q * d + q] - A[p * d + p]) / (2 * A[p * d + q]);
                const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
                const double c = 1 / std::sqrt(t * t + 1), sn = t * c;
                for (std::size_t k = 0; k < d; ++k) { // A <- Jᵀ A J
                    const double akp = A[k * d + p], akq = A[k * d + q];
                    A[k * d + p] = c * akp - sn * akq;
                    A[k * d + q] = sn * akp + c * akq;
                }
                for (std::size_t k = 0; k < d; ++k) {
                    const double apk = A[p * d + k], aqk = A[q * d + k];
                    A[p * d + k] = c * apk - sn * aqk;
                    A[q * d + k] = sn * apk + c * aqk;
                }
                for (std::size_t k = 0; k < d; ++k) {
                    const double vkp = V[k * d + p], vkq = V[k * d + q];
                    V[k * d + p] = c * vkp - sn * vkq;
                    V[k * d + q] = sn * vkp + c * vkq;
                }
            }
        }
    }
    std::vector<double> r(d * d, 0.0);
    for (std::size_t e = 0; e < d; ++e) {
        const double w = std::sqrt(std::max(0.0, A[e * d + e]));
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < d; ++j) r[i * d + j] += w * V[i * d + e] * V[j * d + e];
    }
    return r;
}

double gaussian_w2_squared(const std::vector<double>& m1, const std::vector<double>& s1, const std::vector<double>& m2,
                           const std::vector<double>& s2, int dim) {
    const auto d = static_cast<std::size_t>(dim);
    KINFLOW_REQUIRE(m1.size() == d && m2.size() == d && s1.size() == d * d && s2.size() == d * d, "gaussian_w2: bad sizes");
    double mean_term = 0;
    for (std::size_t k = 0; k < d; ++k) mean_term += (m1[k] - m2[k]) * (m1[k] - m2[k]);
    const auto r2 = sqrtm_psd(s2, dim);
    std::vector<double> t(d * d, 0.0), mid(d * d, 0.0);
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < d; ++j)
            for (std::size_t k = 0; k < d; ++k) t[i * d + j] += r2[i * d + k] * s1[k * d + j];
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < d; ++j)
            for (std::size_t k = 0; k < d; ++k) mid[i * d + j] += t[i * d + k] * r2[k * d + j];
    for (std::size_t i = 0; i < d; ++i) // symmetrise against round-off
        for (std::size_t j = i + 1; j < d; ++j) mid[i * d + j] = mid[j * d + i] = 0.5 * (mid[i * d + j] + mid[j * d + i]);
    const auto root = sqrtm_psd(mid, dim);
    double tr = 0;
    for (std::size_t k = 0; k < d; ++k) tr += s1[k * d + k] + s2[k * d + k] - 2 * root[k * d + k];
    return mean_term + tr;
}

} // namespace kinflow::metrics
