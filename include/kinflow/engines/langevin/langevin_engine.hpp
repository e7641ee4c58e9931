#pragma once
// Langevin particles for Fokker–Planck and McKean–Vlasov problems: overdamped Euler–Maruyama and
// underdamped BAOAB (Leimkuhler & Matthews, AMRX 2013), external potentials and a harmonic
// mean-field interaction.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/diagnostics.hpp"
#include "kinflow/core/engine_state.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/engines/langevin/options.hpp"

namespace kinflow::langevin {

namespace detail {
/// One instantiation per (dimension, potential, dynamics); chosen by make_stepper().
using Vec3 = std::array<double, 3>;
using MeanFn = std::function<Vec3(const ParticleSet&)>;
class StepperBase {
  public:
    virtual ~StepperBase() = default;
    /// Advance one step. `mean` is the global mean of the current positions (used only with a
    /// mean-field interaction; `mean_fn` recomputes it mid-step). Returns true and sets
    /// `mean_out` when the mean of the new positions was computed on the way.
    virtual bool step(ParticleSet& p, std::int64_t step, double dt, const Vec3& mean, const MeanFn& mean_fn,
                      Vec3& mean_out) = 0;
};
std::unique_ptr<StepperBase> make_stepper(const Params& params, std::uint64_t seed);
} // namespace detail

class LangevinEngine {
  public:
    LangevinEngine(const comm::Communicator& comm, const Params& params, std::uint64_t seed);
    ~LangevinEngine();

    /// Global particle count (for init = file: set params.particles to the file's count).
    const comm::BlockDecomposition& decomposition() const { return _dec; }

    /// Set up initial conditions. For init = file, `p` must already hold this rank's rows
    /// [decomposition().begin, end) read from the file; otherwise it is allocated here.
    void init(ParticleSet& p);
    /// Continue from a checkpoint: `p` holds this rank's block of the checkpointed particles
    /// (rows [decomposition().begin, end), any rank count: the engine is rank-count-independent).
    void resume(ParticleSet& p, const EngineState& state);
    /// Beyond the particles the engine has no state (the mean is recomputed bit-identically).
    EngineState state() const { return {}; }
    /// Advance from step `step` to step + 1.
    void step(ParticleSet& p, std::int64_t step, double dt);
    /// time-independent diagnostics: mean_k, variance_k, and for underdamped
    /// velocity_variance_k and kinetic_energy (mean per particle, unit mass).
    Diagnostics diagnostics(const ParticleSet& p) const;

    /// Global mean position (reproducible sum, identical for any rank count).
    std::array<double, 3> mean(const ParticleSet& p) const;

  private:
    comm::Communicator _comm;
    Params _params;
    std::uint64_t _seed;
    comm::BlockDecomposition _dec;
    std::unique_ptr<detail::StepperBase> _stepper;
    std::array<double, 3> _mean{}; ///< mean of the current positions (valid when _mean_valid)
    bool _mean_valid = false;
};

} // namespace kinflow::langevin
