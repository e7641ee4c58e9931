#pragma once
// DSMC for the spatially homogeneous Boltzmann equation with gas mixtures: Nanbu–Babovsky
// (Babovsky, Eur. J. Mech. B 8, 41 (1989)) and Bird's no-time-counter scheme (Bird, Molecular
// Gas Dynamics and the Direct Simulation of Gas Flows, 1994, ch. 11), Maxwell / hard-sphere /
// VHS / VSS collision kernels. Each MPI rank holds a sub-ensemble of the one gas; sub-ensembles
// are redistributed randomly over the ranks every shuffle_every steps.
//
// Normalisation. The gas has total number density n (dsmc.number_density), species densities
// n_s = n N_s/N. A sub-ensemble of N particles (one rank) stands for the gas, so a pair (i, j)
// collides at rate n sigma_T g_ij / (N - 1) — each particle then collides at the physical
// frequency nu_i = sum_s n_s <sigma_T g> (Bird's F_N / V_c = n / (N - 1)). Nanbu–Babovsky pairs
// every particle with one random partner, so a pair collides with probability n sigma_T g dt;
// NTC draws 1/2 N n (sigma_T g)_max dt candidates. Normalized units: k_B = 1 (temperature is
// m <|c|^2>/3); the Maxwell kernel has n sigma_T g = collision_rate for every pair. SI units:
// k_B = 1.380649e-23 J/K, kg, K, m^-3, m/s, s.
#include <array>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/diagnostics.hpp"
#include "kinflow/core/engine_state.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/engines/dsmc/collision.hpp"
#include "kinflow/engines/dsmc/options.hpp"

namespace kinflow::dsmc {

namespace detail {
/// What one collision step did on this rank.
struct StepCounts {
    std::int64_t collisions = 0;
    std::int64_t attempts = 0;    ///< pairs considered (Nanbu–Babovsky) or candidates (NTC)
    double max_probability = 0.0; ///< Nanbu–Babovsky: largest n sigma_T g dt met (global)
};
/// One instantiation per (scheme, cross-section, scattering law); chosen by make_stepper().
class StepperBase {
  public:
    virtual ~StepperBase() = default;
    /// `g_bound[t]` bounds the relative speed of species pair t (pair_index) in the initial
    /// state: sets the NTC majorants (sigma_T g)_max.
    virtual void prepare(const std::vector<double>& g_bound) = 0;
    /// Collide the local sub-ensemble once (collective only through small reductions).
    virtual StepCounts collide(ParticleSet& p, std::int64_t step, double dt) = 0;
    /// sigma_T g of species pair (s, r) at relative speed g (host; for checks and tests).
    virtual double sigma_g(int s, int r, double g) const = 0;
    /// Current NTC majorant of pair t (0 for Nanbu–Babovsky); set_majorant replaces it (resume).
    virtual double majorant(int t) const = 0;
    virtual void set_majorant(int t, double value) = 0;
    /// Adjoint of collide() (discretise-then-optimise; Caflisch, Silantyev & Yang, JCP 439, 110404
    /// (2021)). `p` holds the velocities step `step` started with, in the layout it had (restored
    /// from the forward run; NTC majorants set as they were); the step's collisions are replayed
    /// from the same counter-based draws and the events taken back in reverse order: `gamma` =
    /// dJ/dv after the step becomes dJ/dv before it (transposed collision Jacobians), and `beta`,
    /// the gradient of L = sum of the log-probabilities of the acceptance decisions, likewise plus
    /// the decisions' own gradients (the score-function term of Yang, Silantyev & Caflisch, JCP 488,
    /// 112247 (2023); zero for Maxwell molecules, whose acceptance does not depend on velocities).
    /// Returns, for the collision-kernel parameters of `kernel`, the explicit derivative of L at
    /// fixed velocities (this rank's decisions): the kernel-parameter score of the same paper.
    virtual KernelScore adjoint(const ParticleSet& p, std::int64_t step, double dt, const VectorView& gamma,
                                const VectorView& beta, const KernelTangent& kernel) = 0;
};
std::unique_ptr<StepperBase> make_stepper(const comm::Communicator& comm, const Params& params, std::uint64_t seed);
/// Index of the unordered species pair (s, r), s, r < n: 0 .. n(n+1)/2 - 1.
inline int pair_index(int s, int r, int n) {
    if (s > r)
        std::swap(s, r);
    return s * n - s * (s - 1) / 2 + (r - s);
}
} // namespace detail

class DsmcEngine {
  public:
    DsmcEngine(const comm::Communicator& comm, const Params& params, std::uint64_t seed);
    ~DsmcEngine();

