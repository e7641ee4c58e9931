#include "kinflow/engines/dsmc/adjoint.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>
#include <sstream>

#include <boost/math/special_functions/digamma.hpp>
#include <boost/program_options.hpp>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/migrate.hpp"
#include "kinflow/core/compat.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/engines/dsmc/bkw.hpp"
#include "kinflow/engines/dsmc/collision.hpp"
#include "kinflow/engines/dsmc/dsmc_engine.hpp"

namespace kinflow::dsmc {

namespace po = boost::program_options;

void describe(po::options_description& d, AdjointOptions& o) {
    d.add_options()("adjoint.objective", po::value(&o.objective)->default_value(o.objective),
                    "run.engine = dsmc: after the run, estimate the gradient of E[J] at t = run.steps * run.dt by "
                    "adjoint DSMC (Caflisch, Silantyev & Yang 2021; Yang, Silantyev & Caflisch 2023); empty = off. "
                    "J = moment:k (<|v|^k>, k >= 1) | component4 (<v_x^4 + v_y^4 + v_z^4>) | temperature_x "
                    "(m <(v_x - U_x)^2>/k_B about the mass-averaged velocity U) | energy_species:s (mean kinetic "
                    "energy m|v|^2/2 per particle of species s, by name or index) | poly:TERMS (<sum of monomials>: "
                    "terms c*vx^a*vy^b*vz^c joined by + or -, c a number (optional), a, b, c integers 0..16 "
                    "(^1 optional), at most 16 terms; e.g. poly:vx^4 + 2*vx^2*vy^2 - 0.5*vz^2). Written as root "
                    "attributes adjoint_objective, adjoint_gradient_<parameter> and adjoint_gradient_<parameter>_se "
                    "of the output")(
        "adjoint.parameters", po::value(&o.parameters)->default_value(o.parameters),
        "comma list of parameters. Initial state: temperature (every species' dsmc.temperature: thermal velocities "
        "scale as sqrt(T); for bimaxwellian species the axes whose temperature_x/_y/_z is empty) | temperature_x, "
        "temperature_y, temperature_z (that axis' temperature of the bimaxwellian species) | drift_x, drift_y, "
        "drift_z (that component of every species' dsmc.drift) | drift (all three together) | bkw_K0 (K of the BKW "
        "initial state, K0 = 1 - exp(-bkw_t0/6)) | bkw_t0. Collision kernel: omega (vhs/vss: every species' "
        "dsmc.omega together; ntc needs omega != 1) | d_ref (hard_sphere/vhs/vss: every species' dsmc.d_ref "
        "together) | collision_rate (maxwell, scheme = nanbu_babovsky only: under ntc the rate only sets the "
        "number of candidates, all accepted) | alpha (vss: every species' dsmc.alpha together, through the "
        "post-collision direction). omega, d_ref, collision_rate act through the acceptance probabilities only "
        "(score term; NTC majorants held fixed)")(
        "adjoint.replicas", po::value(&o.replicas)->default_value(o.replicas),
        "independent forward + backward pairs (seeds run.seed, run.seed + 1, ...) for the standard errors, >= 1; "
        ">= 2 for hard_sphere/vhs/vss kernels and kernel parameters (the score term's baseline is the other "
        "replicas' mean J)");
}

namespace {

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    const auto e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

bool any_init(const Params& p, Init kind) {
    return std::find(p.init.begin(), p.init.end(), kind) != p.init.end();
}

} // namespace

Polynomial parse_polynomial(const std::string& body, const std::string& text) {
    auto fail = [&](const std::string& why) {
        throw OptionError("adjoint.objective", text,
                          "poly: " + why +
                              " (expected terms c*vx^a*vy^b*vz^c joined by + or -, e.g. "
                              "poly:vx^4 + 2*vx^2*vy^2 - 0.5*vz^2)");
    };
    std::string t;
    for (char ch : body)
        if (!std::isspace(static_cast<unsigned char>(ch)))
            t += ch;
    if (t.empty())
        fail("no terms");
    auto digit = [&](std::size_t j) { return j < t.size() && std::isdigit(static_cast<unsigned char>(t[j])); };
    Polynomial P;
    std::size_t i = 0;
    while (i < t.size()) {
        double c = 1.0;
        if (t[i] == '+' || t[i] == '-') {
            c = t[i] == '-' ? -1.0 : 1.0;
            ++i;
        } else if (P.n > 0) {
            fail("terms must be joined by + or -");
        }
        int e[3] = {0, 0, 0};
        bool any = false;
        if (digit(i) || (i < t.size() && t[i] == '.')) { // coefficient: digits[.digits][e[+-]digits]
            std::size_t j = i;
            while (digit(j) || (j < t.size() && t[j] == '.'))
                ++j;
            if (j < t.size() && (t[j] == 'e' || t[j] == 'E')) {
                std::size_t k = j + 1;
                if (k < t.size() && (t[k] == '+' || t[k] == '-'))
                    ++k;
                if (digit(k)) {
                    j = k;
                    while (digit(j))
                        ++j;
                }
            }
            const std::string num = t.substr(i, j - i);
            char* end = nullptr;
            const double x = std::strtod(num.c_str(), &end);
            if (*end != '\0' || !std::isfinite(x))
                fail("bad number '" + num + "'");
            c *= x;
            i = j;
            any = true;
            if (i < t.size() && t[i] == 'v')
                fail("factors must be joined by '*'");
            if (i < t.size() && t[i] == '*') {
                ++i;
                if (i >= t.size() || t[i] != 'v')
                    fail("'*' must be followed by vx, vy or vz");
            }
        }
        while (i < t.size() && t[i] == 'v') {
            if (i + 1 >= t.size() || (t[i + 1] != 'x' && t[i + 1] != 'y' && t[i + 1] != 'z'))
                fail("unknown variable at '" + t.substr(i) + "' (vx, vy, vz)");
            const int k = t[i + 1] - 'x';
            i += 2;
            int power = 1;
            if (i < t.size() && t[i] == '^') {
                std::size_t j = ++i;
                while (digit(j))
                    ++j;
                if (j == i || j - i > 2)
                    fail("'^' needs an integer exponent 0..16");
                power = std::stoi(t.substr(i, j - i));
                i = j;
            }
            e[k] += power;
            if (e[k] > 16)
                fail("exponent above 16");
            any = true;
            if (i < t.size() && t[i] == 'v')
                fail("factors must be joined by '*'");
            if (i < t.size() && t[i] == '*') {
                ++i;
                if (i >= t.size() || t[i] != 'v')
                    fail("'*' must be followed by vx, vy or vz");
            }
        }
        if (!any)
            fail("empty term" + (i < t.size() ? " at '" + t.substr(i) + "'" : std::string(" at the end")));
        if (i < t.size() && t[i] != '+' && t[i] != '-')
            fail("unexpected '" + t.substr(i, 1) + "'");
        if (P.n >= kMaxPolyTerms)
            fail("at most " + std::to_string(kMaxPolyTerms) + " terms");
        P.c[P.n] = c;
        for (int k = 0; k < 3; ++k)
            P.e[P.n][k] = e[k];
        ++P.n;
    }
    return P;
}

AdjointParams validate(const AdjointOptions& o, const Params& p) {
    AdjointParams a;
    const std::string obj = trim(o.objective);
    const auto colon = obj.find(':');
    const std::string head = obj.substr(0, colon), arg = colon == std::string::npos ? "" : trim(obj.substr(colon + 1));
    if (head == "moment") {
        a.objective = Objective::Moment;
        char* end = nullptr;
        a.k = std::strtod(arg.c_str(), &end);
        if (arg.empty() || *end != '\0' || !std::isfinite(a.k) || a.k < 1.0)
            throw OptionError("adjoint.objective", o.objective, "moment:k needs a number k >= 1 (|v|^k)");
    } else if (head == "energy_species") {
        a.objective = Objective::EnergySpecies;
        a.species = -1;
        for (int s = 0; s < p.n_species; ++s)
            if (p.species[static_cast<std::size_t>(s)] == arg || std::to_string(s) == arg)
                a.species = s;
        if (a.species < 0)
            throw OptionError("adjoint.objective", o.objective,
                              "energy_species:s needs a species name of dsmc.species or its index");
    } else if (head == "poly") {
        a.objective = Objective::Poly;
        if (colon == std::string::npos)
            throw OptionError("adjoint.objective", o.objective, "poly needs terms after 'poly:'");
        a.poly = parse_polynomial(obj.substr(colon + 1), o.objective);
    } else if (obj == "component4") {
        a.objective = Objective::Component4;
    } else if (obj == "temperature_x") {
        a.objective = Objective::TemperatureX;
    } else {
        throw OptionError("adjoint.objective", o.objective,
                          "expected moment:k, component4, temperature_x, energy_species:s or poly:TERMS");
    }

    if (p.init[0] == Init::File)
        throw OptionError("adjoint.parameters", o.parameters,
                          "the parameters are those of a generated initial state; dsmc.init = file has none");
    std::stringstream ss(o.parameters);
    std::string item;
    std::set<std::string> seen;
    while (std::getline(ss, item, ',')) {
        item = trim(item);
        if (!seen.insert(item).second)
            throw OptionError("adjoint.parameters", o.parameters, "'" + item + "' is listed twice");
        if (item == "temperature") {
            for (double T : p.temperature)
                if (!(T > 0.0))
                    throw OptionError("adjoint.parameters", o.parameters,
                                      "temperature needs every dsmc.temperature > 0 (thermal velocities scale as sqrt(T))");
            a.parameters.push_back(Parameter::Temperature);
        } else if (item == "temperature_x" || item == "temperature_y" || item == "temperature_z") {
            const int k = item.back() - 'x';
            const auto& Tk = k == 0 ? p.temperature_x : k == 1 ? p.temperature_y : p.temperature_z;
            bool ok = any_init(p, Init::Bimaxwellian);
            for (int s = 0; s < p.n_species; ++s)
                if (p.init[static_cast<std::size_t>(s)] == Init::Bimaxwellian &&
                    !(Tk[static_cast<std::size_t>(s)] > 0.0))
                    ok = false;
            if (!ok)
                throw OptionError("adjoint.parameters", o.parameters,
                                  item + " needs dsmc.init = bimaxwellian for some species, with " + item + " > 0");
            a.parameters.push_back(k == 0   ? Parameter::TemperatureX
                                   : k == 1 ? Parameter::TemperatureY
                                            : Parameter::TemperatureZ);
        } else if (item == "drift" || item == "drift_x" || item == "drift_y" || item == "drift_z") {
            a.parameters.push_back(item == "drift"     ? Parameter::Drift
                                   : item == "drift_x" ? Parameter::DriftX
                                   : item == "drift_y" ? Parameter::DriftY
                                                       : Parameter::DriftZ);
        } else if (item == "alpha") {
            if (p.kernel != Kernel::Vss)
                throw OptionError("adjoint.parameters", o.parameters, "alpha needs dsmc.kernel = vss");
            a.parameters.push_back(Parameter::Alpha);
        } else if (item == "bkw_K0" || item == "bkw_t0") {
            if (!any_init(p, Init::Bkw))
                throw OptionError("adjoint.parameters", o.parameters, item + " needs dsmc.init = bkw for some species");
            a.parameters.push_back(item == "bkw_K0" ? Parameter::BkwK0 : Parameter::BkwT0);
        } else if (item == "omega") {
            if (p.kernel != Kernel::Vhs && p.kernel != Kernel::Vss)
                throw OptionError("adjoint.parameters", o.parameters, "omega needs dsmc.kernel = vhs or vss");
            a.parameters.push_back(Parameter::Omega);
        } else if (item == "d_ref") {
            if (p.kernel == Kernel::Maxwell)
                throw OptionError("adjoint.parameters", o.parameters,
                                  "d_ref needs dsmc.kernel = hard_sphere, vhs or vss (maxwell: collision_rate)");
            a.parameters.push_back(Parameter::DRef);
        } else if (item == "collision_rate") {
            if (p.kernel != Kernel::Maxwell || p.scheme != Scheme::NanbuBabovsky)
                throw OptionError("adjoint.parameters", o.parameters,
                                  "collision_rate needs dsmc.kernel = maxwell with scheme = nanbu_babovsky (under ntc "
                                  "every Maxwell candidate is accepted: the rate only sets the number of candidates)");
            a.parameters.push_back(Parameter::CollisionRate);
        } else {
            throw OptionError(
                "adjoint.parameters", o.parameters,
                "unknown parameter '" + item +
                    "' (temperature, temperature_x, temperature_y, temperature_z, drift, drift_x, drift_y, "
                    "drift_z, bkw_K0, bkw_t0, omega, d_ref, collision_rate, alpha)");
        }
        a.names.push_back(item);
    }
    if (a.parameters.empty())
        throw OptionError("adjoint.parameters", o.parameters, "must name at least one parameter");

    bool constant = p.kernel == Kernel::Maxwell;
    if (!constant) {
        constant = true; // VHS with omega = 1 everywhere is a constant kernel (make_stepper)
        for (int s = 0; s < p.n_species; ++s)
            for (int r = 0; r < p.n_species; ++r)
                constant = constant && pair_mixture(p, s, r).omega == 1.0;
    }
    a.score = !constant;
    a.kernel = std::any_of(a.parameters.begin(), a.parameters.end(), is_kernel_parameter);
    if (a.kernel && constant && p.scheme == Scheme::Ntc)
        throw OptionError("adjoint.parameters", o.parameters,
                          "kernel parameters with scheme = ntc need a velocity-dependent kernel (omega != 1): with a "
                          "constant sigma_T g every candidate is accepted with probability 1, which is not "
                          "differentiable in the kernel's parameters at a fixed majorant");
    a.replicas = o.replicas;
    if (o.replicas < 1 || ((a.score || a.kernel) && o.replicas < 2))
        throw OptionError("adjoint.replicas", std::to_string(o.replicas),
                          a.score || a.kernel ? "must be >= 2 with a velocity-dependent kernel or a kernel parameter "
                                                "(the score term's baseline is the other replicas' mean J)"
                                              : "must be >= 1");
    return a;
}

namespace {

/// Per-species constants of the initial state for the tangents dv_i(0)/dtheta.
struct TangentTable {
    int kind[kMaxSpecies] = {};
    double u[kMaxSpecies][3] = {}, T[kMaxSpecies] = {}, Tk[kMaxSpecies][3] = {}, sv[kMaxSpecies] = {},
           beam[kMaxSpecies] = {};
    int given[3] = {}; ///< dsmc.temperature_x/_y/_z given (else that axis follows dsmc.temperature)
    std::int64_t first[kMaxSpecies + 1] = {};
    double K = 0.6;
};

/// dv_i(0)/dtheta for the particles right after DsmcEngine::init (any layout: species and ids
/// decide). Temperatures: the thermal part c = v - u (less the beam offset) scales as sqrt(T), so
/// dc/dT = c/(2T) (per axis for bimaxwellian species: dc_k/dT_k = c_k/(2 T_k); dsmc.temperature
/// moves the axes whose own key is empty). Drifts: dv/du_k = e_k (every species). bkw_K0: the implicit
/// reparameterisation of the BKW speed law (adjoint.hpp); bkw_t0: times dK/dt0 = (1 - K)/6.
VectorView initial_tangent(const Params& p, const ParticleSet& ps, Parameter which) {
    TangentTable tab;
    tab.K = bkw::K_of_time(p.bkw_t0);
    for (int s = 0; s < p.n_species; ++s) {
        const auto S = static_cast<std::size_t>(s);
        tab.kind[s] = static_cast<int>(p.init[S]);
        for (int k = 0; k < 3; ++k)
            tab.u[s][k] = p.drift[S][static_cast<std::size_t>(k)];
        tab.T[s] = p.temperature[S];
        tab.Tk[s][0] = p.temperature_x[S];
        tab.Tk[s][1] = p.temperature_y[S];
        tab.Tk[s][2] = p.temperature_z[S];
        tab.sv[s] = std::sqrt(p.k_boltzmann * p.temperature[S] / p.mass[S]);
        tab.beam[s] = p.beam_speed[S];
        tab.first[s + 1] = tab.first[s] + p.count[S];
    }
    for (int k = 0; k < 3; ++k)
        tab.given[k] = p.axis_temperature_given[static_cast<std::size_t>(k)] ? 1 : 0;
    VectorView dv("kinflow::dsmc::adjoint_tangent", ps.size(), 3);
    auto vel = ps.velocity;
    auto id = ps.id;
    auto sp = ps.species;
    const int w = static_cast<int>(which);
    Kokkos::parallel_for(
        "kinflow::dsmc::adjoint_tangent", Kokkos::RangePolicy<ExecSpace>(0, ps.size()), KOKKOS_LAMBDA(const std::size_t i) {
            const int s = sp(i);
            double c[3];
            for (int k = 0; k < 3; ++k)
                c[k] = vel(i, k) - tab.u[s][k];
            if (tab.kind[s] == static_cast<int>(Init::TwoBeams)) // the beam offset does not scale
                c[0] -= ((id(i) - tab.first[s]) % 2 == 0 ? 1.0 : -1.0) * tab.beam[s];
            double d[3] = {0.0, 0.0, 0.0};
            const bool bimax = tab.kind[s] == static_cast<int>(Init::Bimaxwellian);
            if (w == static_cast<int>(Parameter::Temperature)) {
                for (int k = 0; k < 3; ++k)
                    d[k] = bimax && tab.given[k] ? 0.0 : c[k] / (2.0 * tab.T[s]);
            } else if (w == static_cast<int>(Parameter::TemperatureX) ||
                       w == static_cast<int>(Parameter::TemperatureY) ||
                       w == static_cast<int>(Parameter::TemperatureZ)) {
                const int k = w - static_cast<int>(Parameter::TemperatureX);
                if (bimax)
                    d[k] = c[k] / (2.0 * tab.Tk[s][k]);
            } else if (w == static_cast<int>(Parameter::Drift)) {
                d[0] = d[1] = d[2] = 1.0;
            } else if (w == static_cast<int>(Parameter::DriftX) || w == static_cast<int>(Parameter::DriftY) ||
                       w == static_cast<int>(Parameter::DriftZ)) {
                d[w - static_cast<int>(Parameter::DriftX)] = 1.0;
            } else if (tab.kind[s] == static_cast<int>(Init::Bkw)) { // bkw_K0, bkw_t0
                const double K = tab.K;
                const double x2 = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]) / (tab.sv[s] * tab.sv[s] * K);
                const double den = (5.0 * K - 3.0) + (1.0 - K) * x2;
                double f = den > 0.0 ? (1.0 - 2.0 / den) / (2.0 * K) : 0.0;
                if (w == static_cast<int>(Parameter::BkwT0))
                    f *= (1.0 - K) / 6.0;
                for (int k = 0; k < 3; ++k)
                    d[k] = f * c[k];
            }
            for (int k = 0; k < 3; ++k)
                dv(i, k) = d[k];
        });
    return dv;
}

