#include "kinflow/engines/dsmc/dsmc_engine.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <Kokkos_Core.hpp>
#include <Kokkos_Sort.hpp>

#include "kinflow/comm/migrate.hpp"
#include "kinflow/comm/reduce.hpp"
#include "kinflow/core/compat.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/core/rng.hpp"
#include "kinflow/engines/dsmc/bkw.hpp"

namespace kinflow::dsmc {

namespace {

/// Per-species initial-condition constants, copied into the init kernel.
struct InitTable {
    int n_species = 1;
    int kind[kMaxSpecies] = {};
    double sv[kMaxSpecies] = {}, sx[kMaxSpecies] = {}, sy[kMaxSpecies] = {}, sz[kMaxSpecies] = {},
           beam[kMaxSpecies] = {}, u[kMaxSpecies][3] = {};
    std::int64_t first[kMaxSpecies + 1] = {}; ///< species s owns global ids [first[s], first[s+1])
    double K = 0.6;                           ///< BKW parameter of the initial state
};

struct Masses {
    double m[kMaxSpecies] = {};
};
struct Means {
    double u[kMaxSpecies][3] = {};
};

constexpr int kSums1 = 4 * kMaxSpecies + 4; ///< per species count and sum v; sum m v; sum m|v|^2/2
constexpr int kSums2 = 5 * kMaxSpecies;     ///< per species sums of c_k^2, |c|^4, |c|^6

/// Per species (s < kMaxSpecies): acc[4s] = count, acc[4s + 1 + k] = sum of v_k; ordered (rank-
/// and thread-count independent) sum over all ranks.
std::array<double, kSums1> species_velocity_sums(const comm::Communicator& comm, const comm::BlockDecomposition& dec,
                                                 const VectorView& vel, const SpeciesView& sp) {
    return comm::ordered_sum<kSums1>(
        comm, dec, KOKKOS_LAMBDA(const std::size_t i, double* acc) {
            const int s = sp(i);
            acc[4 * s] += 1.0;
            for (int k = 0; k < 3; ++k)
                acc[4 * s + 1 + k] += vel(i, k);
        });
}

/// Largest |v_i - u| over this rank's particles of species s (0 if it has none).
double max_speed_about(const ExecSpace& space, const VectorView& vel, const SpeciesView& sp, std::size_t n, int s,
                       double u0, double u1, double u2) {
    double m = 0.0;
    Kokkos::parallel_reduce(
        "kinflow::dsmc::max_speed", Kokkos::RangePolicy<ExecSpace>(space, 0, n),
        KOKKOS_LAMBDA(const std::size_t i, double& x) {
            if (sp(i) != s)
                return;
            const double c0 = vel(i, 0) - u0, c1 = vel(i, 1) - u1, c2 = vel(i, 2) - u2;
            const double c = math::sqrt(c0 * c0 + c1 * c1 + c2 * c2);
            if (c > x)
                x = c;
        },
        Kokkos::Max<double>(m));
    return m;
}

/// keys(i) = (32 random bits of particle id(i) at this step) << 32 | i.
void shuffle_keys(const ExecSpace& space, const CounterRng& rng, std::uint64_t n_step, const IdView& id,
                  const Kokkos::View<std::uint64_t*, MemSpace>& keys) {
    Kokkos::parallel_for(
        "kinflow::dsmc::shuffle_keys", Kokkos::RangePolicy<ExecSpace>(space, 0, keys.extent(0)),
        KOKKOS_LAMBDA(const std::size_t i) {
            const auto r = rng.raw(n_step, static_cast<std::uint64_t>(id(i)), 0);
            keys(i) = (static_cast<std::uint64_t>(r.v[0]) << 32) | static_cast<std::uint64_t>(i);
        });
}

/// dest(local index in the low 32 bits of keys(k)) = the rank q with cut(q) <= k < cut(q + 1).
void shuffle_destinations(const ExecSpace& space, const Kokkos::View<std::uint64_t*, MemSpace>& keys,
                          const Kokkos::View<std::int64_t*, MemSpace>& cut, int P, const comm::RankView& dest) {
    Kokkos::parallel_for(
        "kinflow::dsmc::shuffle_dest", Kokkos::RangePolicy<ExecSpace>(space, 0, keys.extent(0)),
        KOKKOS_LAMBDA(const std::size_t k) {
            int q = 0;
            while (q + 1 < P && static_cast<std::int64_t>(k) >= cut(q + 1))
                ++q;
            dest(static_cast<std::size_t>(keys(k) & 0xFFFFFFFFULL)) = q;
        });
}

/// Local particles whose species index lies outside [0, ns). Free functions: nvcc refuses
/// extended device lambdas inside private member functions.
std::int64_t local_species_outside(const ParticleSet& p, int ns) {
    auto sp = p.species;
    std::int64_t bad = 0;
    Kokkos::parallel_reduce(
        "kinflow::dsmc::check_species", Kokkos::RangePolicy<ExecSpace>(0, p.size()),
        KOKKOS_LAMBDA(const std::size_t i, std::int64_t& nb) {
            if (sp(i) < 0 || sp(i) >= ns)
                ++nb;
        },
        Kokkos::Sum<std::int64_t>(bad));
    return bad;
}

/// Local particles of species s.
std::int64_t local_species_count(const ParticleSet& p, int s) {
    auto sp = p.species;
    std::int64_t c = 0;
    Kokkos::parallel_reduce(
        "kinflow::dsmc::count_species", Kokkos::RangePolicy<ExecSpace>(0, p.size()),
        KOKKOS_LAMBDA(const std::size_t i, std::int64_t& x) {
            if (sp(i) == s)
                ++x;
        },
        Kokkos::Sum<std::int64_t>(c));
    return c;
}

} // namespace

DsmcEngine::DsmcEngine(const comm::Communicator& comm, const Params& params, std::uint64_t seed)
    : _comm(comm), _params(params), _seed(seed),
      _dec(comm::BlockDecomposition::make(params.particles, comm.size(), comm.rank())),
      _stepper(detail::make_stepper(comm, params, seed)) {
    // The collision steps pack a local index into 32 bits of their sort words.
    KINFLOW_REQUIRE(_dec.n_local() < (std::int64_t{1} << 31), "dsmc: more than 2^31 particles on one rank; use more ranks");
}

DsmcEngine::~DsmcEngine() = default;

void DsmcEngine::count_species(const ParticleSet& p) {
    const int ns = _params.n_species;
    if (_comm.any(local_species_outside(p, ns) > 0))
        throw Error("dsmc.init_file: species index outside [0, " + std::to_string(ns) + ") (dsmc.species names " +
                    std::to_string(ns) + ")");
    _params.count.assign(static_cast<std::size_t>(ns), 0);
    for (int s = 0; s < ns; ++s)
        _params.count[static_cast<std::size_t>(s)] = _comm.sum(local_species_count(p, s));
}

void DsmcEngine::resume(ParticleSet& p, const EngineState& state) {
    const int ns = _params.n_species;
    KINFLOW_REQUIRE(p.vdim == 3 && p.has_species(), "checkpoint particles are not DSMC particles");
    p.dim = 3;
    p.position = p.velocity;
    p.n_global = _dec.n_global;
    count_species(p);
    const auto& maj = state.get("majorants");
    KINFLOW_REQUIRE(static_cast<int>(maj.size()) == ns * (ns + 1) / 2, "checkpoint: majorants has the wrong size");
    for (int t = 0; t < ns * (ns + 1) / 2; ++t)
        _stepper->set_majorant(t, maj[static_cast<std::size_t>(t)]);
    const auto& counters = state.get_rank("counters");
    KINFLOW_REQUIRE(counters.size() == 2, "checkpoint: counters has the wrong size");
    _collisions = counters[0];
    _attempts = counters[1];
}

EngineState DsmcEngine::state() const {
    const int ns = _params.n_species;
    EngineState s;
    std::vector<double> maj;
    for (int t = 0; t < ns * (ns + 1) / 2; ++t)
        maj.push_back(_stepper->majorant(t));
    s.set("majorants", std::move(maj));
    s.set_rank("counters", {_collisions, _attempts});
    return s;
}

void DsmcEngine::init(ParticleSet& p) {
    const int ns = _params.n_species;
    if (_params.init[0] == Init::File) {
        KINFLOW_REQUIRE(static_cast<std::int64_t>(p.size()) == _dec.n_local(),
                        "dsmc.init_file rows do not match the decomposition");
        if (p.vdim != 3) {
            KINFLOW_REQUIRE(p.dim == 3, "dsmc.init_file has neither 3-component 'velocity' nor 3-component 'position'");
            p.velocity = p.position;
            p.vdim = 3;
        }
        p.dim = 3;
        p.position = p.velocity;
        if (!p.has_species()) {
            KINFLOW_REQUIRE(ns == 1,
                            "dsmc.init_file has no 'species' dataset but dsmc.species names " << ns << " species");
            p.species = SpeciesView("kinflow::dsmc::species", p.size());
            p.with_species = true;
        }
        auto id = p.id;
        const std::int64_t first = _dec.begin;
        Kokkos::parallel_for(
            "kinflow::dsmc::init_file", Kokkos::RangePolicy<ExecSpace>(0, p.size()),
            KOKKOS_LAMBDA(const std::size_t i) { id(i) = first + static_cast<std::int64_t>(i); }); // rows are in id order
        count_species(p);
    } else {
        KINFLOW_REQUIRE(static_cast<int>(_params.count.size()) == ns, "dsmc: particles per species not set");
        p.allocate(static_cast<std::size_t>(_dec.n_local()), 3, 3, true, "kinflow::dsmc");
        p.position = p.velocity; // homogeneous gas: the velocities are the state ("position" in snapshots)
        InitTable tab;
        tab.n_species = ns;
        tab.K = bkw::K_of_time(_params.bkw_t0);
        for (int s = 0; s < ns; ++s) {
            const auto S = static_cast<std::size_t>(s);
            tab.kind[s] = static_cast<int>(_params.init[S]);
            tab.sv[s] = std::sqrt(_params.k_boltzmann * _params.temperature[S] / _params.mass[S]);
            tab.sx[s] = std::sqrt(_params.k_boltzmann * _params.temperature_x[S] / _params.mass[S]);
            tab.sy[s] = std::sqrt(_params.k_boltzmann * _params.temperature_y[S] / _params.mass[S]);
            tab.sz[s] = std::sqrt(_params.k_boltzmann * _params.temperature_z[S] / _params.mass[S]);
            tab.beam[s] = _params.beam_speed[S];
            for (int k = 0; k < 3; ++k)
                tab.u[s][k] = _params.drift[S][static_cast<std::size_t>(k)];
            tab.first[s + 1] = tab.first[s] + _params.count[S];
        }
        KINFLOW_REQUIRE(tab.first[ns] == _dec.n_global, "dsmc: species counts do not add up to particles");
        const CounterRng rng(_seed, RngPurpose::InitVelocity);
        auto vel = p.velocity;
        auto id = p.id;
        auto sp = p.species;
        const std::int64_t first = _dec.begin;
        Kokkos::parallel_for(
            "kinflow::dsmc::init", Kokkos::RangePolicy<ExecSpace>(0, p.size()), KOKKOS_LAMBDA(const std::size_t i) {
                const std::int64_t gid = first + static_cast<std::int64_t>(i);
                int s = 0;
                while (s + 1 < tab.n_species && gid >= tab.first[s + 1])
                    ++s;
                id(i) = gid;
                sp(i) = s;
                double z[8], u[4];
                rng.normal4(0, static_cast<std::uint64_t>(gid), 0, z);
                rng.normal4(0, static_cast<std::uint64_t>(gid), 1, z + 4);
                rng.uniform4(0, static_cast<std::uint64_t>(gid), 2, u);
                double v[3] = {tab.sv[s] * z[0], tab.sv[s] * z[1], tab.sv[s] * z[2]};
                switch (tab.kind[s]) {
                case static_cast<int>(Init::Bimaxwellian): // (tri-)Maxwellian with the axis temperatures
                    v[0] = tab.sx[s] * z[0];
                    v[1] = tab.sy[s] * z[1];
                    v[2] = tab.sz[s] * z[2];
                    break;
                case static_cast<int>(Init::TwoBeams): // species-local index even: +x beam, odd: -x beam
                    v[0] += ((gid - tab.first[s]) % 2 == 0 ? 1.0 : -1.0) * tab.beam[s];
                    break;
                case static_cast<int>(Init::Bkw): {
                    double w[3];
                    bkw::sample(tab.K, u[0], z, w);
                    for (int k = 0; k < 3; ++k)
                        v[k] = tab.sv[s] * w[k];
                    break;
                }
                default:
                    break;
                }
                for (int k = 0; k < 3; ++k)
                    vel(i, k) = tab.u[s][k] + v[k];
            });
    }
    p.n_global = _dec.n_global;
    _collisions = _attempts = 0;

    // Majorant bounds: |v_i - v_j| <= |v_i - u_s| + |u_s - u_r| + |u_r - v_j|.
    std::vector<double> max_speed;
    std::vector<std::array<double, 3>> mean;
    speed_bounds(p, max_speed, mean);
    std::vector<double> g_bound(static_cast<std::size_t>(ns * (ns + 1) / 2));
    for (int s = 0; s < ns; ++s)
        for (int r = s; r < ns; ++r) {
            const auto S = static_cast<std::size_t>(s), R = static_cast<std::size_t>(r);
            double du2 = 0.0;
            for (std::size_t k = 0; k < 3; ++k)
                du2 += (mean[S][k] - mean[R][k]) * (mean[S][k] - mean[R][k]);
            g_bound[static_cast<std::size_t>(detail::pair_index(s, r, ns))] =
                max_speed[S] + max_speed[R] + std::sqrt(du2);
        }
    _stepper->prepare(g_bound);
}

void DsmcEngine::speed_bounds(const ParticleSet& p, std::vector<double>& max_speed,
                              std::vector<std::array<double, 3>>& mean) const {
    const int ns = _params.n_species;
    auto vel = p.velocity;
    auto sp = p.species;
    const auto s1 = species_velocity_sums(_comm, _dec, vel, sp);
    max_speed.assign(static_cast<std::size_t>(ns), 0.0);
    mean.assign(static_cast<std::size_t>(ns), {0.0, 0.0, 0.0});
    for (int s = 0; s < ns; ++s) {
        const double n = s1[static_cast<std::size_t>(4 * s)];
        const double u0 = n > 0 ? s1[static_cast<std::size_t>(4 * s + 1)] / n : 0.0;
        const double u1 = n > 0 ? s1[static_cast<std::size_t>(4 * s + 2)] / n : 0.0;
        const double u2 = n > 0 ? s1[static_cast<std::size_t>(4 * s + 3)] / n : 0.0;
        mean[static_cast<std::size_t>(s)] = {u0, u1, u2};
        const double m = max_speed_about(ExecSpace(), vel, sp, p.size(), s, u0, u1, u2);
        max_speed[static_cast<std::size_t>(s)] = _comm.max(std::max(m, 0.0));
    }
}

void DsmcEngine::step(ParticleSet& p, std::int64_t step, double dt) {
    // communicate (every shuffle_every steps) → collide
    redistribute(p, step);
    collide(p, step, dt);
}

bool DsmcEngine::redistribute(ParticleSet& p, std::int64_t step) const {
    if (_comm.size() > 1 && step % _params.shuffle_every == 0) {
        shuffle(p, step);
        return true;
    }
    return false;
}

void DsmcEngine::collide(ParticleSet& p, std::int64_t step, double dt) {
    const auto c = _stepper->collide(p, step, dt);
    if (c.max_probability > 1.0) {
        throw Error("run.dt = " + format_number(dt) +
                    " is too large for scheme = nanbu_babovsky: a pair collision probability " +
                    "n sigma_T g dt reached " + format_number(c.max_probability) + " > 1 at step " +
                    std::to_string(step) + " (needs dt < " + format_number(dt / c.max_probability) +
                    "; or use scheme = ntc)");
    }
    _collisions += c.collisions;
    _attempts += c.attempts;
}

KernelScore DsmcEngine::collide_adjoint(const ParticleSet& p, std::int64_t step, double dt, const VectorView& gamma,
                                        const VectorView& beta, const KernelTangent& kernel) {
    return _stepper->adjoint(p, step, dt, gamma, beta, kernel);
}

std::vector<double> DsmcEngine::majorants() const {
    const int ns = _params.n_species;
    std::vector<double> m;
    for (int t = 0; t < ns * (ns + 1) / 2; ++t)
        m.push_back(_stepper->majorant(t));
    return m;
}

void DsmcEngine::set_majorants(const std::vector<double>& m) {
    for (std::size_t t = 0; t < m.size(); ++t)
        _stepper->set_majorant(static_cast<int>(t), m[t]);
}

void DsmcEngine::shuffle(ParticleSet& p, std::int64_t step) const {
    // Random global redistribution that keeps every rank at its block size: each rank orders its
    // particles by a random key; the particles of all ranks are interleaved (the k-th of every
    // rank, rank by rank, then the (k+1)-th, ...) and the interleaved sequence is cut into the
    // BlockDecomposition sizes. Rank q thus receives a random ~1/P of every rank's particles.
    const int P = _comm.size();
    const std::size_t n = p.size();
    const auto counts = _comm.allgatherv(std::vector<std::int64_t>{static_cast<std::int64_t>(n)});
    const std::int64_t me = _comm.rank();
    auto slot = [&](std::int64_t k) { // interleaved position of this rank's k-th particle
        std::int64_t x = 0;
        for (int q = 0; q < P; ++q)
            x += std::min(counts[static_cast<std::size_t>(q)], k) +
                 (q < me && counts[static_cast<std::size_t>(q)] > k ? 1 : 0);
        return x;
    };
    // cut[q] = first k whose slot lies in rank q's block or beyond (slot is increasing in k).
    Kokkos::View<std::int64_t*, MemSpace> cut("kinflow::dsmc::shuffle_cut", static_cast<std::size_t>(P) + 1);
    auto hcut = Kokkos::create_mirror_view(cut);
    for (int q = 0; q <= P; ++q) {
        const std::int64_t b = q < P ? comm::BlockDecomposition::make(_dec.n_global, P, q).begin : _dec.n_global;
        std::int64_t lo = 0, hi = static_cast<std::int64_t>(n);
        while (lo < hi) {
            const std::int64_t mid = lo + (hi - lo) / 2;
            if (slot(mid) < b)
                lo = mid + 1;
            else
                hi = mid;
        }
        hcut(q) = lo;
    }
    hcut(0) = 0;
    hcut(P) = static_cast<std::int64_t>(n);
    Kokkos::deep_copy(cut, hcut);

    // Every entry of keys and dest is written below (the low words of the keys are 0..n-1).
    if (_shuffle_keys.extent(0) != n) {
        _shuffle_keys = Kokkos::View<std::uint64_t*, MemSpace>(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::shuffle_keys"), n);
        _shuffle_dest =
            comm::RankView(Kokkos::view_alloc(Kokkos::WithoutInitializing, "kinflow::dsmc::shuffle_dest"), n);
    }
    const auto keys = _shuffle_keys;
    const CounterRng rng(_seed, RngPurpose::Shuffle);
    const auto n_step = static_cast<std::uint64_t>(step);
    shuffle_keys(ExecSpace(), rng, n_step, p.id, keys);
    Kokkos::sort(keys);
    shuffle_destinations(ExecSpace(), keys, cut, P, _shuffle_dest);
    comm::migrate(_comm, p, _shuffle_dest);
    KINFLOW_REQUIRE(static_cast<std::int64_t>(p.size()) == _dec.n_local(),
                    "dsmc: shuffle left " << p.size() << " particles, expected " << _dec.n_local());
}

void DsmcEngine::to_blocks(ParticleSet& p) const {
    if (_comm.size() > 1)
        comm::to_blocks(_comm, p); // one rank: the order never changes
}

std::int64_t DsmcEngine::collisions() const { return _comm.sum(_collisions); }
std::int64_t DsmcEngine::attempts() const { return _comm.sum(_attempts); }

Diagnostics DsmcEngine::diagnostics(const ParticleSet& p) const {
    KINFLOW_REQUIRE(static_cast<std::int64_t>(p.size()) == _dec.n_local(),
                    "dsmc: diagnostics need the block sizes (call to_blocks first)");
    const int ns = _params.n_species;
    Masses ms;
    for (int s = 0; s < ns; ++s)
        ms.m[s] = _params.mass[static_cast<std::size_t>(s)];
    auto vel = p.velocity;
    auto sp = p.species;
    // Pass 1: counts, means, total momentum and energy. Pass 2: central moments (accurate for
    // drifting beams).
    const auto s1 = comm::ordered_sum<kSums1>(
        _comm, _dec, KOKKOS_LAMBDA(const std::size_t i, double* acc) {
            const int s = sp(i);
            const double v[3] = {vel(i, 0), vel(i, 1), vel(i, 2)};
            acc[4 * s] += 1.0;
            for (int k = 0; k < 3; ++k) {
                acc[4 * s + 1 + k] += v[k];
                acc[4 * kMaxSpecies + k] += ms.m[s] * v[k];
            }
            acc[4 * kMaxSpecies + 3] += 0.5 * ms.m[s] * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        });
    Means mu;
    std::vector<double> count(static_cast<std::size_t>(ns));
    for (int s = 0; s < ns; ++s) {
        count[static_cast<std::size_t>(s)] = s1[static_cast<std::size_t>(4 * s)];
        for (int k = 0; k < 3; ++k)
            mu.u[s][k] = count[static_cast<std::size_t>(s)] > 0
                             ? s1[static_cast<std::size_t>(4 * s + 1 + k)] / count[static_cast<std::size_t>(s)]
                             : 0.0;
    }
    const auto s2 = comm::ordered_sum<kSums2>(
        _comm, _dec, KOKKOS_LAMBDA(const std::size_t i, double* acc) {
            const int s = sp(i);
            double c2 = 0.0;
            for (int k = 0; k < 3; ++k) {
                const double c = vel(i, k) - mu.u[s][k];
                acc[5 * s + k] += c * c;
                c2 += c * c;
            }
            acc[5 * s + 3] += c2 * c2;
            acc[5 * s + 4] += c2 * c2 * c2;
        });

    const double kB = _params.k_boltzmann;
    Diagnostics out;
    double N = 0, m4 = 0, m6 = 0, mass_total = 0, U[3] = {0, 0, 0}, thermal = 0;
    for (int s = 0; s < ns; ++s) {
        const auto S = static_cast<std::size_t>(s);
        const double n = count[S], m = _params.mass[S];
        const std::string& name = _params.species[S];
        double Tk[3];
        for (int k = 0; k < 3; ++k)
            Tk[k] = n > 0 ? m * s2[5 * S + static_cast<std::size_t>(k)] / (kB * n) : 0.0;
        const double T = (Tk[0] + Tk[1] + Tk[2]) / 3.0;
        const double th = kB * T / m; // <|c|^2>/3
        const double m4s = n > 0 && th > 0 ? s2[5 * S + 3] / n / (th * th) : 0.0;
        const double m6s = n > 0 && th > 0 ? s2[5 * S + 4] / n / (th * th * th) : 0.0;
        out.emplace_back("temperature_" + name, T);
        for (int k = 0; k < 3; ++k)
            out.emplace_back("temperature_" + name + "_" + "xyz"[k], Tk[k]);
        for (int k = 0; k < 3; ++k)
            out.emplace_back("mean_velocity_" + name + "_" + "xyz"[k], mu.u[s][k]);
        out.emplace_back("m4_" + name, m4s);
        out.emplace_back("m6_" + name, m6s);
        N += n;
        m4 += n * m4s;
        m6 += n * m6s;
        mass_total += n * m;
        for (int k = 0; k < 3; ++k)
            U[k] += n * m * mu.u[s][k];
        thermal += m * (s2[5 * S] + s2[5 * S + 1] + s2[5 * S + 2]);
    }
    for (double& x : U)
        x /= mass_total;
    for (int s = 0; s < ns; ++s) { // kinetic energy of the species drifts relative to U
        const double n = count[static_cast<std::size_t>(s)], m = _params.mass[static_cast<std::size_t>(s)];
        for (int k = 0; k < 3; ++k)
            thermal += n * m * (mu.u[s][k] - U[k]) * (mu.u[s][k] - U[k]);
    }
    out.emplace_back("temperature", thermal / (3.0 * kB * N));
    out.emplace_back("m4", m4 / N);
    out.emplace_back("m6", m6 / N);
    out.emplace_back("collisions", static_cast<double>(collisions()));
    out.emplace_back("attempts", static_cast<double>(attempts()));
    for (int k = 0; k < 3; ++k)
        out.emplace_back(std::string("momentum_") + "xyz"[k], s1[4 * kMaxSpecies + static_cast<std::size_t>(k)]);
    out.emplace_back("energy", s1[4 * kMaxSpecies + 3]);
    for (const auto& x : out) {
        if (!std::isfinite(x.second))
            throw Error("dsmc: diagnostic " + x.first + " is not finite");
    }
    return out;
}

} // namespace kinflow::dsmc
