#pragma once
// Keller–Segel chemotaxis, parabolic–elliptic, by regularized (blob) interacting particles:
//   rho_t + div(rho v) = mu lap rho - chi div(rho grad c),  -lap c = rho,  in 2D and 3D,
//   dX_i = [chi (M/N) sum_{j != i} grad Phi_delta(X_i - X_j) + v(X_i)] dt + sqrt(2 mu) dW_i,
// Phi the Newtonian potential (grad Phi_delta(x) = -x/(2 pi (|x|^2+delta^2)) in 2D,
// -x/(4 pi (|x|^2+delta^2)^{3/2}) in 3D: attraction towards X_j), Euler–Maruyama in time.
// The interaction is a direct all-pairs sum (ks.solver = direct; each particle's sum runs over j in
// global-id order, so every result is bit-identical for any number of ranks and threads) or a
// particle–mesh approximation of it (ks.solver = mesh, detail/mesh.hpp; agreement across rank
// counts to round-off). ks.model = parabolic_parabolic replaces the elliptic c by the SIPF
// particle–field scheme on a periodic box (detail/field.hpp; bit-identical for any rank count).
#include <array>
#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/diagnostics.hpp"
#include "kinflow/core/engine_state.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/engines/ks/detail/field.hpp"
#include "kinflow/engines/ks/detail/mesh.hpp"
#include "kinflow/engines/ks/options.hpp"

namespace kinflow::ks {

/// What KsEngine::step did.
struct StepResult {
    bool advanced = true;        ///< false: the collapse criterion held, the particles were not moved
    double dt = 0.0;             ///< the time step taken (run.dt, or less with adaptive_dt; 0 if not advanced)
    double core_fraction = -1.0; ///< mass fraction within delta of the densest particle if checked this step, else -1
};

namespace detail {

/// [components, n] arrays (one contiguous row per coordinate: the pair loop reads them unit-stride).
using SoaView = Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>;

/// Scratch of one engine, allocated once by init().
struct Workspace {
    SoaView target;      ///< [dim, n_pad] local positions, padded to whole lane blocks
    SoaView source;      ///< [dim, n_src] positions of the source block being summed over
    SoaView sums;        ///< [dim, n_pad] sum_j (X_i - X_j) g(|X_i - X_j|), g = 1/(r^2+d^2) or (r^2+d^2)^{-3/2}
    ScalarView virial;   ///< [n_pad] sum_j r^2 g(r)              (extras)
    ScalarView count;    ///< [n_pad] #{j : |X_i - X_j| < delta}, i included (extras)
    ScalarView nearest2; ///< [n_pad] min_{j != i} |X_i - X_j|^2  (extras)
    SoaView drift;       ///< [dim, n_pad] total drift (interaction + flow)
    bool extras = false; ///< whether the extras hold the current state
};

/// One instantiation per (dimension, flow); chosen by make_stepper() (the engine's factory).
class StepperBase {
  public:
    virtual ~StepperBase() = default;
    /// Copy the local positions into ws.target and clear the sums (and extras).
    virtual void load_targets(const ParticleSet& p, Workspace& ws, bool extras) const = 0;
    /// Add the pairs with ws.source[:, 0..n) (global ids first, first + 1, ...) to the sums.
    virtual void accumulate(Workspace& ws, std::int64_t n, std::int64_t first, bool extras) const = 0;
    /// The interaction coefficient of the pair sums: a_i = coef S_i, coef = -chi (M/N) c_d.
    virtual double pair_coef() const = 0;
    /// drift = coef * sums + v(X); returns the local max |coef * sums| (+infinity if any drift is
    /// not finite).
    virtual double finish_drift(const ParticleSet& p, Workspace& ws, double coef) const = 0;
    /// Euler–Maruyama: X += dt drift + sqrt(2 mu dt) Z, Z from the counter-based RNG (step, id).
    virtual void advance(ParticleSet& p, const Workspace& ws, std::int64_t step, double dt) const = 0;
    /// Wrap positions into the periodic box [-L/2, L/2)^dim.
    virtual void wrap(ParticleSet& p, double box) const = 0;
    /// Reproducible global sums: [0] particles with finite positions, [1..3] sum X_k, [4] sum |X|^2,
    /// [5] sum |drift|^2, [6] sum X . v(X), [7] sum of the virial extras, [8] sum X . drift.
    virtual std::array<double, 9> sums(const comm::Communicator& comm, const comm::BlockDecomposition& dec,
                                       const ParticleSet& p, const Workspace& ws) const = 0;
};
/// `target_first` is the global id of this rank's first particle.
std::unique_ptr<StepperBase> make_stepper(const Params& params, std::uint64_t seed, std::int64_t target_first);
/// Targets per work item of the pair sum (local arrays are padded to a multiple of it).
int lanes();

} // namespace detail

class KsEngine {
  public:
    KsEngine(const comm::Communicator& comm, const Params& params, std::uint64_t seed);
    ~KsEngine();