/// d ln(sigma_T g)/d theta of the kernel parameters in `a` (in their order), per species pair, with the
/// pair constants of make_stepper (pair_mixture: Bird 1994, ch. 4, d_ref and omega of a pair are the
/// means of the two species' values, m_r the reduced mass). `slot[q]`: the KernelTangent entry of parameter q, -1
/// for initial-state parameters.
KernelTangent kernel_tangent(const Params& p, const AdjointParams& a, std::vector<int>& slot) {
    KernelTangent kt;
    slot.assign(a.parameters.size(), -1);
    for (std::size_t q = 0; q < a.parameters.size(); ++q) {
        const Parameter which = a.parameters[q];
        if (which == Parameter::Alpha)
            kt.alpha = true; // pathwise through the VSS direction (KernelScore::alpha_*)
        if (!is_kernel_parameter(which))
            continue;
        KINFLOW_REQUIRE(kt.n < kMaxKernelParameters,
                        "adjoint: more than " << kMaxKernelParameters << " kernel parameters");
        const int k = kt.n++;
        slot[q] = k;
        for (int s = 0; s < p.n_species; ++s)
            for (int r = 0; r < p.n_species; ++r) {
                const PairMixture x = pair_mixture(p, s, r);
                const double d = x.d_ref, w = x.omega, mr = x.reduced_mass;
                if (which == Parameter::Omega) { // c = pi d^2 (2 k T_ref/m_r)^(omega - 1/2) / Gamma(5/2 - omega)
                    kt.a[k].set(s, r, std::log(2.0 * p.k_boltzmann * p.T_ref / mr) + boost::math::digamma(2.5 - w));
                    kt.b[k].set(s, r, -1.0); // (g^2)^(1 - omega)
                } else if (which == Parameter::DRef) {
                    kt.a[k].set(s, r, 2.0 / d);
                } else { // collision_rate: sigma_T g = nu/n
                    kt.a[k].set(s, r, 1.0 / p.collision_rate);
                }
            }
    }
    return kt;
}