    /// Global particle count and the initial block of ids of this rank.
    const comm::BlockDecomposition& decomposition() const { return _dec; }
    const Params& params() const { return _params; }

    /// Set up initial velocities. For init = file, `p` must already hold this rank's rows
    /// [decomposition().begin, end) read from the file (construct the engine with
    /// params.particles = the file's count); otherwise it is allocated here. Afterwards `p` has
    /// dim = vdim = 3, position aliasing velocity, species and ids (species s owns a contiguous
    /// id range). Throws OptionError (key run.dt) when Nanbu–Babovsky's probability can exceed 1.
    void init(ParticleSet& p);
    /// Continue from a checkpoint written on the same rank count: `p` holds exactly the rows
    /// this rank held (sub-ensembles and their order are part of the state), `state` what state()
    /// returned (NTC majorants, this rank's collision and attempt counters).
    void resume(ParticleSet& p, const EngineState& state);
    EngineState state() const;
    /// Advance from step `step` to step + 1: redistribute over the ranks when due, then collide.
    void step(ParticleSet& p, std::int64_t step, double dt);
    /// The two halves of step() (the adjoint records the state between them): redistribute when
    /// step `step` is due to (collective; returns whether it did), then collide.
    bool redistribute(ParticleSet& p, std::int64_t step) const;
    void collide(ParticleSet& p, std::int64_t step, double dt);
    /// Adjoint of collide() at step `step` from the velocities `p` held before it (see
    /// detail::StepperBase::adjoint); `gamma`, `beta` are [p.size(), 3] in p's order. Returns this
    /// rank's kernel-parameter score of the step (zero when kernel.n = 0).
    KernelScore collide_adjoint(const ParticleSet& p, std::int64_t step, double dt, const VectorView& gamma,
                                const VectorView& beta, const KernelTangent& kernel = KernelTangent{});
    /// NTC majorants by species pair (empty entries 0 for Nanbu–Babovsky); set_majorants restores them.
    std::vector<double> majorants() const;
    void set_majorants(const std::vector<double>& m);
    /// Bring the particles into block order (every rank its id block, sorted by id) — before
    /// writing a snapshot and for bit-reproducible diagnostics (collective).
    void to_blocks(ParticleSet& p) const;
    /// Per species s (by name): temperature_s and temperature_s_{x,y,z} (m <(v_k - u_k)^2>/k_B),
    /// mean_velocity_s_{x,y,z}, m4_s and m6_s (<|c|^4> and <|c|^6> of c = (v - u_s)/sqrt(k_B T_s/m_s):
    /// 15 and 105 for a Maxwellian, the BKW m4, m6 for the BKW state); temperature (mixture, about
    /// the mass-averaged velocity), m4 and m6 (number-weighted over species), collisions and
    /// attempts since init, momentum_{x,y,z} = sum m v and energy = sum m|v|^2/2 over all
    /// particles. Collective; bit-reproducible in block order (to_blocks), otherwise equal to
    /// round-off.
    Diagnostics diagnostics(const ParticleSet& p) const;

    /// Collisions and attempts since init, over all ranks (collective).
    std::int64_t collisions() const;
    std::int64_t attempts() const;
    /// sigma_T g of species pair (s, r) at relative speed g, and the current NTC majorant.
    double sigma_g(int s, int r, double g) const { return _stepper->sigma_g(s, r, g); }
    double majorant(int s, int r) const { return _stepper->majorant(detail::pair_index(s, r, _params.n_species)); }

  private:
    void shuffle(ParticleSet& p, std::int64_t step) const;
    /// Global particle count per species into _params.count; throws on a species index outside range.
    void count_species(const ParticleSet& p);
    /// Per species: global mean velocity and the largest |v - u_s| (for majorant bounds).
    void speed_bounds(const ParticleSet& p, std::vector<double>& max_speed,
                      std::vector<std::array<double, 3>>& mean) const;

    comm::Communicator _comm;
    Params _params;
    std::uint64_t _seed;
    comm::BlockDecomposition _dec;
    std::unique_ptr<detail::StepperBase> _stepper;
    std::int64_t _collisions = 0, _attempts = 0; ///< this rank's, since init
    /// shuffle()'s sort keys and destinations, kept between shuffles: fresh zeroed arrays every
    /// shuffle cost a page fault per page and a memset, a large share of a shuffle on some hosts.
    mutable Kokkos::View<std::uint64_t*, MemSpace> _shuffle_keys;
    mutable Kokkos::View<int*, Kokkos::LayoutRight, MemSpace> _shuffle_dest; ///< a comm::RankView
};

} // namespace kinflow::dsmc
