#pragma once
// Parabolic–parabolic Keller–Segel by the stochastic interacting particle–field (SIPF) scheme
// (Hu, Wang, Xin et al., arXiv 2309.13554), ks.model = parabolic_parabolic:
//   eps c_t = lap c - k^2 c + rho  on the periodic box [-L/2, L/2)^d,
// c(x) = sum_j c_hat_j e^{2 pi i j.x/L} over the modes |j_a| <= H/2 (Fourier-series coefficients,
// c_hat_j = L^{-d} int c e^{-2 pi i j.x/L}), and the particle density's coefficients
//   rho_hat_j = (M / (N L^d)) sum_i e^{-2 pi i j.X_i/L}.
// Implicit Euler in Fourier space (VERIFICATION.md):
//   c_hat^n_j = (rho_hat^n_j + (eps/dt) c_hat^{n-1}_j) / (|2 pi j/L|^2 + k^2 + eps/dt),
// eps = 0 giving the elliptic limit c_hat_j = rho_hat_j / (|2 pi j/L|^2 + k^2) (0 where that is 0/0,
// i.e. j = 0 with k = 0). The particles drift by chi grad c(X_i) = chi sum_j (2 pi i j/L) c_hat_j
// e^{2 pi i j.X_i/L}. (VERIFICATION.md and the issue write rho_hat without the 1/L^d: with that
// convention c_hat is L^d times the coefficients here and c = L^{-d} sum_j c_hat_j e^{...}.)
//
// Cost O(N (H+1)^d / 2) per step (direct Fourier sums over half the modes: c is real). rho_hat is summed per reduction
// chunk (comm::BlockDecomposition; one sequential pass per chunk and mode) and the chunk partials are added in chunk
// order on every rank, so the field, the drift and the trajectory are bit-identical for any number of ranks and
// threads.
#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/kokkos_types.hpp"
#include "kinflow/engines/ks/options.hpp"

namespace kinflow::ks::detail {

class FieldSolverBase {
  public:
    virtual ~FieldSolverBase() = default;
    /// rho_hat of the given positions (target: [dim, >= n_local] SoA rows of this rank), then the
    /// tentative field c_hat^n from the committed c_hat^{n-1} with time step dt (dt = 0 and
    /// eps > 0: c_hat^n = c_hat^{n-1}); sums(k, i) = d_k c(X_i) for i < n_local. Collective.
    virtual void evaluate(const comm::Communicator& comm, const comm::BlockDecomposition& dec,
                          const Kokkos::View<const double**, Kokkos::LayoutRight, MemSpace>& target, double dt,
                          const Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>& sums) = 0;
    /// The tentative field becomes the committed one (after a step was taken).
    virtual void commit() = 0;
    /// field_init: the committed field from the given positions (elliptic) or zero. Collective.
    virtual void initialize(const comm::Communicator& comm, const comm::BlockDecomposition& dec,
                            const Kokkos::View<const double**, Kokkos::LayoutRight, MemSpace>& target) = 0;
    /// Modes in row-major order of (j_0 + H/2, ..., j_{d-1} + H/2), (H+1)^d of them.
    virtual const std::vector<std::complex<double>>& committed() const = 0;
    virtual const std::vector<std::complex<double>>& tentative() const = 0;
    virtual const std::vector<std::complex<double>>& rho_hat() const = 0;
    virtual void set_committed(const std::vector<std::complex<double>>& modes) = 0;
};

std::unique_ptr<FieldSolverBase> make_field_solver(const Params& p);

} // namespace kinflow::ks::detail
