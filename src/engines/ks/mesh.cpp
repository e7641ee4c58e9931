// Particle–mesh blob-kernel sum (ks.solver = mesh); the method is described in
// include/kinflow/engines/ks/detail/mesh.hpp.
#include "kinflow/engines/ks/detail/mesh.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include <fftw3-mpi.h>
#include <fftw3.h>

#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/engines/ks/detail/neighbours.hpp"

namespace kinflow::ks::detail {

namespace {

using ConstSoaView = Kokkos::View<const double**, Kokkos::LayoutRight, MemSpace>;
using SoaView = Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>;

/// Assignment weights of order 2 (cloud-in-cell) or 3 (triangular-shaped cloud, Hockney &
/// Eastwood eq. 5-59) at grid coordinate u >= 0: w[0..Order) for nodes base, base + 1, ...
template <int Order> KOKKOS_INLINE_FUNCTION int assignment(double u, double* w) {
    if constexpr (Order == 2) {
        const int i0 = static_cast<int>(u); // u >= 0: truncation is floor
        const double f = u - i0;
        w[0] = 1.0 - f;
        w[1] = f;
        return i0;
    } else {
        const int i0 = static_cast<int>(u + 0.5); // nearest node
        const double f = u - i0;                  // in [-1/2, 1/2]
        w[0] = 0.5 * (0.5 - f) * (0.5 - f);
        w[1] = 0.75 - f * f;
        w[2] = 0.5 * (0.5 + f) * (0.5 + f);
        return i0 - 1;
    }
}

/// The Order^Dim stencil of one particle: flat node indices and weights (products per axis).
template <int Dim, int Order> struct Stencil {
    static constexpr int kNodes = Dim == 2 ? Order * Order : Order * Order * Order;
    int node[kNodes];
    int index[kNodes][Dim]; ///< per-axis node indices
    double weight[kNodes];

    /// Returns false (stencil clamped into the grid) when the particle lies outside it.
    KOKKOS_INLINE_FUNCTION bool build(const double* x, const double* lo, double inv_h, int n) {
        int base[Dim];
        double w[Dim][Order];
        bool inside = true;
        for (int a = 0; a < Dim; ++a) {
            double u = (x[a] - lo[a]) * inv_h;
            if (!(u >= 0.0 && u <= n - 1.0)) { // also catches NaN
                inside = false;
                u = u >= 0.0 ? n - 1.0 : 0.0;
            }
            base[a] = assignment<Order>(u, w[a]);
            if (base[a] < 0 || base[a] + Order > n) {
                inside = false;
                base[a] = base[a] < 0 ? 0 : n - Order;
            }
        }
        int c = 0;
        if constexpr (Dim == 2) {
            for (int p = 0; p < Order; ++p)
                for (int q = 0; q < Order; ++q, ++c) {
                    index[c][0] = base[0] + p;
                    index[c][1] = base[1] + q;
                    node[c] = (base[0] + p) * n + base[1] + q;
                    weight[c] = w[0][p] * w[1][q];
                }
        } else {
            for (int p = 0; p < Order; ++p)
                for (int q = 0; q < Order; ++q)
                    for (int r = 0; r < Order; ++r, ++c) {
                        index[c][0] = base[0] + p;
                        index[c][1] = base[1] + q;
                        index[c][Dim - 1] = base[2] + r;
                        node[c] = ((base[0] + p) * n + base[1] + q) * n + base[2] + r;
                        weight[c] = w[0][p] * w[1][q] * w[2][r];
                    }
        }
        return inside;
    }
};

/// The blob kernel G(y) = y g(|y|^2 + delta^2), component k, at y = o h (o integer offsets).
template <int Dim> KOKKOS_INLINE_FUNCTION double blob_kernel(const double* y, int k, double d2) {
    double r2 = 0.0;
    for (int a = 0; a < Dim; ++a)
        r2 += y[a] * y[a];
    const double s = r2 + d2;
    if constexpr (Dim == 2) {
        return y[k] / s;
    } else {
        return y[k] / (s * math::sqrt(s));
    }
}

/// fftw_malloc'd array freed on destruction.
template <class T> struct FftwArray {
    T* p = nullptr;
    explicit FftwArray(std::size_t n) : p(static_cast<T*>(fftw_malloc(sizeof(T) * n))) {
        KINFLOW_REQUIRE(p != nullptr, "ks mesh: out of memory for the FFT arrays (" << n << " elements)");
    }
    ~FftwArray() { fftw_free(p); }
    FftwArray(const FftwArray&) = delete;
    FftwArray& operator=(const FftwArray&) = delete;
};

/// The grid as kernels see it: the node-0 corner, the inverse spacing and n nodes per axis.
struct GridGeometry {
    double lo[3] = {0.0, 0.0, 0.0};
    double inv_h = 1.0;
    int n = 0;
};

/// Local extent of the targets along axis a: {min, max} over i < n_local, a NaN counted as +inf
/// in the max (so the caller's finiteness check sees it).
inline void local_extent(const ExecSpace& space, const ConstSoaView& target, int a, std::int64_t n_local, double& mn,
                         double& mx) {
    const double inf = std::numeric_limits<double>::infinity();
    Kokkos::parallel_reduce(
        "kinflow::ks::mesh_box_min", Kokkos::RangePolicy<ExecSpace>(space, 0, n_local),
        KOKKOS_LAMBDA(const std::int64_t i, double& m) { m = target(a, i) < m ? target(a, i) : m; },
        Kokkos::Min<double>(mn));
    Kokkos::parallel_reduce(
        "kinflow::ks::mesh_box_max", Kokkos::RangePolicy<ExecSpace>(space, 0, n_local),
        KOKKOS_LAMBDA(const std::int64_t i, double& m) {
            // NaN compares false both ways: make it +inf so the check below sees it
            const double v = target(a, i) == target(a, i) ? target(a, i) : inf;
            m = v > m ? v : m;
        },
        Kokkos::Max<double>(mx));
}

/// grid(node) += assignment weight of every local particle (atomic scatter); outside() counts the
/// particles whose stencil had to be clamped into the grid.
template <int Dim, int Order>
void mesh_deposit(const ExecSpace& space, const ConstSoaView& target, std::int64_t n_local, const GridGeometry& geo,
                  const ScalarView& grid, const Kokkos::View<int, MemSpace>& outside) {
    Kokkos::parallel_for(
        "kinflow::ks::mesh_deposit", Kokkos::RangePolicy<ExecSpace>(space, 0, n_local),
        KOKKOS_LAMBDA(const std::int64_t i) {
            double x[Dim];
            for (int a = 0; a < Dim; ++a)
                x[a] = target(a, i);
            Stencil<Dim, Order> st;
            if (!st.build(x, geo.lo, geo.inv_h, geo.n))
                Kokkos::atomic_add(&outside(), 1);
            for (int c = 0; c < Stencil<Dim, Order>::kNodes; ++c)
                Kokkos::atomic_add(&grid(st.node[c]), st.weight[c]);
        });
}

/// sums(k, i) = field_k interpolated at the local particles with the deposit's weights.
template <int Dim, int Order>
void mesh_interpolate(const ExecSpace& space, const ConstSoaView& target, std::int64_t n_local, const GridGeometry& geo,
                      const SoaView& field, const SoaView& sums) {
    Kokkos::parallel_for(
        "kinflow::ks::mesh_interpolate", Kokkos::RangePolicy<ExecSpace>(space, 0, n_local),
        KOKKOS_LAMBDA(const std::int64_t i) {
            double x[Dim];
            for (int a = 0; a < Dim; ++a)
                x[a] = target(a, i);
            Stencil<Dim, Order> st;
            st.build(x, geo.lo, geo.inv_h, geo.n); // inside: checked by the deposit of the same positions
            for (int k = 0; k < Dim; ++k) {
                double s = 0.0;
                for (int c = 0; c < Stencil<Dim, Order>::kNodes; ++c)
                    s += st.weight[c] * field(k, st.node[c]);
                sums(k, i) = s;
            }
        });
}

/// P3M: sums(a, i) += exact - mesh pair interaction of every pair closer than sqrt(rc2), the
/// sources found in the 3^Dim cells around particle i of the cell list (cell order); h the grid
/// spacing, d2 = delta^2.
template <int Dim, int Order>
void mesh_p3m_correct(const ExecSpace& space, const CellList& cl, const ConstSoaView& target, std::int64_t n_local,
                      std::int64_t target_first, const GridGeometry& geo, double h, double rc2, double d2,
                      const SoaView& sums) {
    auto start = cl.start;
    auto pos = cl.position;
    auto id = cl.id;
    const double clo0 = cl.lo[0], clo1 = cl.lo[1], clo2 = cl.lo[2], inv_s = 1.0 / cl.side;
    const std::int64_t nc0 = cl.cells[0], nc1 = cl.cells[1], nc2 = cl.cells[2];
    constexpr int K = Stencil<Dim, Order>::kNodes;
    Kokkos::parallel_for(
        "kinflow::ks::mesh_p3m", Kokkos::RangePolicy<ExecSpace>(space, 0, n_local),
        KOKKOS_LAMBDA(const std::int64_t i) {
            const double corner[3] = {clo0, clo1, clo2};
            const std::int64_t ncell[3] = {nc0, nc1, Dim == 3 ? nc2 : 1};
            double x[Dim], acc[Dim];
            std::int64_t from[3] = {0, 0, 0}, to[3] = {0, 0, 0};
            for (int a = 0; a < Dim; ++a) {
                x[a] = target(a, i);
                acc[a] = 0.0;
                std::int64_t q = static_cast<std::int64_t>((x[a] - corner[a]) * inv_s);
                q = q < 0 ? 0 : (q > ncell[a] - 1 ? ncell[a] - 1 : q);
                from[a] = q > 0 ? q - 1 : 0;
                to[a] = q < ncell[a] - 1 ? q + 1 : q;
            }
            Stencil<Dim, Order> si, sj;
            si.build(x, geo.lo, geo.inv_h, geo.n);
            const std::int64_t self = target_first + i;
            for (std::int64_t p = from[0]; p <= to[0]; ++p) {
                for (std::int64_t q = from[1]; q <= to[1]; ++q) {
                    for (std::int64_t r = from[2]; r <= to[2]; ++r) {
                        const std::int64_t c = Dim == 2 ? p * ncell[1] + q : (p * ncell[1] + q) * ncell[2] + r;
                        for (std::int64_t k = start(c); k < start(c + 1); ++k) {
                            double xj[Dim], dx[Dim], r2 = 0.0;
                            for (int a = 0; a < Dim; ++a) {
                                xj[a] = pos(a, k);
                                dx[a] = x[a] - xj[a];
                                r2 += dx[a] * dx[a];
                            }
                            if (!(r2 < rc2) || id(k) == self)
                                continue;
                            sj.build(xj, geo.lo, geo.inv_h, geo.n);
                            for (int a = 0; a < Dim; ++a)
                                acc[a] += blob_kernel<Dim>(dx, a, d2);
                            for (int u = 0; u < K; ++u) {
                                for (int v = 0; v < K; ++v) {
                                    double y[Dim];
                                    for (int a = 0; a < Dim; ++a)
                                        y[a] = h * (si.index[u][a] - sj.index[v][a]);
                                    const double w = si.weight[u] * sj.weight[v];
                                    for (int a = 0; a < Dim; ++a)
                                        acc[a] -= w * blob_kernel<Dim>(y, a, d2);
                                }
                            }
                        }
                    }
                }
            }
            for (int a = 0; a < Dim; ++a)
                sums(a, i) += acc[a];
        });
}

template <int Dim, int Order> class Mesh final : public MeshSolverBase {
  public:
    Mesh(MPI_Comm comm, bool distributed, int cells, double delta, double p3m_cutoff)
        : _n(cells), _p(2 * cells), _d2(delta * delta), _delta(delta), _cutoff(p3m_cutoff), _nodes(ipow(cells)),
          _dist(distributed), _comm(comm), _mpi(comm),
          _grid("kinflow::ks::mesh_grid", static_cast<std::size_t>(_nodes)),
          _field("kinflow::ks::mesh_field", Dim, static_cast<std::size_t>(_nodes)),
          _outside("kinflow::ks::mesh_outside") {
        const std::int64_t complex_size = ipow(_p) / _p * (_p / 2 + 1);
        std::int64_t complex_alloc = complex_size, real_alloc = ipow(_p);
        if (_dist) {
            init_fftw_mpi();
            // r2c over the complex dimensions p x ... x (p/2 + 1), output transposed (first two axes swapped)
            std::ptrdiff_t cdims[Dim], rdims[Dim];
            for (int a = 0; a < Dim; ++a)
                cdims[a] = rdims[a] = _p;
            cdims[Dim - 1] = _p / 2 + 1;
            std::ptrdiff_t n0 = 0, s0 = 0, n1 = 0, s1 = 0;
            const std::ptrdiff_t alloc = fftw_mpi_local_size_transposed(Dim, cdims, _comm, &n0, &s0, &n1, &s1);
            _rows = n0;
            _row0 = s0;
            _last = 2 * (_p / 2 + 1); // FFTW-MPI's padded real layout
            _complex_local = n1 * (complex_size / cdims[1]);
            complex_alloc = std::max<std::int64_t>(alloc, 1);
            real_alloc = 2 * complex_alloc;
            allocate(real_alloc, complex_alloc);
            _forward =
                fftw_mpi_plan_dft_r2c(Dim, rdims, _in->p, _rho_hat->p, _comm, FFTW_ESTIMATE | FFTW_MPI_TRANSPOSED_OUT);
            _backward =
                fftw_mpi_plan_dft_c2r(Dim, rdims, _prod->p, _out->p, _comm, FFTW_ESTIMATE | FFTW_MPI_TRANSPOSED_IN);
            slab_ownership();
        } else {
            _rows = _p;
            _row0 = 0;
            _last = _p;
            _complex_local = complex_size;
            allocate(real_alloc, complex_alloc);
            int dims[Dim];
            for (int a = 0; a < Dim; ++a)
                dims[a] = _p;
            _forward = fftw_plan_dft_r2c(Dim, dims, _in->p, _rho_hat->p, FFTW_ESTIMATE);
            _backward = fftw_plan_dft_c2r(Dim, dims, _prod->p, _out->p, FFTW_ESTIMATE);
        }
        _real_local = _rows * (ipow(_p) / _p) / _p * _last;
        KINFLOW_REQUIRE(_forward && _backward, "ks mesh: FFTW could not plan a " << _p << "^" << Dim << " transform"
                                                                                 << (_dist ? " (MPI)" : ""));
        _info.cells = _n;
        _info.padded = _p;
        _info.distributed = _dist;
    }
    ~Mesh() override {
        fftw_destroy_plan(_forward);
        fftw_destroy_plan(_backward);
    }

    const MeshInfo& info() const override { return _info; }

    bool needs_all_positions() const override { return _cutoff > 0.0; }

    void evaluate(const comm::Communicator& comm, const ConstSoaView& target, std::int64_t n_local,
                  std::int64_t target_first, const std::vector<double>* all, const SoaView& sums) override {
        place_grid(comm, target, n_local);
        deposit(comm, target, n_local);
        convolve();
        interpolate(target, n_local, sums);
        if (_cutoff > 0.0) {
            KINFLOW_REQUIRE(all != nullptr, "ks mesh: the P3M correction needs every position");
            correct(*all, target, n_local, target_first, sums);
        }
    }

  private:
    /// fftw_mpi_init once per process (MPI is initialised by then: comm::Environment).
    static void init_fftw_mpi() {
        static bool done = false;
        if (!done) {
            fftw_mpi_init();
            done = true;
        }
    }

    void allocate(std::int64_t real_alloc, std::int64_t complex_alloc) {
        const auto nr = static_cast<std::size_t>(real_alloc), nc = static_cast<std::size_t>(complex_alloc);
        _in = std::make_unique<FftwArray<double>>(nr);
        _out = std::make_unique<FftwArray<double>>(nr);
        _rho_hat = std::make_unique<FftwArray<fftw_complex>>(nc);
        _prod = std::make_unique<FftwArray<fftw_complex>>(nc);
        for (int k = 0; k < Dim; ++k)
            _kernel_hat.push_back(std::make_unique<FftwArray<fftw_complex>>(nc));
    }

    /// Distributed: which grid nodes (rows < n of the slabs) every rank owns; the slabs are
    /// contiguous and in rank order, so they split the flat n^Dim grid into consecutive blocks.
    void slab_ownership() {
        const std::int64_t row_nodes = _nodes / _n;
        const std::int64_t own_rows = std::max<std::int64_t>(0, std::min<std::int64_t>(_row0 + _rows, _n) - _row0);
        const int size = _mpi.size();
        const auto all = _mpi.allgatherv(std::vector<std::int64_t>{_row0, own_rows * row_nodes});
        _counts.assign(static_cast<std::size_t>(size), 0);
        _displs.assign(static_cast<std::size_t>(size), 0);
        std::int64_t offset = 0;
        for (int r = 0; r < size; ++r) {
            const auto count = static_cast<std::int64_t>(all[2 * static_cast<std::size_t>(r) + 1]);
            KINFLOW_REQUIRE(count == 0 || all[2 * static_cast<std::size_t>(r)] * row_nodes == offset,
                            "ks mesh: FFTW-MPI slabs are not in rank order");
            _counts[static_cast<std::size_t>(r)] = static_cast<int>(count);
            _displs[static_cast<std::size_t>(r)] = static_cast<int>(offset);
            offset += count;
        }
        KINFLOW_REQUIRE(offset == _nodes, "ks mesh: FFTW-MPI slabs do not cover the grid");
        const int rank = _mpi.rank();
        _own_first = _displs[static_cast<std::size_t>(rank)];
        _own_count = _counts[static_cast<std::size_t>(rank)];
        _slab.resize(static_cast<std::size_t>(std::max<std::int64_t>(_own_count, 1)));
    }

    /// The current grid for the kernels (corner, 1/h, n).
    GridGeometry geometry() const {
        GridGeometry g;
        for (int a = 0; a < 3; ++a)
            g.lo[a] = _info.lo[a];
        g.inv_h = 1.0 / _info.spacing;
        g.n = _n;
        return g;
    }

    static std::int64_t ipow(int n) { return Dim == 2 ? std::int64_t{n} * n : std::int64_t{n} * n * n; }

    /// Grid over the global bounding box: spacing h = largest side / (n - 4) (at least delta / (n - 4)),
    /// rounded up to a power of 2^(1/16) so that the kernel transform is reused while the box
    /// changes by less than 4%; the box is centred, leaving at least 1.5 cells on every side.
    void place_grid(const comm::Communicator& comm, const ConstSoaView& target, std::int64_t n_local) {
        double lo[Dim], hi[Dim];
        for (int a = 0; a < Dim; ++a) {
            double mn = std::numeric_limits<double>::max(), mx = std::numeric_limits<double>::lowest();
            local_extent(ExecSpace(), target, a, n_local, mn, mx);
            lo[a] = comm.min(mn);
            hi[a] = comm.max(mx);
            if (!(std::isfinite(lo[a]) && std::isfinite(hi[a])))
                throw Error("ks: a particle position is not finite (mesh solver)");
        }
        double ext = _delta;
        for (int a = 0; a < Dim; ++a)
            ext = std::max(ext, hi[a] - lo[a]);
        const double h = std::exp2(std::ceil(16.0 * std::log2(ext / (_n - 4))) / 16.0);
        for (int a = 0; a < Dim; ++a)
            _info.lo[a] = 0.5 * (lo[a] + hi[a]) - 0.5 * (_n - 1) * h;
        if (h != _info.spacing) {
            _info.spacing = h;
            transform_kernel();
        }
    }

    /// kernel_hat[k] = FFT of G_k(o h) = o_k h g(h^2 |o|^2 + delta^2) at the signed offsets
    /// o in (-n, n) (index o mod 2n; offset -n is never used and set to 0), divided by (2n)^Dim
    /// (FFTW's transforms are unnormalized). Distributed: each rank fills its slab rows, and the
    /// transform leaves kernel_hat in the same (transposed) layout as the density's.
    void transform_kernel() {
        const double h = _info.spacing, scale = 1.0 / static_cast<double>(ipow(_p));
        const std::int64_t local = _rows * (ipow(_p) / _p); // unpadded values in this rank's slab
        for (int k = 0; k < Dim; ++k) {
            std::fill(_in->p, _in->p + _real_local, 0.0);
            for (std::int64_t t = 0; t < local; ++t) {
                std::int64_t rest = t;
                double y[Dim];
                bool unused = false;
                for (int a = Dim - 1; a >= 0; --a) {
                    const auto q = a > 0 ? rest % _p : rest + _row0;
                    rest /= _p;
                    unused = unused || q == _n;
                    y[a] = h * static_cast<double>(q < _n ? q : q - _p);
                }
                double r2 = 0.0;
                for (int a = 0; a < Dim; ++a)
                    r2 += y[a] * y[a];
                const double s = r2 + _d2;
                const double g = Dim == 2 ? 1.0 / s : 1.0 / (s * std::sqrt(s));
                _in->p[t / _p * _last + t % _p] = unused ? 0.0 : scale * y[k] * g;
            }
            forward(_kernel_hat[static_cast<std::size_t>(k)]->p);
        }
        ++_info.kernel_transforms;
    }

    void forward(fftw_complex* out) {
        if (_dist)
            fftw_mpi_execute_dft_r2c(_forward, _in->p, out);
        else
            fftw_execute_dft_r2c(_forward, _in->p, out);
    }

    /// Particle counts on the grid: every rank deposits its own particles, then the sum over ranks
    /// (allreduce when replicated, reduce-scatter to the slab owners when distributed).
    void deposit(const comm::Communicator& comm, const ConstSoaView& target, std::int64_t n_local) {
        auto grid = _grid;
        auto outside = _outside;
        Kokkos::deep_copy(grid, 0.0);
        Kokkos::deep_copy(outside, 0);
        mesh_deposit<Dim, Order>(ExecSpace(), target, n_local, geometry(), grid, outside);
        int flag = 0;
        Kokkos::deep_copy(flag, outside);
        KINFLOW_REQUIRE(flag == 0, "ks mesh: a particle fell outside the grid (bounding box)");
        auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grid);
        std::fill(_in->p, _in->p + _real_local, 0.0);
        if (_dist) {
            // each rank receives the summed nodes of its slab, then the zero-padded copy of those
            KINFLOW_REQUIRE(comm.raw() == _comm, "ks mesh: evaluate() on another communicator than the plans'");
            _mpi.reduce_scatter_sum(host.data(), _slab.data(), _counts);
            for (std::int64_t m = 0; m < _own_count; ++m)
                _in->p[slab_index(_own_first + m)] = _slab[static_cast<std::size_t>(m)];
            return;
        }
        if (comm.size() > 1) {
            _buffer.assign(host.data(), host.data() + host.size());
            comm.sum(_buffer);
            std::copy(_buffer.begin(), _buffer.end(), host.data());
        }
        // zero-padded copy into the FFT input
        for (std::int64_t node = 0; node < _nodes; ++node)
            _in->p[slab_index(node)] = host(node);
    }