struct Masses {
    double m[kMaxSpecies] = {};
};

/// J = (1/N) sum_i phi(v_i) (objectives as in describe()) and gamma_i = dJ/dv_i (collective).
double objective(const comm::Communicator& comm, const Params& p, const AdjointParams& a, const ParticleSet& ps,
                 const VectorView& gamma) {
    Masses ms;
    for (int s = 0; s < p.n_species; ++s)
        ms.m[s] = p.mass[static_cast<std::size_t>(s)];
    auto vel = ps.velocity;
    auto sp = ps.species;
    const std::size_t n = ps.size();
    double norm = static_cast<double>(p.particles); // N, or N_s for energy_species
    double Ux = 0.0;
    if (a.objective == Objective::TemperatureX) { // mass-averaged U_x
        double mv = 0.0, m = 0.0;
        Kokkos::parallel_reduce(
            "kinflow::dsmc::adjoint_momentum", Kokkos::RangePolicy<ExecSpace>(0, n),
            KOKKOS_LAMBDA(const std::size_t i, double& x, double& y) {
                x += ms.m[sp(i)] * vel(i, 0);
                y += ms.m[sp(i)];
            },
            Kokkos::Sum<double>(mv), Kokkos::Sum<double>(m));
        Ux = comm.sum(mv) / comm.sum(m);
    }
    if (a.objective == Objective::EnergySpecies)
        norm = static_cast<double>(p.count[static_cast<std::size_t>(a.species)]);
    const int kind = static_cast<int>(a.objective), target = a.species;
    const Polynomial poly = a.poly;
    const double k = a.k, kB = p.k_boltzmann;
    double J = 0.0;
    Kokkos::parallel_reduce(
        "kinflow::dsmc::adjoint_objective", Kokkos::RangePolicy<ExecSpace>(0, n),
        KOKKOS_LAMBDA(const std::size_t i, double& sum) {
            const double v[3] = {vel(i, 0), vel(i, 1), vel(i, 2)};
            const double m = ms.m[sp(i)];
            double phi = 0.0, g[3] = {0.0, 0.0, 0.0};
            if (kind == static_cast<int>(Objective::Moment)) {
                const double r2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
                phi = math::pow(r2, 0.5 * k);
                const double c = r2 > 0.0 ? k * math::pow(r2, 0.5 * k - 1.0) : 0.0; // grad |v|^k = k |v|^(k-2) v
                for (int q = 0; q < 3; ++q)
                    g[q] = c * v[q];
            } else if (kind == static_cast<int>(Objective::Component4)) {
                for (int q = 0; q < 3; ++q) {
                    phi += v[q] * v[q] * v[q] * v[q];
                    g[q] = 4.0 * v[q] * v[q] * v[q];
                }
            } else if (kind == static_cast<int>(Objective::TemperatureX)) {
                // sum_j m_j (v_jx - U_x) = 0, so U_x's own dependence on v_i drops out
                phi = m * (v[0] - Ux) * (v[0] - Ux) / kB;
                g[0] = 2.0 * m * (v[0] - Ux) / kB;
            } else if (kind == static_cast<int>(Objective::Poly)) {
                // phi = sum_t c_t prod_k v_k^e_tk, d phi/dv_k = sum_t c_t e_tk v_k^(e_tk - 1) prod_{l != k} v_l^e_tl
                for (int t = 0; t < poly.n; ++t) {
                    double pw[3][2]; // v_k^e and v_k^(e - 1)
                    for (int q = 0; q < 3; ++q) {
                        double x = 1.0;
                        for (int j = 1; j < poly.e[t][q]; ++j)
                            x *= v[q];
                        pw[q][1] = x;
                        pw[q][0] = poly.e[t][q] > 0 ? x * v[q] : 1.0;
                    }
                    phi += poly.c[t] * pw[0][0] * pw[1][0] * pw[2][0];
                    for (int q = 0; q < 3; ++q)
                        if (poly.e[t][q] > 0)
                            g[q] += poly.c[t] * poly.e[t][q] * pw[q][1] * pw[(q + 1) % 3][0] * pw[(q + 2) % 3][0];
                }
            } else if (sp(i) == target) { // energy_species
                phi = 0.5 * m * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
                for (int q = 0; q < 3; ++q)
                    g[q] = m * v[q];
            }
            for (int q = 0; q < 3; ++q)
                gamma(i, q) = g[q] / norm;
            sum += phi;
        },
        Kokkos::Sum<double>(J));
    return comm.sum(J) / norm;
}