    /// Global particle count and this rank's ids (for init = file: set params.particles to the file's count).
    const comm::BlockDecomposition& decomposition() const { return _dec; }
    const Params& params() const { return _params; }

    /// Set up initial conditions. For init = file, `p` must already hold this rank's rows
    /// [decomposition().begin, end) read from the file; otherwise it is allocated here.
    void init(ParticleSet& p);
    /// Continue from a checkpoint: `p` holds this rank's block of the checkpointed particles (any
    /// rank count), `state` what state() returned (the committed field, the last step size).
    void resume(ParticleSet& p, const EngineState& state);
    /// The engine's state beyond the particles: last_dt, and field_modes (re, im pairs) for
    /// model = parabolic_parabolic. The mesh solver's kernel caches are rebuilt.
    EngineState state() const;
    /// Advance from step `step` with time step `dt` (run.dt; smaller with adaptive_dt). Every
    /// blowup_check_every steps the collapse criterion is evaluated on the current state first;
    /// when it holds the particles stay where they are and the result says so.
    StepResult step(ParticleSet& p, std::int64_t step, double dt);
    /// Diagnostics of the current state (one all-pairs pass), identical on every rank:
    /// mass; com_k (centre of mass); second_moment m2 = (M/N) sum |X_i|^2; virial_rate (the O(dt)
    /// coefficient of the discrete virial identity, VERIFICATION.md, plus 2 (M/N) sum X.v with a
    /// flow); virial_increment = E[m2 after the next step - m2 | now] for the step the engine would
    /// take with run.dt = `dt`; max_drift = max_i |interaction drift|; dt_next (that step);
    /// core_fraction = mass fraction within delta of the densest particle; max_density = its mass
    /// over the delta-ball volume; min_pair_distance (+inf for one particle).
    Diagnostics diagnostics(const ParticleSet& p, double dt);
    /// The drift of the current positions, [n_local, dim] (computed with or without the extras).
    VectorView drift(const ParticleSet& p, bool extras = false);
    /// The step the engine takes with run.dt = dt when the largest interaction drift is max_drift.
    double step_size(double max_drift, double dt) const;

    /// solver = mesh: the grid of the last evaluation (nullptr otherwise).
    const detail::MeshInfo* mesh_info() const { return _mesh ? &_mesh->info() : nullptr; }
    /// model = parabolic_parabolic: the committed Fourier modes of c, (modes+1)^dim in row-major
    /// order of (j_0 + modes/2, ...) (empty otherwise); set_field_modes replaces them.
    std::vector<std::complex<double>> field_modes() const;
    void set_field_modes(const std::vector<std::complex<double>>& modes);
    /// model = parabolic_parabolic: rho_hat of the last evaluation (same order).
    std::vector<std::complex<double>> field_rho_hat() const;

  private:
    /// Interaction pass over the current positions (all pairs, mesh or field; with the extras the
    /// delta-neighbour counts too); returns the global max |interaction drift|. `dt` is the step the
    /// particle–field update uses (0: the committed field).
    double evaluate(const ParticleSet& p, bool extras, double dt);
    /// This rank's positions as SoA rows [dim, n_local] on the host (MPI buffers are host-staged).
    std::vector<double> local_positions(const ParticleSet& p) const;
    /// Every position as [dim, N] SoA rows in global-id order (allgather).
    std::vector<double> gather_positions(const ParticleSet& p) const;
    void allocate(std::size_t n_local);

    comm::Communicator _comm;
    Params _params;
    std::uint64_t _seed;
    comm::BlockDecomposition _dec;
    std::unique_ptr<detail::StepperBase> _stepper;
    std::unique_ptr<detail::MeshSolverBase> _mesh;   ///< solver = mesh
    std::unique_ptr<detail::FieldSolverBase> _field; ///< model = parabolic_parabolic
    detail::Workspace _ws;
    double _last_dt = 0.0; ///< the last step taken (the field's dt for drift())
};

} // namespace kinflow::ks