    /// Index in this rank's (padded) real FFT array of grid node `node` (flat in n^Dim; its first
    /// index must lie in the rank's slab, always so when replicated).
    std::int64_t slab_index(std::int64_t node) const {
        if constexpr (Dim == 2) {
            return (node / _n - _row0) * _last + node % _n;
        } else {
            const std::int64_t k = node % _n, j = (node / _n) % _n, i = node / (std::int64_t{_n} * _n);
            return ((i - _row0) * _p + j) * _last + k;
        }
    }

    /// field_k = (counts * G_k) on the grid nodes, through the transforms (distributed: each
    /// rank's slab rows, then allgathered).
    void convolve() {
        forward(_rho_hat->p);
        auto host = Kokkos::create_mirror_view(_field);
        for (int k = 0; k < Dim; ++k) {
            const fftw_complex* kh = _kernel_hat[static_cast<std::size_t>(k)]->p;
            const fftw_complex* rho = _rho_hat->p;
            fftw_complex* prod = _prod->p;
            for (std::int64_t m = 0; m < _complex_local; ++m) {
                const double ar = rho[m][0], ai = rho[m][1];
                const double br = kh[m][0], bi = kh[m][1];
                prod[m][0] = ar * br - ai * bi;
                prod[m][1] = ar * bi + ai * br;
            }
            fftw_execute(_backward);
            double* row = host.data() + static_cast<std::int64_t>(k) * _nodes;
            if (_dist) {
                for (std::int64_t m = 0; m < _own_count; ++m)
                    row[_own_first + m] = _out->p[slab_index(_own_first + m)];
                _mpi.allgatherv_in_place(row, _counts, _displs);
            } else {
                for (std::int64_t node = 0; node < _nodes; ++node)
                    row[node] = _out->p[slab_index(node)];
            }
        }
        Kokkos::deep_copy(_field, host);
    }