/// sum_i x_i . y_i over all ranks.
double dot(const comm::Communicator& comm, const VectorView& x, const VectorView& y) {
    double d = 0.0;
    Kokkos::parallel_reduce(
        "kinflow::dsmc::adjoint_dot", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)),
        KOKKOS_LAMBDA(const std::size_t i, double& s) { s += x(i, 0) * y(i, 0) + x(i, 1) * y(i, 1) + x(i, 2) * y(i, 2); },
        Kokkos::Sum<double>(d));
    return comm.sum(d);
}

template <class V> V copy_of(const V& v) {
    V c(Kokkos::view_alloc(Kokkos::WithoutInitializing, v.label()), v.layout());
    Kokkos::deep_copy(c, v);
    return c;
}

/// The adjoints of a redistribution: gamma and beta, rows in the order of the ids `from` (the
/// layout after it), move back to the layout `to` had before it (collective). Both layouts go to
/// block order (comm::to_blocks), where row j of each is the same particle; the "to" side carries
/// its origin (rank, local row), which routes the adjoint rows back (comm::migrate).
void relayout(const comm::Communicator& comm, std::int64_t n_global, const IdView& from, const IdView& to,
              VectorView& gamma, VectorView& beta) {
    ParticleSet g;
    g.dim = g.vdim = 3;
    g.n_global = n_global;
    g.id = copy_of(from);
    g.velocity = gamma;
    g.position = beta;
    comm::to_blocks(comm, g);
    ParticleSet o;
    o.dim = o.vdim = 3;
    o.n_global = n_global;
    o.id = copy_of(to);
    o.velocity = VectorView("kinflow::dsmc::adjoint_origin", to.extent(0), 3);
    o.position = o.velocity;
    {
        auto ov = o.velocity;
        const double rank = comm.rank();
        Kokkos::parallel_for(
            "kinflow::dsmc::adjoint_origin", Kokkos::RangePolicy<ExecSpace>(0, to.extent(0)),
            KOKKOS_LAMBDA(const std::size_t i) {
                ov(i, 0) = rank;
                ov(i, 1) = static_cast<double>(i);
            });
    }
    comm::to_blocks(comm, o);
    comm::RankView dest("kinflow::dsmc::adjoint_dest", g.size());
    {
        auto ov = o.velocity;
        auto gid = g.id;
        Kokkos::parallel_for(
            "kinflow::dsmc::adjoint_route", Kokkos::RangePolicy<ExecSpace>(0, g.size()), KOKKOS_LAMBDA(const std::size_t j) {
                dest(j) = static_cast<int>(ov(j, 0));
                gid(j) = static_cast<std::int64_t>(ov(j, 1)); // the row it takes on arrival
            });
    }
    comm::migrate(comm, g, dest);
    KINFLOW_REQUIRE(g.size() == to.extent(0), "adjoint: relayout received " << g.size() << " rows, expected " << to.extent(0));
    VectorView ng("kinflow::dsmc::adjoint_gamma", to.extent(0), 3), nb("kinflow::dsmc::adjoint_beta", to.extent(0), 3);
    auto gv = g.velocity, bv = g.position;
    auto row = g.id;
    Kokkos::parallel_for(
        "kinflow::dsmc::adjoint_place", Kokkos::RangePolicy<ExecSpace>(0, g.size()), KOKKOS_LAMBDA(const std::size_t k) {
            const auto i = static_cast<std::size_t>(row(k));
            for (int q = 0; q < 3; ++q) {
                ng(i, q) = gv(k, q);
                nb(i, q) = bv(k, q);
            }
        });
    gamma = ng;
    beta = nb;
}

