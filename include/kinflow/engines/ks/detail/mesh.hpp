#pragma once
// Particle–mesh evaluation of the blob-kernel sum for the Keller–Segel engine (ks.solver = mesh).
//
// The engine's direct sum is S_i = sum_j (X_i - X_j) g(|X_i - X_j|^2 + delta^2) (g(s) = 1/s in 2D,
// s^{-3/2} in 3D). The mesh approximates it as
//   S_i ~ sum_g W(X_i - x_g) sum_{g'} G(x_g - x_{g'}) n_{g'},   n_{g'} = sum_j W(X_j - x_{g'}),
// W the cloud-in-cell (order 2) or triangular-shaped-cloud (order 3) assignment function on a
// uniform grid of spacing h over the particles' bounding box, and G(y) = y g(|y|^2 + delta^2) the
// kernel sampled at the grid offsets. The grid convolution is the exact free-space (aperiodic)
// discrete convolution, computed by zero-padding to twice the grid and FFTs (Hockney & Eastwood,
// "Computer Simulation Using Particles", sec. 6-5-4), with FFTW. Depositing and interpolating with
// the same W on an odd kernel makes the mesh pair interaction antisymmetric: no self-force, and
// the interaction conserves the centre of mass to round-off. The error against the direct sum
// is O((h/delta)^2) near the blob scale and O((h/L)^2) in the far field.
//
// P3M correction (ks.p3m_cutoff = r_c/h > 0): for every pair closer than r_c the mesh's own pair
// interaction sum_{g,g'} W(X_i - x_g) G(x_g - x_g') W(X_j - x_g') is replaced by the exact
// (X_i - X_j) g(|X_i - X_j|^2 + delta^2), found with a cell list over all positions (replicated);
// the correction is antisymmetric, so the centre of mass stays conserved, and the result
// converges to the direct sum as r_c grows (Hockney & Eastwood ch. 7 use a force split instead).
//
// Ranks (ks.mesh_fft): each rank deposits its own particles (Kokkos::atomic_add) on a full
// n^dim grid and interpolates its own particles from a full field (particles are not spatially
// decomposed). Replicated: the grids are summed with one allreduce and every rank runs the same
// full FFTs. Distributed: FFTW-MPI slab decomposition of the padded (2n)^dim array along its first
// axis (fftw_mpi_local_size_transposed); the grids are summed with MPI_Reduce_scatter so each rank
// receives the summed rows of its slab (rows >= n are the zero padding), the forward r2c leaves its
// output transposed (FFTW_MPI_TRANSPOSED_OUT) and the inverse c2r takes it so (TRANSPOSED_IN), the
// kernel transform is computed once per spacing by the same plan, so it lies in the same
// distributed layout and the product is pointwise on each rank's part; the field rows are then
// assembled on every rank with MPI_Allgatherv. The summation order of the reductions depends on
// the rank count and the transforms' algorithms on the mode, so results agree across rank counts
// and modes to round-off (not bit-for-bit; tests check 1e-12 relative).
#include <cstdint>
#include <memory>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/kokkos_types.hpp"
#include "kinflow/engines/ks/options.hpp"

namespace kinflow::ks::detail {

/// What the last mesh evaluation used (for reports and tests).
struct MeshInfo {
    int cells = 0;                      ///< grid nodes per axis
    int padded = 0;                     ///< FFT length per axis (2 cells)
    double spacing = 0.0;               ///< h
    double lo[3] = {0, 0, 0};           ///< position of node 0
    std::int64_t kernel_transforms = 0; ///< how often the kernel's FFT was (re)computed
    bool distributed = false;           ///< FFTs distributed over the ranks (ks.mesh_fft resolved)
};

class MeshSolverBase {
  public:
    virtual ~MeshSolverBase() = default;
    /// Collective over `comm`. target: [dim, >= n_local] positions (SoA rows); on return
    /// sums(k, i) holds the mesh approximation of S_i for i < n_local (other columns untouched).
    /// `all`: every position as host [dim, N] SoA rows in global-id order, needed (non-null) when
    /// needs_all_positions(); `target_first`: global id of target 0.
    virtual void evaluate(const comm::Communicator& comm,
                          const Kokkos::View<const double**, Kokkos::LayoutRight, MemSpace>& target,
                          std::int64_t n_local, std::int64_t target_first, const std::vector<double>* all,
                          const Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>& sums) = 0;
    /// Whether evaluate() needs every position (the P3M correction).
    virtual bool needs_all_positions() const = 0;
    virtual const MeshInfo& info() const = 0;
};

/// ks.mesh_fft resolved for `ranks` ranks: Distributed, Replicated, or for Auto distributed when
/// ranks > 1 and the padded grid (2 cells)^dim has at least 1024^2 (2D) / 128^3 (3D) points.
bool mesh_fft_distributed(MeshFft mode, int ranks, int dim, int cells);

/// dim 2 or 3, order 2 or 3, cells >= 16 nodes per axis, delta > 0; p3m_cutoff in grid spacings
/// (0: no short-range correction). Collective over `comm` when the FFTs are distributed (the FFTW-MPI
/// plans are made on it); evaluate() must then be called with the same communicator.
std::unique_ptr<MeshSolverBase> make_mesh_solver(const comm::Communicator& comm, int dim, int order, int cells,
                                                 double delta, double p3m_cutoff, MeshFft fft);

} // namespace kinflow::ks::detail