    void interpolate(const ConstSoaView& target, std::int64_t n_local, const SoaView& sums) const {
        mesh_interpolate<Dim, Order>(ExecSpace(), target, n_local, geometry(), _field, sums);
    }

    /// P3M: for pairs closer than r_c = cutoff h, add exact - mesh pair interaction (cell order).
    void correct(const std::vector<double>& all, const ConstSoaView& target, std::int64_t n_local,
                 std::int64_t target_first, const SoaView& sums) const {
        const double h = _info.spacing, rc = _cutoff * h, rc2 = rc * rc, d2 = _d2;
        const std::int64_t n_global = static_cast<std::int64_t>(all.size()) / Dim;
        const CellList cl = CellList::build(Dim, all, n_global, rc);
        mesh_p3m_correct<Dim, Order>(ExecSpace(), cl, target, n_local, target_first, geometry(), h, rc2, d2, sums);
    }

    int _n, _p;
    double _d2, _delta, _cutoff;
    std::int64_t _nodes;
    bool _dist;
    MPI_Comm _comm; ///< for the FFTW-MPI plans; every other collective goes through _mpi
    comm::Communicator _mpi;
    std::int64_t _rows = 0, _row0 = 0; ///< this rank's slab: first-axis rows of the padded array
    std::int64_t _last = 0;            ///< last-axis stride of the real FFT arrays (padded when distributed)
    std::int64_t _real_local = 0, _complex_local = 0;
    std::unique_ptr<FftwArray<double>> _in, _out;
    std::unique_ptr<FftwArray<fftw_complex>> _rho_hat, _prod;
    std::vector<std::unique_ptr<FftwArray<fftw_complex>>> _kernel_hat;
    fftw_plan _forward = nullptr, _backward = nullptr;
    std::vector<int> _counts, _displs;           ///< distributed: grid nodes owned per rank
    std::int64_t _own_first = 0, _own_count = 0; ///< distributed: this rank's nodes
    std::vector<double> _slab;                   ///< distributed: summed counts of this rank's nodes
    ScalarView _grid;
    SoaView _field;
    Kokkos::View<int, MemSpace> _outside;
    std::vector<double> _buffer;
    MeshInfo _info;
};

} // namespace

