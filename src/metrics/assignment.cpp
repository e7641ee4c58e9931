// Exact assignment for squared Euclidean costs. Two independent solvers: the auction algorithm
// (used: fast on point clouds) and shortest augmenting paths with dual potentials (reference,
// exact; Jonker & Volgenant 1987), in the form of Crouse, "On implementing 2D rectangular assignment
// algorithms", IEEE TAES 52 (2016), Alg. 4 — each augmentation touches only the rows and
// columns its Dijkstra search scanned. O(n³) worst case, far less on point clouds; O(n) memory:
// costs are computed from the coordinates on the fly, so n ~ 10^4 fits in memory.
#include "kinflow/metrics/assignment.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kinflow/core/error.hpp"

namespace kinflow::metrics {

namespace {
template <class T>
std::vector<int> shortest_augmenting_paths(const T* a, const T* b, std::size_t n, int dim) {
    const auto d = static_cast<std::size_t>(dim);
    std::vector<double> bt(d * n); // column-major copy of b: contiguous per coordinate
    for (std::size_t j = 0; j < n; ++j)
        for (std::size_t k = 0; k < d; ++k) bt[k * n + j] = static_cast<double>(b[j * d + k]);
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> u(n, 0.0), v(n, 0.0), spc(n);
    std::vector<long> path(n, -1), col4row(n, -1), row4col(n, -1);
    std::vector<std::size_t> remaining(n);
    std::vector<char> SR(n), SC(n);
    double xi[16];
    KINFLOW_REQUIRE(dim <= 16, "exact_assignment: dim must be <= 16");
    for (std::size_t cur = 0; cur < n; ++cur) {
        // Dijkstra from row `cur` over reduced costs until a free column is reached.
        double min_val = 0;
        std::size_t num_remaining = n;
        for (std::size_t it = 0; it < n; ++it) remaining[it] = n - it - 1;
        std::fill(SR.begin(), SR.end(), 0);
        std::fill(SC.begin(), SC.end(), 0);
        std::fill(spc.begin(), spc.end(), inf);
        long sink = -1;
        std::size_t i = cur;
        while (sink == -1) {
            SR[i] = 1;
            for (std::size_t k = 0; k < d; ++k) xi[k] = static_cast<double>(a[i * d + k]);
            std::size_t index = 0;
            double lowest = inf;
            const double base = min_val - u[i];
            for (std::size_t it = 0; it < num_remaining; ++it) {
                const std::size_t j = remaining[it];
                double c = 0;
                for (std::size_t k = 0; k < d; ++k) {
                    const double diff = xi[k] - bt[k * n + j];
                    c += diff * diff;
                }
                const double r = base + c - v[j];
                if (r < spc[j]) {
                    path[j] = static_cast<long>(i);
                    spc[j] = r;
                }
                if (spc[j] < lowest || (spc[j] == lowest && row4col[j] == -1)) {
                    lowest = spc[j];
                    index = it;
                }
            }
            min_val = lowest;
            const std::size_t j = remaining[index];
            if (row4col[j] == -1) sink = static_cast<long>(j);
            else i = static_cast<std::size_t>(row4col[j]);
            SC[j] = 1;
            remaining[index] = remaining[--num_remaining];
        }
        // Update the dual potentials of the scanned rows and columns.
        u[cur] += min_val;
        for (std::size_t r = 0; r < n; ++r) {
            if (SR[r] && r != cur) u[r] += min_val - spc[static_cast<std::size_t>(col4row[r])];
        }
        for (std::size_t c = 0; c < n; ++c) {
            if (SC[c]) v[c] -= min_val - spc[c];
        }
        // Augment along the path back to `cur`.
        long j = sink;
        while (true) {
            const long r = path[static_cast<std::size_t>(j)];
            row4col[static_cast<std::size_t>(j)] = r;
            std::swap(col4row[static_cast<std::size_t>(r)], j);
            if (static_cast<std::size_t>(r) == cur) break;
        }
    }
    return std::vector<int>(col4row.begin(), col4row.end());
}
/// Forward auction with ε-scaling (Bertsekas, "The auction algorithm: a distributed relaxation
/// method for the assignment problem", Ann. Oper. Res. 14 (1988); Bertsekas & Castañon 1991 for
/// ε-scaling), Gauss–Seidel bidding, costs computed on the fly. The final assignment is within
/// n·ε_final of the optimum; ε_final = 1e-9·max cost / n makes that 1e-9 of the largest cost.
template <class T>
std::vector<int> auction(const T* a, const T* b, std::size_t n, int dim) {
    const auto d = static_cast<std::size_t>(dim);
    KINFLOW_REQUIRE(dim <= 16, "exact_assignment: dim must be <= 16");
    std::vector<double> bt(d * n);
    for (std::size_t j = 0; j < n; ++j)
        for (std::size_t k = 0; k < d; ++k) bt[k * n + j] = static_cast<double>(b[j * d + k]);
    // Largest cost from the bounding boxes (an upper bound is all ε-scaling needs).
    double cmax = 0;
    bool finite = true;
    for (std::size_t k = 0; k < d; ++k) {
        double lo = INFINITY, hi = -INFINITY;
        for (std::size_t i = 0; i < n; ++i) {
            finite = finite && std::isfinite(static_cast<double>(a[i * d + k])) && std::isfinite(bt[k * n + i]);
            lo = std::min({lo, static_cast<double>(a[i * d + k]), bt[k * n + i]});
            hi = std::max({hi, static_cast<double>(a[i * d + k]), bt[k * n + i]});
        }
        cmax += (hi - lo) * (hi - lo);
    }
    // A NaN or infinite cost would keep the bidding going for ever.
    KINFLOW_REQUIRE(finite && std::isfinite(cmax),
                    "exact_assignment: coordinates must be finite, with squared distances within the double range");
    std::vector<int> col4row(n, -1);
    if (n == 1 || cmax == 0) {
        for (std::size_t i = 0; i < n; ++i) col4row[i] = static_cast<int>(i);
        return col4row;
    }
    const double eps_final = 1e-9 * cmax / static_cast<double>(n);
    std::vector<double> price(n, 0.0);
    std::vector<int> row4col(n, -1);
    std::vector<std::size_t> unassigned;
    unassigned.reserve(n);
    double xi[16];
    for (double eps = 0.25 * cmax;; eps = std::max(eps / 7.0, eps_final)) {
        std::fill(col4row.begin(), col4row.end(), -1);
        std::fill(row4col.begin(), row4col.end(), -1);
        unassigned.clear();
        for (std::size_t i = n; i-- > 0;) unassigned.push_back(i);
        while (!unassigned.empty()) {
            const std::size_t i = unassigned.back();
            unassigned.pop_back();
            for (std::size_t k = 0; k < d; ++k) xi[k] = static_cast<double>(a[i * d + k]);
            // Best and second-best value -c_ij - p_j over all objects.
            double best = -INFINITY, second = -INFINITY;
            std::size_t jbest = 0;
            for (std::size_t j = 0; j < n; ++j) {
                double c = 0;
                for (std::size_t k = 0; k < d; ++k) {
                    const double diff = xi[k] - bt[k * n + j];
                    c += diff * diff;
                }
                const double value = -c - price[j];
                if (value > best) {
                    second = best;
                    best = value;
                    jbest = j;
                } else if (value > second) {
                    second = value;
                }
            }
            price[jbest] += best - second + eps; // the bid
            const int prev = row4col[jbest];
            row4col[jbest] = static_cast<int>(i);
            col4row[i] = static_cast<int>(jbest);
            if (prev >= 0) {
                col4row[static_cast<std::size_t>(prev)] = -1;
                unassigned.push_back(static_cast<std::size_t>(prev));
            }
        }
        if (eps <= eps_final) break;
    }
    return col4row;
}
} // namespace

std::vector<int> assignment_shortest_path(const double* a, const double* b, std::size_t n, int dim) {
    KINFLOW_REQUIRE(dim >= 1, "assignment: dim must be >= 1");
    return shortest_augmenting_paths(a, b, n, dim);
}

std::vector<int> exact_assignment(const double* a, const double* b, std::size_t n, int dim) {
    KINFLOW_REQUIRE(dim >= 1, "exact_assignment: dim must be >= 1");
    return auction(a, b, n, dim);
}

std::vector<int> exact_assignment(const float* a, const float* b, std::size_t n, int dim) {
    KINFLOW_REQUIRE(dim >= 1, "exact_assignment: dim must be >= 1");
    return auction(a, b, n, dim);
}

double assignment_cost(const double* a, const double* b, const std::vector<int>& perm, int dim) {
    const std::size_t n = perm.size();
    if (n == 0) return 0.0;
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) {
        for (int k = 0; k < dim; ++k) {
            const double d = a[i * dim + k] - b[static_cast<std::size_t>(perm[i]) * dim + k];
            s += d * d;
        }
    }
    return s / static_cast<double>(n);
}

double w2_squared_exact(const double* a, const double* b, std::size_t n, int dim) {
    if (n == 0) return 0.0;
    return assignment_cost(a, b, exact_assignment(a, b, n, dim), dim);
}

} // namespace kinflow::metrics
