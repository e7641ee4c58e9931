#pragma once
// Adjoint DSMC: gradients of an expected DSMC objective J = E[(1/N) sum_i phi(v_i(T))] with respect
// to parameters of the initial state, "discretise then optimise" (Caflisch, Silantyev & Yang,
// "Adjoint DSMC for nonlinear Boltzmann equation constrained optimization", J. Comput. Phys. 439,
// 110404 (2021), Maxwell molecules; Yang, Silantyev & Caflisch, J. Comput. Phys. 488, 112247 (2023),
// general collision kernels). Keys of the [adjoint] section (names are a contract).
//
// One replica: a forward DSMC run (DsmcEngine with the replica's seed) records the velocities every
// step started with (state memory: 3 doubles per particle-step, plus ids after each shuffle);
// the adjoint variables gamma_i = dJ/dv_i start at gamma_i(T) = (1/N) grad phi(v_i(T)) and are
// carried back step by step (DsmcEngine::collide_adjoint replays each step's collisions from the
// counter-based draws and applies the transposed collision Jacobians in reverse order); through a
// redistribution over ranks they travel back with their particles. Then
//   dJ/dtheta = sum_i gamma_i(0) . dv_i(0)/dtheta                                 (pathwise)
//             + (J - b) sum_i beta_i(0) . dv_i(0)/dtheta                          (score)
// where beta is the adjoint of L = sum of the log-probabilities of all acceptance decisions (the
// score-function term of the 2023 paper; zero for Maxwell molecules) and b the mean J of the other
// replicas (a leave-one-out baseline: keeps the estimate unbiased and its variance small).
// dv_i(0)/dtheta is exact for every parameter (no score terms at t = 0): temperatures scale the
// thermal velocities, and bkw_K0 uses the implicit reparameterisation of the BKW speed law
// (Figurnov, Mohamed & Mnih, NeurIPS 2018): with x = |c|/sqrt(K) (c = thermal velocity at unit
// temperature), the speed CDF F_K(x) = A F_3(x) + (1 - A) F_5(x) (chi_3, chi_5; A = (5K-3)/(2K))
// gives dc/dK = c/(2K) [1 - 2/((5K - 3) + (1 - K) x^2)].
//
// Collision-kernel parameters (omega, d_ref of hard_sphere/vhs; collision_rate of Maxwell molecules
// under Nanbu–Babovsky) leave the initial state and the collision rule alone and act only through
// the acceptance probabilities P = n sigma_T g dt (Nanbu–Babovsky) or sigma_T g/(sigma_T g)_max
// (NTC): dJ/dtheta = E[(J - b) dL/dtheta] with dL/dtheta the explicit derivative of the decisions'
// log-probabilities at fixed velocities (Yang, Silantyev & Caflisch 2023; KernelTangent in
// collision.hpp). The NTC majorants are held fixed (they set the discrete number of candidates; the
// expected collision count does not depend on them): a finite-difference check holds them fixed too.
#include <cstdint>
#include <string>
#include <vector>

#include <boost/program_options/options_description.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/engines/dsmc/options.hpp"

namespace kinflow::dsmc {

struct AdjointOptions {
    std::string objective;  ///< empty: no adjoint run
    std::string parameters = "temperature";
    std::int64_t replicas = 8;
};

enum class Objective { Moment, Component4, TemperatureX, EnergySpecies };
enum class Parameter { Temperature, TemperatureX, BkwK0, BkwT0, Omega, DRef, CollisionRate };
/// Whether `q` is a collision-kernel parameter (score term only, no initial tangent).
inline bool is_kernel_parameter(Parameter q) {
    return q == Parameter::Omega || q == Parameter::DRef || q == Parameter::CollisionRate;
}

/// AdjointOptions checked against the [dsmc] parameters.
struct AdjointParams {
    Objective objective = Objective::Moment;
    double k = 4.0;   ///< moment:k exponent
    int species = 0;  ///< energy_species:s
    std::vector<Parameter> parameters;
    std::vector<std::string> names; ///< parameter names as in the deck
    std::int64_t replicas = 8;
    bool score = false;  ///< velocity-dependent acceptance: the score term (needs replicas >= 2)
    bool kernel = false; ///< a collision-kernel parameter is listed: its score term (needs replicas >= 2)
};

void describe(boost::program_options::options_description& d, AdjointOptions& o);
/// Check every [adjoint] key against the engine's parameters; throws OptionError naming the key
/// (unsupported objective, parameter, kernel or init combination).
AdjointParams validate(const AdjointOptions& o, const Params& p);

/// One forward + backward pair.
struct ReplicaResult {
    double J = 0.0;
    std::vector<double> pathwise; ///< per parameter: sum_i gamma_i(0) . dv_i(0)/dtheta
    std::vector<double> score;    ///< per parameter: sum_i beta_i(0) . dv_i(0)/dtheta; kernel parameters: dL/dtheta
    std::vector<double> majorants; ///< NTC majorants after init (empty entries 0 for Nanbu–Babovsky)
    double forward_seconds = 0.0, backward_seconds = 0.0;
};
/// Run replica `replica` (seed + replica) over `steps` steps of `dt` (collective). A non-empty
/// `majorants` replaces the NTC majorants after init (a finite difference in a kernel parameter
/// holds them fixed, as the adjoint does).
ReplicaResult adjoint_replica(const comm::Communicator& comm, const Params& p, const AdjointParams& a,
                              std::uint64_t seed, std::int64_t replica, std::int64_t steps, double dt,
                              const std::vector<double>& majorants = {});

struct AdjointResult {
    double J = 0.0, J_se = 0.0;
    std::vector<double> gradient, gradient_se; ///< per parameter; se: replica standard error (NaN for 1 replica)
    double forward_rate = 0.0, backward_rate = 0.0; ///< particle-steps per second (forward with its tape; backward)
};
/// All replicas, combined (collective).
AdjointResult run_adjoint(const comm::Communicator& comm, const Params& p, const AdjointParams& a, std::uint64_t seed,
                          std::int64_t steps, double dt);
/// Combine replica results: leave-one-out baselines for the score terms, means and standard errors.
AdjointResult combine(const std::vector<ReplicaResult>& r, bool score);

} // namespace kinflow::dsmc
