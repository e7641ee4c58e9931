#pragma once
// Adjoint DSMC: gradients of an expected DSMC objective J = E[(1/N) sum_i phi(v_i(T))] with respect
// to parameters of the initial state, "discretise then optimise" (Caflisch, Silantyev & Yang,
// "Adjoint DSMC for nonlinear Boltzmann equation constrained optimization", J. Comput. Phys. 439,
// 110404 (2021), Maxwell molecules; Yang, Silantyev & Caflisch, J. Comput. Phys. 488, 112247 (2023),
// general collision kernels). Keys of the [adjoint] section (names are a contract).
//
// Which part of the papers each piece implements (equation numbers are not quoted: they could not
// be checked here; the papers are cited by section content). 2021 = Caflisch, Silantyev & Yang,
// JCP 439, 110404 (arXiv:2009.01363); 2023 = Yang, Silantyev & Caflisch, JCP 488, 112247
// (arXiv:2207.11579).
// - Discretise-then-optimise: the adjoint of the DSMC time stepping as a discrete map, derived in
//   both papers from the augmented Lagrangian of the particle system (2021); gamma_i = dJ/dv_i with
//   final condition gamma_i(T) = (1/N) grad phi(v_i(T)) (objective() below).
// - Backward step through an accepted collision: the transposed collision Jacobian, for equal
//   masses (I +- sigma alpha^T)/2 with alpha = g/|g| (the 2021 adjoint collision rule;
//   collide_pair_adjoint in collision.hpp, with unequal masses and the VSS direction's own
//   dependence on g added: the 2023 paper's Jacobian of the collision parameters' velocity
//   dependence, here for the deflection law).
// - Acceptance-rejection with a velocity-dependent rate: the score-function term of the 2023 paper
//   (d log q for an accepted, d log(1 - q) for a rejected candidate, q the acceptance probability),
//   carried back by beta; decision_adjoint in stepper.cpp holds the one per-pair update of both
//   schemes.
// - Gradient assembly: dJ/dtheta = sum_i gamma_i(0) . dv_i(0)/dtheta (pathwise; 2021) plus
//   (J - b) times the score (2023), below.
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
// thermal velocities (bimaxwellian: per axis, dc_k/dT_k = c_k/(2 T_k); dsmc.temperature moves the
// axes whose temperature_x/_y/_z is empty), drifts shift them (dv/du_k = e_k), and bkw_K0 uses the
// implicit reparameterisation of the BKW speed law
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
//
// collision_rate is Nanbu–Babovsky only. Under NTC the Maxwell majorant is the kernel itself
// (sigma_T g = nu/n for every pair), every candidate is accepted with probability 1, and nu enters
// only through the number of candidates of a group, floor(W) or floor(W) + 1 with W proportional to
// nu. E[J] is then the piecewise-linear interpolation in W between integer candidate counts; the
// only unbiased derivative is the score of that rounding draw, (dW/dnu)/frac(W) or
// -(dW/dnu)/(1 - frac(W)) per group and step: of size W/nu (hundreds per group), unbounded as
// frac(W) -> 0 (the group sizes are random, so frac(W) comes arbitrarily close to 0), i.e. a
// variance orders of magnitude above Nanbu–Babovsky's, and no pathwise term exists (the decisions
// do not vary with nu). validate() refuses it in one line.
//
// The VSS exponent alpha (adjoint.parameters alpha, dsmc.alpha of every species together) acts
// through the post-collision direction e: cos chi = 2 u^(1/alpha) - 1 at fixed draws, so every
// accepted collision adds gamma'.dv'/d alpha (pathwise) and beta'.dv'/d alpha (score) with
// dv1'/d alpha = (m2/M)|g| de/d alpha, dv2'/d alpha = -(m1/M)|g| de/d alpha (KernelScore::alpha_*).
//
// A user polynomial objective poly:c*vx^a*vy^b*vz^c + ... (parse_polynomial) has the obvious
// gradient; a syntax error is one OptionError line.
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

enum class Objective { Moment, Component4, TemperatureX, EnergySpecies, Poly };
enum class Parameter {
    Temperature,
    TemperatureX,
    TemperatureY,
    TemperatureZ,
    Drift,
    DriftX,
    DriftY,
    DriftZ,
    BkwK0,
    BkwT0,
    Omega,
    DRef,
    CollisionRate,
    Alpha
};
/// Whether `q` is a collision-kernel parameter (score term only, no initial tangent).
inline bool is_kernel_parameter(Parameter q) {
    return q == Parameter::Omega || q == Parameter::DRef || q == Parameter::CollisionRate;
}
/// Whether `q` acts through the initial state (dv_i(0)/dtheta != 0); the others (kernel
/// parameters, the VSS alpha) act through the collisions only.
inline bool is_initial_parameter(Parameter q) { return !is_kernel_parameter(q) && q != Parameter::Alpha; }

/// Most terms of a poly: objective.
inline constexpr int kMaxPolyTerms = 16;
/// phi(v) = sum_t c_t vx^e_t0 vy^e_t1 vz^e_t2 (objective poly:...), copied into kernels.
struct Polynomial {
    int n = 0;
    double c[kMaxPolyTerms] = {};
    int e[kMaxPolyTerms][3] = {};
};
/// Parse the part after "poly:" (a sum of terms c*vx^a*vy^b*vz^c; see describe()); throws
/// OptionError (key adjoint.objective, `text` its value) naming what is wrong.
Polynomial parse_polynomial(const std::string& body, const std::string& text);

/// AdjointOptions checked against the [dsmc] parameters.
struct AdjointParams {
    Objective objective = Objective::Moment;
    double k = 4.0;   ///< moment:k exponent
    int species = 0;  ///< energy_species:s
    Polynomial poly;  ///< poly:...
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
    /// per parameter: sum_i beta_i(0) . dv_i(0)/dtheta; kernel parameters: dL/dtheta; alpha: the sum over
    /// collisions of beta' . dv'/d alpha (and pathwise the same with gamma')
    std::vector<double> score;
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