/// What the backward sweep needs of forward step n: the velocities it started with, in its layout.
struct Frame {
    VectorView velocity;
    IdView id;
    SpeciesView species;
    std::vector<double> majorants;
    bool moved = false; ///< a redistribution preceded the collisions
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

ReplicaResult adjoint_replica(const comm::Communicator& comm, const Params& p, const AdjointParams& a,
                              std::uint64_t seed, std::int64_t replica, std::int64_t steps, double dt,
                              const std::vector<double>& majorants) {
    ReplicaResult out;
    DsmcEngine engine(comm, p, seed + static_cast<std::uint64_t>(replica));
    ParticleSet ps;
    comm.barrier();
    auto t0 = std::chrono::steady_clock::now();
    engine.init(ps);
    if (!majorants.empty())
        engine.set_majorants(majorants);
    out.majorants = engine.majorants();
    const Params& ep = engine.params(); // species counts resolved
    std::vector<VectorView> tangent; // empty for kernel parameters (dv(0)/dtheta = 0)
    for (Parameter q : a.parameters)
        tangent.push_back(is_initial_parameter(q) ? initial_tangent(ep, ps, q) : VectorView());
    std::vector<int> slot;
    const KernelTangent kt = kernel_tangent(ep, a, slot);
    KernelScore kscore;
    const IdView init_id = copy_of(ps.id);

    // forward, recording every step's starting velocities and layout
    std::vector<Frame> tape(static_cast<std::size_t>(steps));
    for (std::int64_t n = 0; n < steps; ++n) {
        Frame& f = tape[static_cast<std::size_t>(n)];
        f.moved = engine.redistribute(ps, n);
        f.velocity = copy_of(ps.velocity);
        if (n == 0 || f.moved) {
            f.id = copy_of(ps.id);
            f.species = copy_of(ps.species);
        } else {
            f.id = tape[static_cast<std::size_t>(n - 1)].id;
            f.species = tape[static_cast<std::size_t>(n - 1)].species;
        }
        f.majorants = engine.majorants();
        engine.collide(ps, n, dt);
    }
    VectorView gamma("kinflow::dsmc::adjoint_gamma", ps.size(), 3);
    VectorView beta("kinflow::dsmc::adjoint_beta", ps.size(), 3);
    out.J = objective(comm, ep, a, ps, gamma); // gamma_i(T) = (1/N) grad phi(v_i(T))
    Kokkos::fence();
    comm.barrier();
    out.forward_seconds = seconds_since(t0);

    // backward
    t0 = std::chrono::steady_clock::now();
    for (std::int64_t n = steps - 1; n >= 0; --n) {
        Frame& f = tape[static_cast<std::size_t>(n)];
        ParticleSet at;
        at.dim = at.vdim = 3;
        at.with_species = true;
        at.n_global = ps.n_global;
        at.velocity = at.position = f.velocity;
        at.id = f.id;
        at.species = f.species;
        engine.set_majorants(f.majorants);
        const KernelScore k = engine.collide_adjoint(at, n, dt, gamma, beta, kt);
        for (int q = 0; q < kt.n; ++q)
            kscore.v[q] += k.v[q];
        kscore.alpha_pathwise += k.alpha_pathwise;
        kscore.alpha_score += k.alpha_score;
        if (f.moved)
            relayout(comm, ps.n_global, f.id, n > 0 ? tape[static_cast<std::size_t>(n - 1)].id : init_id, gamma, beta);
        f.velocity = VectorView(); // release the tape as it is consumed
    }
    for (std::size_t q = 0; q < tangent.size(); ++q) {
        if (a.parameters[q] == Parameter::Alpha) { // through the collisions: gamma'.dv'/d alpha, beta'.dv'/d alpha
            out.pathwise.push_back(comm.sum(kscore.alpha_pathwise));
            out.score.push_back(a.score ? comm.sum(kscore.alpha_score) : 0.0);
            continue;
        }
        if (slot[q] >= 0) { // kernel parameter: no pathwise term; the decisions' score, over all ranks
            out.pathwise.push_back(0.0);
            out.score.push_back(comm.sum(kscore.v[slot[q]]));
            continue;
        }
        out.pathwise.push_back(dot(comm, gamma, tangent[q]));
        out.score.push_back(a.score ? dot(comm, beta, tangent[q]) : 0.0);
    }
    Kokkos::fence();
    comm.barrier();
    out.backward_seconds = seconds_since(t0);
    return out;
}

AdjointResult combine(const std::vector<ReplicaResult>& r, bool score) {
    AdjointResult out;
    const auto R = static_cast<double>(r.size());
    const std::size_t np = r.empty() ? 0 : r[0].pathwise.size();
    double sumJ = 0.0;
    for (const auto& x : r)
        sumJ += x.J;
    auto mean_se = [&](const std::vector<double>& x, double& mean, double& se) {
        mean = 0.0;
        for (double v : x)
            mean += v / R;
        double var = 0.0;
        for (double v : x)
            var += (v - mean) * (v - mean);
        se = r.size() > 1 ? std::sqrt(var / (R - 1.0) / R) : std::numeric_limits<double>::quiet_NaN();
    };
    std::vector<double> Js;
    for (const auto& x : r)
        Js.push_back(x.J);
    mean_se(Js, out.J, out.J_se);
    for (std::size_t q = 0; q < np; ++q) {
        std::vector<double> g;
        for (const auto& x : r) {
            double v = x.pathwise[q];
            if (score && r.size() > 1) // leave-one-out baseline: b independent of this replica
                v += (x.J - (sumJ - x.J) / (R - 1.0)) * x.score[q];
            g.push_back(v);
        }
        double m, se;
        mean_se(g, m, se);
        out.gradient.push_back(m);
        out.gradient_se.push_back(se);
    }
    return out;
}

AdjointResult run_adjoint(const comm::Communicator& comm, const Params& p, const AdjointParams& a, std::uint64_t seed,
                          std::int64_t steps, double dt) {
    std::vector<ReplicaResult> r;
    double tf = 0.0, tb = 0.0;
    for (std::int64_t k = 0; k < a.replicas; ++k) {
        r.push_back(adjoint_replica(comm, p, a, seed, k, steps, dt));
        tf += r.back().forward_seconds;
        tb += r.back().backward_seconds;
    }
    auto out = combine(r, a.score || a.kernel);
    const double ps = static_cast<double>(p.particles) * static_cast<double>(steps) * static_cast<double>(a.replicas);
    out.forward_rate = tf > 0.0 ? ps / tf : 0.0;
    out.backward_rate = tb > 0.0 ? ps / tb : 0.0;
    return out;
}

} // namespace kinflow::dsmc
