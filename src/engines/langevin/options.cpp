#include "kinflow/engines/langevin/options.hpp"

#include <cmath>

#include <boost/program_options.hpp>

#include "kinflow/core/options.hpp"

namespace kinflow::langevin {

namespace po = boost::program_options;

void describe(po::options_description& d, Options& o) {
    d.add_options()("langevin.dim", po::value(&o.dim)->default_value(o.dim), "spatial dimension, 1..3")(
        "langevin.particles", po::value(&o.particles)->default_value(o.particles),
        "number of particles N, >= 1 (ignored with init = file: the file decides)")(
        "langevin.dynamics", po::value(&o.dynamics)->default_value(o.dynamics),
        "overdamped (Euler-Maruyama: dX = -grad V dt - grad(W*rho) dt + sqrt(2 temperature) dW) | "
        "underdamped (BAOAB, unit mass: dX = V dt, dV = -grad V dt - friction V dt + sqrt(2 friction temperature) dW)")(
        "langevin.potential", po::value(&o.potential)->default_value(o.potential),
        "none | harmonic (V = stiffness |x - center|^2 / 2) | double_well (V = stiffness (x^2 - 1)^2 per component)")(
        "langevin.stiffness", po::value(&o.stiffness)->default_value(o.stiffness), "potential strength theta, >= 0")(
        "langevin.center", po::value(&o.center)->default_value(o.center), "centre of the harmonic potential (vector)")(
        "langevin.temperature", po::value(&o.temperature)->default_value(o.temperature),
        "temperature D = 1/beta (noise strength), >= 0")(
        "langevin.friction", po::value(&o.friction)->default_value(o.friction), "friction gamma (underdamped only), > 0")(
        "langevin.interaction", po::value(&o.interaction)->default_value(o.interaction),
        "none | harmonic (mean field W = interaction_strength |x|^2 / 2, grad(W*rho)(x) = k (x - mean))")(
        "langevin.interaction_strength", po::value(&o.interaction_strength)->default_value(o.interaction_strength),
        "mean-field strength k, >= 0")(
        "langevin.init", po::value(&o.init)->default_value(o.init),
        "initial positions: gaussian (init_mean, init_std) | uniform (box of that mean and standard deviation) | "
        "file (init_file); underdamped velocities are Maxwellian at the temperature unless the file has them")(
        "langevin.init_mean", po::value(&o.init_mean)->default_value(o.init_mean), "initial mean (vector)")(
        "langevin.init_std", po::value(&o.init_std)->default_value(o.init_std),
        "initial standard deviation per component (vector), >= 0")(
        "langevin.init_file", po::value(&o.init_file)->default_value(o.init_file),
        "kinflow HDF5 file with the initial particles (init = file)")(
        "langevin.init_snapshot", po::value(&o.init_snapshot)->default_value(o.init_snapshot),
        "snapshot index in init_file; negative counts from the end (-1 = last)");
}

Params validate(const Options& o, double dt) {
    Params p;
    check_range("langevin.dim", static_cast<std::int64_t>(o.dim), 1, 3);
    p.dim = o.dim;
    check_choice("langevin.dynamics", o.dynamics, {"overdamped", "underdamped"});
    p.dynamics = o.dynamics == "overdamped" ? Dynamics::Overdamped : Dynamics::Underdamped;
    check_choice("langevin.potential", o.potential, {"none", "harmonic", "double_well"});
    p.potential = o.potential == "none" ? Potential::None : o.potential == "harmonic" ? Potential::Harmonic : Potential::DoubleWell;
    check_range("langevin.stiffness", o.stiffness, 0.0, 1e12);
    p.stiffness = o.stiffness;
    const auto c = parse_vector("langevin.center", o.center, o.dim);
    std::copy(c.begin(), c.end(), p.center.begin());
    check_range("langevin.temperature", o.temperature, 0.0, 1e12);
    p.temperature = o.temperature;
    check_positive("langevin.friction", o.friction);
    p.friction = o.friction;
    check_choice("langevin.interaction", o.interaction, {"none", "harmonic"});
    check_range("langevin.interaction_strength", o.interaction_strength, 0.0, 1e12);
    p.kappa = o.interaction == "harmonic" ? o.interaction_strength : 0.0;
    check_choice("langevin.init", o.init, {"gaussian", "uniform", "file"});
    p.init = o.init == "gaussian" ? Init::Gaussian : o.init == "uniform" ? Init::Uniform : Init::File;
    const auto m = parse_vector("langevin.init_mean", o.init_mean, o.dim);
    std::copy(m.begin(), m.end(), p.init_mean.begin());
    const auto s = parse_vector("langevin.init_std", o.init_std, o.dim);
    for (double v : s) {
        if (v < 0) throw OptionError("langevin.init_std", o.init_std, "must be >= 0");
    }
    std::copy(s.begin(), s.end(), p.init_std.begin());
    if (p.init == Init::File) {
        if (o.init_file.empty()) throw OptionError("langevin.init_file", o.init_file, "required with init = file");
    } else {
        check_range("langevin.particles", o.particles, std::int64_t{1}, std::int64_t{1} << 40);
    }
    p.particles = o.particles;

    // Linear stability of the explicit schemes for the harmonic part (curvature a = theta + k):
    // Euler-Maruyama needs a dt < 2; BAOAB needs sqrt(a) dt < 2.
    const double a = (p.potential == Potential::Harmonic ? p.stiffness : 0.0) + p.kappa;
    if (a > 0) {
        const double bound = p.dynamics == Dynamics::Overdamped ? 2.0 / a : 2.0 / std::sqrt(a);
        if (!(dt < bound)) {
            throw OptionError("run.dt", format_number(dt),
                              "unstable: needs dt < " + format_number(bound) + " for stiffness + interaction_strength = " + format_number(a));
        }
    }
    return p;
}

} // namespace kinflow::langevin
