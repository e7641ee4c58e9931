// Parabolic–parabolic particle–field solver (SIPF); the scheme is described in
// include/kinflow/engines/ks/detail/field.hpp.
#include "kinflow/engines/ks/detail/field.hpp"

#include <cmath>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/error.hpp"

namespace kinflow::ks::detail {

namespace {

using ConstSoaView = Kokkos::View<const double**, Kokkos::LayoutRight, MemSpace>;
using SoaView = Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>;
/// [n, Dim, H/2 + 1, 2]: cos and sin of 2 pi q X_a / L, q = 0..H/2.
using PhaseView = Kokkos::View<double****, Kokkos::LayoutRight, MemSpace>;

/// e^{i j theta_a} from the table (q = |j| entries; j < 0 is the conjugate).
KOKKOS_INLINE_FUNCTION void phase(const PhaseView& t, std::int64_t i, int a, int j, double& re, double& im) {
    const int q = j < 0 ? -j : j;
    re = t(i, a, q, 0);
    im = j < 0 ? -t(i, a, q, 1) : t(i, a, q, 1);
}

/// Phase table of the local particles: t(i, a, q) = (cos, sin)(q w X_a(i)), q = 0..h2, w = 2 pi / L.
template <int Dim>
void field_phases(const ExecSpace& space, const ConstSoaView& target, std::int64_t n_local, const PhaseView& t,
                  double w, int h2) {
    Kokkos::parallel_for(
        "kinflow::ks::field_phases", Kokkos::RangePolicy<ExecSpace>(space, 0, n_local),
        KOKKOS_LAMBDA(const std::int64_t i) {
            for (int a = 0; a < Dim; ++a) {
                const double theta = w * target(a, i);
                for (int q = 0; q <= h2; ++q) { // direct cos/sin: no recurrence round-off growth
                    t(i, a, q, 0) = math::cos(q * theta);
                    t(i, a, q, 1) = math::sin(q * theta);
                }
            }
        });
}

/// partial(c, 2h + {0, 1}) = sum over chunk c's particles (in order) of e^{-i j.theta_i} for the
/// half-mode h (row-major mode index centre + h, m1 = H + 1 modes per axis, h2 = H/2).
template <int Dim>
void field_rho_partials(const ExecSpace& space, const PhaseView& t, const SoaView& partial, std::int64_t n_local,
                        std::int64_t chunk, std::int64_t centre, std::int64_t nh, int m1, int h2) {
    const std::int64_t nc = static_cast<std::int64_t>(partial.extent(0));
    Kokkos::parallel_for(
        "kinflow::ks::field_rho", Kokkos::RangePolicy<ExecSpace>(space, 0, nc * nh),
        KOKKOS_LAMBDA(const std::int64_t w) {
            const std::int64_t c = w / nh, h = w % nh;
            int j[Dim];
            std::int64_t rest = centre + h;
            for (int a = Dim - 1; a >= 0; --a) {
                j[a] = static_cast<int>(rest % m1) - h2;
                rest /= m1;
            }
            const std::int64_t b = c * chunk, e = b + chunk < n_local ? b + chunk : n_local;
            double sr = 0.0, si = 0.0;
            for (std::int64_t i = b; i < e; ++i) {
                double re, im;
                phase(t, i, 0, j[0], re, im);
                for (int a = 1; a < Dim; ++a) {
                    double pr, pi;
                    phase(t, i, a, j[a], pr, pi);
                    const double nr = re * pr - im * pi;
                    im = re * pi + im * pr;
                    re = nr;
                }
                sr += re;
                si += im;
            }
            partial(c, 2 * h) = sr;
            partial(c, 2 * h + 1) = -si; // e^{-i j.theta}
        });
}

/// g_a += d_a c(X_i) / 2 over the modes j > 0 (lexicographically), row-major order; modes(m, {0, 1})
/// = (Re, Im) c_hat_m.
KOKKOS_INLINE_FUNCTION void gradient_at(std::integral_constant<int, 2>, const PhaseView& t, const SoaView& modes,
                                        std::int64_t i, int h2, int m1, double w, double* g) {
    for (int j0 = 0; j0 <= h2; ++j0) {
        double r0, i0;
        phase(t, i, 0, j0, r0, i0);
        const int j1s = j0 == 0 ? 1 : -h2;
        std::int64_t m = static_cast<std::int64_t>(j0 + h2) * m1 + (j1s + h2);
        for (int j1 = j1s; j1 <= h2; ++j1, ++m) {
            double r1, i1;
            phase(t, i, 1, j1, r1, i1);
            const double re = r0 * r1 - i0 * i1, ie = r0 * i1 + i0 * r1;
            const double im = modes(m, 0) * ie + modes(m, 1) * re; // Im(c_hat e)
            g[0] -= w * j0 * im;
            g[1] -= w * j1 * im;
        }
    }
}

KOKKOS_INLINE_FUNCTION void gradient_at(std::integral_constant<int, 3>, const PhaseView& t, const SoaView& modes,
                                        std::int64_t i, int h2, int m1, double w, double* g) {
    for (int j0 = 0; j0 <= h2; ++j0) {
        double r0, i0;
        phase(t, i, 0, j0, r0, i0);
        for (int j1 = j0 == 0 ? 0 : -h2; j1 <= h2; ++j1) {
            double r1, i1;
            phase(t, i, 1, j1, r1, i1);
            const double r01 = r0 * r1 - i0 * i1, i01 = r0 * i1 + i0 * r1;
            const int j2s = (j0 == 0 && j1 == 0) ? 1 : -h2;
            std::int64_t m = (static_cast<std::int64_t>(j0 + h2) * m1 + (j1 + h2)) * m1 + (j2s + h2);
            for (int j2 = j2s; j2 <= h2; ++j2, ++m) {
                double r2, i2;
                phase(t, i, 2, j2, r2, i2);
                const double re = r01 * r2 - i01 * i2, ie = r01 * i2 + i01 * r2;
                const double im = modes(m, 0) * ie + modes(m, 1) * re;
                g[0] -= w * j0 * im;
                g[1] -= w * j1 * im;
                g[2] -= w * j2 * im;
            }
        }
    }
}

/// sums(a, i) = d_a c(X_i) = 2 x (the half-mode sum of gradient_at), i < n_local.
template <int Dim>
void field_gradient(const ExecSpace& space, const PhaseView& t, const SoaView& modes, const SoaView& sums,
                    std::int64_t n_local, int h2, int m1, double w) {
    Kokkos::parallel_for(
        "kinflow::ks::field_gradient", Kokkos::RangePolicy<ExecSpace>(space, 0, n_local),
        KOKKOS_LAMBDA(const std::int64_t i) {
            double g[Dim];
            for (int a = 0; a < Dim; ++a)
                g[a] = 0.0;
            gradient_at(std::integral_constant<int, Dim>{}, t, modes, i, h2, m1, w, g);
            for (int a = 0; a < Dim; ++a)
                sums(a, i) = 2.0 * g[a];
        });
}

template <int Dim> class Field final : public FieldSolverBase {
  public:
    explicit Field(const Params& p)
        : _h2(p.modes / 2), _m1(p.modes + 1), _nm(Dim == 2 ? _m1 * _m1 : _m1 * _m1 * _m1), _box(p.box), _eps(p.epsilon),
          _k2(p.k * p.k), _scale(p.mass / (static_cast<double>(p.particles) * std::pow(p.box, Dim))),
          _init(p.field_init), _committed(static_cast<std::size_t>(_nm)), _tentative(static_cast<std::size_t>(_nm)),
          _rho(static_cast<std::size_t>(_nm)), _modes("kinflow::ks::field_modes", static_cast<std::size_t>(_nm), 2) {}

    const std::vector<std::complex<double>>& committed() const override { return _committed; }
    const std::vector<std::complex<double>>& tentative() const override { return _tentative; }
    const std::vector<std::complex<double>>& rho_hat() const override { return _rho; }
    void set_committed(const std::vector<std::complex<double>>& m) override {
        KINFLOW_REQUIRE(m.size() == _committed.size(), "ks field: " << m.size() << " modes given, " << _nm << " held");
        _committed = m;
    }
    void commit() override { _committed = _tentative; }

    void initialize(const comm::Communicator& comm, const comm::BlockDecomposition& dec,
                    const ConstSoaView& target) override {
        std::fill(_committed.begin(), _committed.end(), std::complex<double>(0.0, 0.0));
        if (_init == FieldInit::Zero)
            return;
        compute_rho(comm, dec, target);
        for (std::int64_t m = 0; m < _nm; ++m) {
            const double den = lambda(m) + _k2;
            _committed[static_cast<std::size_t>(m)] = den > 0.0 ? _rho[static_cast<std::size_t>(m)] / den : 0.0;
        }
    }

    void evaluate(const comm::Communicator& comm, const comm::BlockDecomposition& dec, const ConstSoaView& target,
                  double dt, const SoaView& sums) override {
        compute_rho(comm, dec, target);
        // implicit Euler in Fourier space (VERIFICATION.md)
        for (std::int64_t m = 0; m < _nm; ++m) {
            const auto u = static_cast<std::size_t>(m);
            const double lam = lambda(m) + _k2;
            if (_eps == 0.0) {
                _tentative[u] = lam > 0.0 ? _rho[u] / lam : 0.0;
            } else if (dt == 0.0) {
                _tentative[u] = _committed[u];
            } else {
                const double r = _eps / dt;
                _tentative[u] = (_rho[u] + r * _committed[u]) / (lam + r);
            }
        }
        gradient(dec.n_local(), sums);
    }

  private:
    /// |2 pi j / L|^2 of mode m.
    double lambda(std::int64_t m) const {
        double s = 0.0;
        for (int a = Dim - 1; a >= 0; --a) {
            const double j = static_cast<double>(m % _m1 - _h2);
            m /= _m1;
            s += j * j;
        }
        const double w = 2.0 * kPi / _box;
        return w * w * s;
    }

    /// Phase table of the local particles.
    void phases(const ConstSoaView& target, std::int64_t n_local) {
        if (_phase.extent(0) != static_cast<std::size_t>(n_local)) {
            _phase = PhaseView("kinflow::ks::field_phase", static_cast<std::size_t>(n_local), Dim,
                               static_cast<std::size_t>(_h2 + 1), 2);
        }
        field_phases<Dim>(ExecSpace(), target, n_local, _phase, 2.0 * kPi / _box, _h2);
    }

    /// rho_hat_j = (M/(N L^d)) sum_i e^{-2 pi i j.X_i/L}: per chunk and mode one sequential pass over
    /// the chunk's particles, chunk partials added in chunk (global-id) order. Only the modes from
    /// j = 0 on in row-major order are summed (j lexicographically >= 0); rho_hat_{-j} = conj(rho_hat_j)
    /// exactly, so c stays real.
    void compute_rho(const comm::Communicator& comm, const comm::BlockDecomposition& dec, const ConstSoaView& target) {
        const std::int64_t n_local = dec.n_local();
        phases(target, n_local);
        const std::int64_t nc = dec.n_chunks_local(), chunk = dec.chunk, centre = _nm / 2, nh = _nm - centre;
        Kokkos::View<double**, Kokkos::LayoutRight, MemSpace> partial(
            "kinflow::ks::field_rho_partial", static_cast<std::size_t>(nc), static_cast<std::size_t>(2 * nh));
        field_rho_partials<Dim>(ExecSpace(), _phase, partial, n_local, chunk, centre, nh, _m1, _h2);
        // host: gather the chunk partials over ranks (MPI) and add them in chunk order
        auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), partial);
        std::vector<double> local(host.data(), host.data() + host.size());
        const std::vector<double> all = comm.size() > 1 ? comm.allgatherv(local) : local;
        KINFLOW_REQUIRE(static_cast<std::int64_t>(all.size()) == dec.n_chunks_global * 2 * nh,
                        "ks field: gathered " << all.size() << " chunk partials");
        std::vector<double> sum(static_cast<std::size_t>(2 * nh), 0.0);
        for (std::int64_t c = 0; c < dec.n_chunks_global; ++c) {
            for (std::int64_t v = 0; v < 2 * nh; ++v)
                sum[static_cast<std::size_t>(v)] += all[static_cast<std::size_t>(c * 2 * nh + v)];
        }
        for (std::int64_t h = 0; h < nh; ++h) {
            const std::complex<double> z(_scale * sum[static_cast<std::size_t>(2 * h)],
                                         _scale * sum[static_cast<std::size_t>(2 * h + 1)]);
            _rho[static_cast<std::size_t>(centre + h)] = z;
            _rho[static_cast<std::size_t>(centre - h)] = std::conj(z); // mode -j (index nm - 1 - m)
        }
    }

