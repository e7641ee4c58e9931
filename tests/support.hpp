#pragma once
// Helpers shared by the C++ tests.
#include <cmath>
#include <cstdint>
#include <vector>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/particle_set.hpp"

namespace kinflow::test {

/// All rows of a [n, cols] View gathered to rank 0 in rank order (empty elsewhere).
inline std::vector<double> gather_rows(const comm::Communicator& comm, const VectorView& v) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
    std::vector<double> local(h.data(), h.data() + h.size());
    return comm.gatherv(local, 0);
}

/// Sample mean and population covariance of rows of `x` ([n, d] row-major).
struct Moments {
    std::vector<double> mean;
    std::vector<std::vector<double>> cov;
};
inline Moments moments(const std::vector<double>& x, int d) {
    const std::size_t n = x.size() / static_cast<std::size_t>(d);
    Moments m;
    m.mean.assign(static_cast<std::size_t>(d), 0.0);
    m.cov.assign(static_cast<std::size_t>(d), std::vector<double>(static_cast<std::size_t>(d), 0.0));
    for (std::size_t i = 0; i < n; ++i)
        for (int k = 0; k < d; ++k) m.mean[static_cast<std::size_t>(k)] += x[i * d + k] / static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i)
        for (int a = 0; a < d; ++a)
            for (int b = 0; b < d; ++b)
                m.cov[a][b] += (x[i * d + a] - m.mean[a]) * (x[i * d + b] - m.mean[b]) / static_cast<double>(n);
    return m;
}

} // namespace kinflow::test