bool mesh_fft_distributed(MeshFft mode, int ranks, int dim, int cells) {
    if (mode != MeshFft::Auto)
        return mode == MeshFft::Distributed;
    const std::int64_t p = 2 * std::int64_t{cells};
    return ranks > 1 && (dim == 2 ? p * p >= 1024 * 1024 : p * p * p >= 128 * 128 * 128);
}

std::unique_ptr<MeshSolverBase> make_mesh_solver(const comm::Communicator& comm, int dim, int order, int cells,
                                                 double delta, double p3m_cutoff, MeshFft fft) {
    KINFLOW_REQUIRE(cells >= 16 && delta > 0, "ks mesh: bad grid (" << cells << " cells, delta " << delta << ")");
    const bool dist = mesh_fft_distributed(fft, comm.size(), dim, cells);
    if (dim == 2 && order == 2)
        return std::make_unique<Mesh<2, 2>>(comm.raw(), dist, cells, delta, p3m_cutoff);
    if (dim == 2 && order == 3)
        return std::make_unique<Mesh<2, 3>>(comm.raw(), dist, cells, delta, p3m_cutoff);
    if (dim == 3 && order == 2)
        return std::make_unique<Mesh<3, 2>>(comm.raw(), dist, cells, delta, p3m_cutoff);
    if (dim == 3 && order == 3)
        return std::make_unique<Mesh<3, 3>>(comm.raw(), dist, cells, delta, p3m_cutoff);
    throw Error("ks mesh: no solver for dim = " + std::to_string(dim) + ", order = " + std::to_string(order));
}

} // namespace kinflow::ks::detail