    /// sums(a, i) = d_a c(X_i) = -sum_j (2 pi j_a / L) Im(c_hat_j e^{2 pi i j.X_i/L}); the modes j and
    /// -j contribute alike (c_hat_{-j} = conj(c_hat_j)), so twice the sum over j > 0
    /// (lexicographically), in row-major order.
    void gradient(std::int64_t n_local, const SoaView& sums) {
        auto hm = Kokkos::create_mirror_view(_modes);
        for (std::int64_t m = 0; m < _nm; ++m) {
            hm(m, 0) = _tentative[static_cast<std::size_t>(m)].real();
            hm(m, 1) = _tentative[static_cast<std::size_t>(m)].imag();
        }
        Kokkos::deep_copy(_modes, hm);
        field_gradient<Dim>(ExecSpace(), _phase, _modes, sums, n_local, _h2, _m1, 2.0 * kPi / _box);
    }

    int _h2, _m1;
    std::int64_t _nm;
    double _box, _eps, _k2, _scale;
    FieldInit _init;
    std::vector<std::complex<double>> _committed, _tentative, _rho;
    Kokkos::View<double**, Kokkos::LayoutRight, MemSpace> _modes;
    PhaseView _phase;
};

} // namespace

std::unique_ptr<FieldSolverBase> make_field_solver(const Params& p) {
    if (p.dim == 2)
        return std::make_unique<Field<2>>(p);
    if (p.dim == 3)
        return std::make_unique<Field<3>>(p);
    throw Error("ks field: no solver for dim = " + std::to_string(p.dim));
}

} // namespace kinflow::ks::detail
