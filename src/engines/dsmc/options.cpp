#include "kinflow/engines/dsmc/options.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <sstream>

#include <boost/program_options.hpp>

#include "kinflow/core/options.hpp"

namespace kinflow::dsmc {

namespace po = boost::program_options;

void describe(po::options_description& d, Options& o) {
    d.add_options()("dsmc.scheme", po::value(&o.scheme)->default_value(o.scheme),
                    "nanbu_babovsky (Babovsky 1989: random pairs, each collides with probability P = n sigma_T g dt, "
                    "needs P <= 1; first order in dt) | ntc (Bird 1994 no-time-counter: 1/2 N n (sigma_T g)_max dt "
                    "candidate pairs per step, accepted with sigma_T g / (sigma_T g)_max, majorant updated every step; "
                    "no dt bias for Maxwell molecules). Both conserve momentum and energy per collision")(
        "dsmc.kernel", po::value(&o.kernel)->default_value(o.kernel),
        "collision kernel: maxwell (sigma_T g = collision_rate / number_density for every pair, isotropic) | "
        "hard_sphere (sigma_T = pi d_ref^2, isotropic) | vhs (variable hard sphere: d_ref, omega, T_ref; isotropic) | "
        "vss (variable soft sphere: vhs cross-section, cos chi = 2 R^(1/alpha) - 1)")(
        "dsmc.collision_rate", po::value(&o.collision_rate)->default_value(o.collision_rate),
        "maxwell kernel: per-particle collision frequency nu (1/time; normalized BKW: 1), > 0")(
        "dsmc.d_ref", po::value(&o.d_ref)->default_value(o.d_ref),
        "hard_sphere/vhs/vss reference molecular diameter per species (comma list; length, m in si units), > 0; "
        "unlike pairs use the mean of the two")(
        "dsmc.omega", po::value(&o.omega)->default_value(o.omega),
        "vhs/vss viscosity-temperature exponent per species (comma list), 0.5 (hard sphere) .. 1 (Maxwell); "
        "unlike pairs use the mean")(
        "dsmc.alpha", po::value(&o.alpha)->default_value(o.alpha),
        "vss scattering exponent per species (comma list), 1 (isotropic) .. 2; unlike pairs use the mean")(
        "dsmc.T_ref", po::value(&o.T_ref)->default_value(o.T_ref),
        "vhs/vss reference temperature of d_ref (K in si units), > 0")(
        "dsmc.units", po::value(&o.units)->default_value(o.units),
        "normalized (k_B = 1; masses, temperatures, densities in any consistent units) | "
        "si (k_B = 1.380649e-23 J/K; kg, K, m^-3, m/s, s)")(
        "dsmc.number_density", po::value(&o.number_density)->default_value(o.number_density),
        "total number density n of the gas (m^-3 in si units), > 0; species densities are fraction * n")(
        "dsmc.species", po::value(&o.species)->default_value(o.species),
        "comma list of species names (letters, digits, _), 1 to 8 species; diagnostics are named after them")(
        "dsmc.mass", po::value(&o.mass)->default_value(o.mass),
        "molecular mass per species (comma list; kg in si units), > 0")(
        "dsmc.fraction", po::value(&o.fraction)->default_value(o.fraction),
        "number fraction per species (comma list), > 0, summing to 1 within 1e-6 (then normalised exactly); "
        "ignored with init = file")(
        "dsmc.init", po::value(&o.init)->default_value(o.init),
        "initial velocities per species (comma list): maxwellian (temperature, drift) | "
        "bkw (BKW solution at time bkw_t0, scaled to the temperature) | "
        "two_beams (half at +beam_speed, half at -beam_speed along x, each Maxwellian at the temperature) | "
        "bimaxwellian (temperature_x, temperature_y, temperature_z along x, y, z; each empty = temperature); or file "
        "(alone: init_file decides particles, species and velocities). space = grid: uniform (or maxwellian: a "
        "Maxwellian at number_density, temperature, drift in the whole box) | riemann (that state for x < riemann_x0, "
        "the *_right keys beyond) | file (positions, velocities, ids and species of init_file's snapshot; "
        "weight = 0 takes number_density x box volume / its particles)")("dsmc.temperature",
                                              po::value(&o.temperature)->default_value(o.temperature),
                                              "initial temperature per species (comma list; K in si units), >= 0")(
        "dsmc.temperature_x", po::value(&o.temperature_x)->default_value(o.temperature_x),
        "bimaxwellian: initial x-axis temperature per species (comma list), >= 0; empty = temperature")(
        "dsmc.temperature_y", po::value(&o.temperature_y)->default_value(o.temperature_y),
        "bimaxwellian: initial y-axis temperature per species (comma list), >= 0; empty = temperature")(
        "dsmc.temperature_z", po::value(&o.temperature_z)->default_value(o.temperature_z),
        "bimaxwellian: initial z-axis temperature per species (comma list), >= 0; empty = temperature")(
        "dsmc.drift", po::value(&o.drift)->default_value(o.drift),
        "initial mean velocity: 1 number (every component of every species), 3 (one vector for all species) or "
        "3 per species (ux,uy,uz of species 0, then species 1, ...)")(
        "dsmc.beam_speed", po::value(&o.beam_speed)->default_value(o.beam_speed),
        "two_beams: beam speed along x per species (comma list; m/s in si units), >= 0")(
        "dsmc.bkw_t0", po::value(&o.bkw_t0)->default_value(o.bkw_t0),
        "bkw: BKW time of the initial state in collision times 1/nu, K = 1 - exp(-bkw_t0/6); >= 6 ln(5/2) "
        "(the default, K = 3/5). Snapshot time still starts at 0: K(t) = 1 - exp(-(bkw_t0 + nu t)/6)")(
        "dsmc.particles", po::value(&o.particles)->default_value(o.particles),
        "total number of simulated particles N, >= 2 (split over species by fraction; ignored with init = file)")(
        "dsmc.shuffle_every", po::value(&o.shuffle_every)->default_value(o.shuffle_every),
        "with several MPI ranks: redistribute the particles randomly over the ranks before every "
        "shuffle_every-th step (step 0 included), >= 1")(
        "dsmc.init_file", po::value(&o.init_file)->default_value(o.init_file),
        "kinflow HDF5 file with the initial particles (init = file): velocities from 'velocity' (else 'position'), "
        "species from 'species' (else all species 0). space = grid: 3-D 'position' inside the box and 3-component "
        "'velocity' (a spatial run's output.particles snapshot), unique ids")(
        "dsmc.init_snapshot", po::value(&o.init_snapshot)->default_value(o.init_snapshot),
        "snapshot index in init_file; negative counts from the end (-1 = last)");
    d.add_options()("dsmc.space", po::value(&o.space)->default_value(o.space),
                    "homogeneous (one well-mixed gas, the keys above) | grid (spatial DSMC: Cartesian cells in the box "
                    "box_lo..box_hi, free flight with boundaries, MPI slabs of cells, NTC per cell; scheme = ntc; "
                    "the keys below)")(
        "dsmc.box_lo", po::value(&o.box_lo)->default_value(o.box_lo),
        "space = grid: lower box corner x,y,z (length, m in si units); box_hi > box_lo on every axis")(
        "dsmc.box_hi", po::value(&o.box_hi)->default_value(o.box_hi), "space = grid: upper box corner x,y,z")(
        "dsmc.cells", po::value(&o.cells)->default_value(o.cells),
        "space = grid: cell counts nx,ny,nz, each >= 1 (a 1D problem is n,1,1 with periodic y and z). "
        "Ranks own slabs of cells along the axis with the most cells")(
        "dsmc.boundary", po::value(&o.boundary)->default_value(o.boundary),
        "space = grid: boundary per face xlo,xhi,ylo,yhi,zlo,zhi (1 word: all faces): periodic (both faces of an "
        "axis or neither) | specular | diffuse (Maxwell wall: wall_temperature, wall_velocity, accommodation) | "
        "inflow (emits the inflow_* Maxwellian flux, deletes leaving particles) | outflow (deletes leaving particles)")(
        "dsmc.wall_temperature", po::value(&o.wall_temperature)->default_value(o.wall_temperature),
        "space = grid: diffuse-wall temperature per face (1 or 6 values; K in si units), > 0 on diffuse faces")(
        "dsmc.wall_velocity", po::value(&o.wall_velocity)->default_value(o.wall_velocity),
        "space = grid: diffuse-wall velocity (1 number, 3 for every face, or 3 per face = 18; m/s in si units); "
        "its normal component is ignored")(
        "dsmc.accommodation", po::value(&o.accommodation)->default_value(o.accommodation),
        "space = grid: accommodation coefficient per face (1 or 6 values) in [0, 1]: the fraction of "
        "diffuse reflections at a diffuse wall (the rest specular)")(
        "dsmc.inflow_density", po::value(&o.inflow_density)->default_value(o.inflow_density),
        "space = grid: number density of the gas upstream of each inflow face (1 or 6 values, >= 0); "
        "empty = number_density")(
        "dsmc.inflow_temperature", po::value(&o.inflow_temperature)->default_value(o.inflow_temperature),
        "space = grid: temperature upstream of each inflow face (1 or 6 values), > 0; empty = temperature of species 0")(
        "dsmc.inflow_velocity", po::value(&o.inflow_velocity)->default_value(o.inflow_velocity),
        "space = grid: mean velocity upstream of each inflow face (1 number, 3, or 18 = 3 per face); "
        "empty = drift of species 0")(
        "dsmc.weight", po::value(&o.weight)->default_value(o.weight),
        "space = grid: physical molecules per simulated particle F_N, >= 0; 0 = number_density x box volume / "
        "particles")(
        "dsmc.collisions", po::value(&o.collisions)->default_value(o.collisions),
        "space = grid: true (NTC collisions per cell) | false (free molecular flight only)")(
        "dsmc.density_right", po::value(&o.density_right)->default_value(o.density_right),
        "space = grid, init = riemann: number density for x >= riemann_x0, >= 0 (0: vacuum)")(
        "dsmc.temperature_right", po::value(&o.temperature_right)->default_value(o.temperature_right),
        "space = grid, init = riemann: temperature for x >= riemann_x0 (1 value for every species), >= 0; "
        "empty = temperature")(
        "dsmc.drift_right", po::value(&o.drift_right)->default_value(o.drift_right),
        "space = grid, init = riemann: mean velocity for x >= riemann_x0 (1 or 3 numbers)")(
        "dsmc.riemann_x0", po::value(&o.riemann_x0)->default_value(o.riemann_x0),
        "space = grid, init = riemann: position of the initial discontinuity, inside [box_lo x, box_hi x]")(
        "dsmc.average_from", po::value(&o.average_from)->default_value(o.average_from),
        "space = grid: fields written at steps >= average_from are time averages over every step from "
        "average_from on (steady flows); -1 = instantaneous fields only")(
        "dsmc.balance_every", po::value(&o.balance_every)->default_value(o.balance_every),
        "space = grid: every balance_every steps, when the largest rank holds more than balance_threshold x the "
        "mean particle count, the slabs of cells are redrawn weighted by their particles and particles and cell "
        "state move to their new ranks (results unchanged, bit for bit); 0 = fixed equal slabs")(
        "dsmc.balance_threshold", po::value(&o.balance_threshold)->default_value(o.balance_threshold),
        "space = grid: the load imbalance (largest rank's particles / mean) above which balance_every rebalances, > 1");
}

namespace {

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    const auto e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

/// Comma list of words (1 or n entries; one entry is repeated n times when n > 0).
std::vector<std::string> parse_words(const std::string& key, const std::string& text, int n) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        item = trim(item);
        if (item.empty())
            throw OptionError(key, text, "empty entry in comma list");
        out.push_back(item);
    }
    if (out.empty())
        throw OptionError(key, text, "must not be empty");
    if (n > 0) {
        if (out.size() == 1 && n > 1)
            out.assign(static_cast<std::size_t>(n), out[0]);
        if (static_cast<int>(out.size()) != n) {
            throw OptionError(key, text,
                              "expected 1 or " + std::to_string(n) + " comma-separated entries (one per species)");
        }
    }
    return out;
}

std::vector<double> per_species(const std::string& key, const std::string& text, int n, double lo, double hi,
                                bool strict_lo) {
    auto v = parse_vector(key, text, n);
    for (double x : v) {
        if (!(strict_lo ? x > lo : x >= lo) || !(x <= hi)) {
            throw OptionError(key, text,
                              std::string("every entry must be ") + (strict_lo ? "> " : ">= ") + format_number(lo) +
                                  " and <= " + format_number(hi));
        }
    }
    return v;
}

int count_entries(const std::string& text) { return 1 + static_cast<int>(std::count(text.begin(), text.end(), ',')); }

/// 1 or 6 per-face values (faces xlo, xhi, ylo, yhi, zlo, zhi).
void per_face(const std::string& key, const std::string& text, double out[6]) {
    const int m = count_entries(text);
    if (m != 1 && m != 6)
        throw OptionError(key, text, "expected 1 or 6 values (one per face xlo,xhi,ylo,yhi,zlo,zhi)");
    const auto v = parse_vector(key, text, m);
    for (int f = 0; f < 6; ++f)
        out[f] = v[static_cast<std::size_t>(m == 1 ? 0 : f)];
}
/// 1, 3 or 18 numbers: a vector per face.
void per_face_vector(const std::string& key, const std::string& text, double out[6][3]) {
    const int m = count_entries(text);
    if (m != 1 && m != 3 && m != 18)
        throw OptionError(key, text, "expected 1, 3 or 18 numbers (a vector for every face, or 3 per face)");
    const auto v = parse_vector(key, text, m);
    for (int f = 0; f < 6; ++f)
        for (int k = 0; k < 3; ++k)
            out[f][k] = v[static_cast<std::size_t>(m == 1 ? 0 : m == 3 ? k : 3 * f + k)];
}

const char* const kFaceName[6] = {"xlo", "xhi", "ylo", "yhi", "zlo", "zhi"};

void validate_grid(const Options& o, Params& p) {
    GridParams& g = p.grid;
    g.enabled = true;
    if (p.scheme != Scheme::Ntc)
        throw OptionError("dsmc.scheme", o.scheme, "space = grid supports scheme = ntc only");
    const auto lo = parse_vector("dsmc.box_lo", o.box_lo, 3);
    const auto hi = parse_vector("dsmc.box_hi", o.box_hi, 3);
    const auto cells = parse_vector("dsmc.cells", o.cells, 3);
    for (int k = 0; k < 3; ++k) {
        const auto K = static_cast<std::size_t>(k);
        g.lo[k] = lo[K];
        g.hi[k] = hi[K];
        if (!(hi[K] > lo[K]))
            throw OptionError("dsmc.box_hi", o.box_hi,
                              std::string("box_hi must exceed box_lo (") + o.box_lo + ") on axis " + "xyz"[k]);
        if (!(cells[K] >= 1) || cells[K] != std::floor(cells[K]) || cells[K] > 1e9)
            throw OptionError("dsmc.cells", o.cells, "every cell count must be a whole number >= 1");
        g.cells[k] = static_cast<std::int64_t>(cells[K]);
    }
    if (g.cells[0] * g.cells[1] * g.cells[2] > (std::int64_t{1} << 31))
        throw OptionError("dsmc.cells", o.cells, "at most 2^31 cells");
    const auto words = parse_words("dsmc.boundary", o.boundary, 0);
    if (words.size() != 1 && words.size() != 6)
        throw OptionError("dsmc.boundary", o.boundary, "expected 1 or 6 words (faces xlo,xhi,ylo,yhi,zlo,zhi)");
    for (int f = 0; f < 6; ++f) {
        const auto& w = words[words.size() == 1 ? 0 : static_cast<std::size_t>(f)];
        check_choice("dsmc.boundary", w, {"periodic", "specular", "diffuse", "inflow", "outflow"});
        g.face[f] = w == "periodic"   ? Face::Periodic
                    : w == "specular" ? Face::Specular
                    : w == "diffuse"  ? Face::Diffuse
                    : w == "inflow"   ? Face::Inflow
                                      : Face::Outflow;
    }
    for (int k = 0; k < 3; ++k)
        if ((g.face[2 * k] == Face::Periodic) != (g.face[2 * k + 1] == Face::Periodic))
            throw OptionError("dsmc.boundary", o.boundary,
                              std::string("periodic on one face of axis ") + "xyz"[k] + " only (" + kFaceName[2 * k] +
                                  ", " + kFaceName[2 * k + 1] + "): both or neither");
    per_face("dsmc.wall_temperature", o.wall_temperature, g.wall_temperature);
    per_face_vector("dsmc.wall_velocity", o.wall_velocity, g.wall_velocity);
    per_face("dsmc.accommodation", o.accommodation, g.accommodation);
    const std::string T0 = format_number(p.temperature[0]);
    const std::string u0 = format_number(p.drift[0][0]) + "," + format_number(p.drift[0][1]) + "," +
                           format_number(p.drift[0][2]);
    per_face("dsmc.inflow_density", o.inflow_density.empty() ? format_number(p.number_density) : o.inflow_density,
             g.inflow_density);
    per_face("dsmc.inflow_temperature", o.inflow_temperature.empty() ? T0 : o.inflow_temperature,
             g.inflow_temperature);
    per_face_vector("dsmc.inflow_velocity", o.inflow_velocity.empty() ? u0 : o.inflow_velocity, g.inflow_velocity);
    for (int f = 0; f < 6; ++f) {
        const std::string face = std::string(" (face ") + kFaceName[f] + ")";
        if (g.face[f] == Face::Diffuse && !(g.wall_temperature[f] > 0.0))
            throw OptionError("dsmc.wall_temperature", o.wall_temperature, "must be > 0 on diffuse faces" + face);
        if (!(g.accommodation[f] >= 0.0 && g.accommodation[f] <= 1.0))
            throw OptionError("dsmc.accommodation", o.accommodation, "every entry must lie in [0, 1]");
        if (!(g.inflow_density[f] >= 0.0))
            throw OptionError("dsmc.inflow_density", o.inflow_density, "must be >= 0");
        if (g.face[f] == Face::Inflow && !(g.inflow_temperature[f] > 0.0))
            throw OptionError("dsmc.inflow_temperature", o.inflow_temperature, "must be > 0 on inflow faces" + face);
    }
    if (!(o.weight >= 0.0) || !std::isfinite(o.weight))
        throw OptionError("dsmc.weight", format_number(o.weight), "must be >= 0 (0: derived from particles)");
    double volume = 1.0;
    for (int k = 0; k < 3; ++k)
        volume *= g.hi[k] - g.lo[k];
    const bool from_file = p.init[0] == Init::File;
    // init = file with weight = 0: the driver sets number_density x volume / the file's particles
    g.weight = o.weight > 0.0 || from_file ? o.weight : p.number_density * volume / static_cast<double>(p.particles);
    // Memory before anything is allocated: per cell sums, majorants and the CSR index (every rank
    // also loops over all cells once at init); the initial particles (about 200 bytes each).
    const double n_cells = static_cast<double>(g.cells[0]) * static_cast<double>(g.cells[1]) * static_cast<double>(g.cells[2]);
    check_memory("dsmc.cells", o.cells, n_cells * (256.0 + 64.0 * p.n_species));
    const double n_max = std::max(p.number_density, o.density_right);
    if (g.weight > 0.0)
        check_memory("dsmc.weight", format_number(g.weight), n_max * volume / g.weight * 200.0);
    check_choice("dsmc.collisions", o.collisions, {"true", "false"});
    g.collisions = o.collisions == "true";
    g.riemann = o.init == "riemann";
    if (!(o.density_right >= 0.0) || !std::isfinite(o.density_right))
        throw OptionError("dsmc.density_right", format_number(o.density_right), "must be >= 0");
    g.density_right = o.density_right;
    g.temperature_right =
        o.temperature_right.empty() ? p.temperature[0] : parse_vector("dsmc.temperature_right", o.temperature_right, 1)[0];
    if (!(g.temperature_right >= 0.0))
        throw OptionError("dsmc.temperature_right", o.temperature_right, "must be >= 0");
    const auto ur = parse_vector("dsmc.drift_right", o.drift_right, 3);
    for (int k = 0; k < 3; ++k)
        g.drift_right[k] = ur[static_cast<std::size_t>(k)];
    if (g.riemann && !(o.riemann_x0 >= g.lo[0] && o.riemann_x0 <= g.hi[0]))
        throw OptionError("dsmc.riemann_x0", format_number(o.riemann_x0), "must lie in [box_lo x, box_hi x]");
    g.riemann_x0 = o.riemann_x0;
    check_range("dsmc.average_from", o.average_from, std::int64_t{-1}, std::int64_t{1} << 60);
    g.average_from = o.average_from;
    check_range("dsmc.balance_every", o.balance_every, std::int64_t{0}, std::int64_t{1} << 60);
    g.balance_every = o.balance_every;
    if (!(o.balance_threshold > 1.0) || !std::isfinite(o.balance_threshold))
        throw OptionError("dsmc.balance_threshold", format_number(o.balance_threshold), "must be > 1");
    g.balance_threshold = o.balance_threshold;
}

} // namespace

std::vector<std::int64_t> split_counts(std::int64_t n, const std::vector<double>& fraction,
                                       const std::vector<std::string>& names) {
    // Largest remainder (Hamilton): floor(f n) each, the rest to the largest fractional parts
    // (ties to the lower species index).
    const std::size_t ns = fraction.size();
    std::vector<std::int64_t> c(ns);
    std::vector<std::pair<double, std::size_t>> rem(ns);
    std::int64_t total = 0;
    for (std::size_t s = 0; s < ns; ++s) {
        const double x = fraction[s] * static_cast<double>(n);
        c[s] = static_cast<std::int64_t>(std::floor(x));
        rem[s] = {x - std::floor(x), s};
        total += c[s];
    }
    std::stable_sort(rem.begin(), rem.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t k = 0; total < n; ++k, ++total)
        ++c[rem[k % ns].second];
    for (std::size_t s = 0; s < ns; ++s) {
        if (c[s] < 1) {
            throw OptionError("dsmc.particles", std::to_string(n),
                              "too few particles: species '" + names[s] + "' (fraction " + format_number(fraction[s]) +
                                  ") would get none");
        }
    }
    return c;
}

Params validate(const Options& o, double dt) {
    Params p;
    check_positive("run.dt", dt);
    p.dt = dt;
    check_choice("dsmc.scheme", o.scheme, {"nanbu_babovsky", "ntc"});
    p.scheme = o.scheme == "ntc" ? Scheme::Ntc : Scheme::NanbuBabovsky;
    check_choice("dsmc.kernel", o.kernel, {"maxwell", "hard_sphere", "vhs", "vss"});
    p.kernel = o.kernel == "maxwell"       ? Kernel::Maxwell
               : o.kernel == "hard_sphere" ? Kernel::HardSphere
               : o.kernel == "vhs"         ? Kernel::Vhs
                                           : Kernel::Vss;
    check_choice("dsmc.units", o.units, {"normalized", "si"});
    p.units = o.units == "si" ? Units::Si : Units::Normalized;
    p.k_boltzmann = p.units == Units::Si ? kBoltzmannSi : 1.0;
    check_positive("dsmc.number_density", o.number_density);
    p.number_density = o.number_density;

    // Species names first: every per-species list is checked against their number.
    p.species = parse_words("dsmc.species", o.species, 0);
    if (p.species.size() > static_cast<std::size_t>(kMaxSpecies)) {
        throw OptionError("dsmc.species", o.species, "at most " + std::to_string(kMaxSpecies) + " species");
    }
    std::set<std::string> seen;
    for (const auto& s : p.species) {
        if (!std::all_of(s.begin(), s.end(),
                         [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; })) {
            throw OptionError("dsmc.species", o.species,
                              "species name '" + s + "' may hold only letters, digits and _");
        }
        if (!seen.insert(s).second)
            throw OptionError("dsmc.species", o.species, "species name '" + s + "' given twice");
    }
    const int ns = static_cast<int>(p.species.size());
    p.n_species = ns;
    p.mass = per_species("dsmc.mass", o.mass, ns, 0.0, 1e300, true);

    // Kernel parameters (checked only where the kernel uses them).
    if (p.kernel == Kernel::Maxwell) {
        check_positive("dsmc.collision_rate", o.collision_rate);
    }
    p.collision_rate = o.collision_rate;
    p.d_ref.assign(static_cast<std::size_t>(ns), 1.0);
    p.omega.assign(static_cast<std::size_t>(ns), p.kernel == Kernel::Maxwell ? 1.0 : 0.5);
    p.alpha.assign(static_cast<std::size_t>(ns), 1.0);
    if (p.kernel != Kernel::Maxwell)
        p.d_ref = per_species("dsmc.d_ref", o.d_ref, ns, 0.0, 1e300, true);
    if (p.kernel == Kernel::Vhs || p.kernel == Kernel::Vss) {
        p.omega = per_species("dsmc.omega", o.omega, ns, 0.5, 1.0, false);
        check_positive("dsmc.T_ref", o.T_ref);
    }
    if (p.kernel == Kernel::Vss)
        p.alpha = per_species("dsmc.alpha", o.alpha, ns, 1.0, 2.0, false);
    p.T_ref = o.T_ref;

    // Initial condition.
    check_choice("dsmc.space", o.space, {"homogeneous", "grid"});
    const bool grid = o.space == "grid";
    if (grid) // maxwellian (the default) is the uniform Maxwellian here
        check_choice("dsmc.init", o.init, {"uniform", "riemann", "maxwellian", "file"});
    const auto init = !grid              ? parse_words("dsmc.init", o.init, ns)
                      : o.init == "file" ? std::vector<std::string>{"file"}
                                         : std::vector<std::string>(static_cast<std::size_t>(ns), "maxwellian");
    p.init.clear();
    for (const auto& w : init) {
        check_choice("dsmc.init", w, {"maxwellian", "bkw", "two_beams", "bimaxwellian", "file"});
        p.init.push_back(w == "maxwellian"     ? Init::Maxwellian
                         : w == "bkw"          ? Init::Bkw
                         : w == "two_beams"    ? Init::TwoBeams
                         : w == "bimaxwellian" ? Init::Bimaxwellian
                                               : Init::File);
    }
    const bool from_file = std::count(p.init.begin(), p.init.end(), Init::File) > 0;
    if (from_file && count_entries(o.init) != 1) {
        throw OptionError("dsmc.init", o.init, "file must be the only entry (the file holds every species)");
    }
    if (from_file && o.init_file.empty())
        throw OptionError("dsmc.init_file", o.init_file, "required with init = file");
    p.temperature = per_species("dsmc.temperature", o.temperature, ns, 0.0, 1e300, false);
    {
        const std::string* axis_text[3] = {&o.temperature_x, &o.temperature_y, &o.temperature_z};
        std::vector<double>* axis[3] = {&p.temperature_x, &p.temperature_y, &p.temperature_z};
        for (int k = 0; k < 3; ++k) {
            const std::string key = std::string("dsmc.temperature_") + "xyz"[k];
            p.axis_temperature_given[static_cast<std::size_t>(k)] = !axis_text[k]->empty();
            *axis[k] = axis_text[k]->empty() ? p.temperature : per_species(key, *axis_text[k], ns, 0.0, 1e300, false);
        }
    }
    p.beam_speed = per_species("dsmc.beam_speed", o.beam_speed, ns, 0.0, 1e300, false);
    {
        const int m = count_entries(o.drift);
        if (m != 1 && m != 3 && m != 3 * ns) {
            throw OptionError("dsmc.drift", o.drift,
                              "expected 1, 3 or 3 x (number of species) = " + std::to_string(3 * ns) + " numbers");
        }
        const auto v = parse_vector("dsmc.drift", o.drift, m);
        p.drift.assign(static_cast<std::size_t>(ns), {0.0, 0.0, 0.0});
        for (int s = 0; s < ns; ++s)
            for (int k = 0; k < 3; ++k)
                p.drift[s][k] = m == 1 ? v[0] : m == 3 ? v[k] : v[3 * s + k];
    }
    if (!(o.bkw_t0 >= kBkwMinTime * (1 - 1e-12)) || !std::isfinite(o.bkw_t0)) {
        throw OptionError("dsmc.bkw_t0", format_number(o.bkw_t0),
                          "must be >= 6 ln(5/2) = 5.4977 (K >= 3/5 keeps the BKW density non-negative)");
    }
    p.bkw_t0 = std::max(o.bkw_t0, kBkwMinTime);

    check_range("dsmc.shuffle_every", o.shuffle_every, std::int64_t{1}, std::int64_t{1} << 40);
    p.shuffle_every = o.shuffle_every;
    if (!from_file || grid) { // (space = grid: the inflow gas's composition)
        p.fraction = per_species("dsmc.fraction", o.fraction, ns, 0.0, 1.0, true);
        double sum = 0;
        for (double f : p.fraction)
            sum += f;
        if (std::fabs(sum - 1.0) > 1e-6)
            throw OptionError("dsmc.fraction", o.fraction,
                              "fractions must sum to 1 (they sum to " + format_number(sum) + ")");
        for (double& f : p.fraction)
            f /= sum;
    }
    if (!from_file) {
        check_range("dsmc.particles", o.particles, std::int64_t{2}, std::int64_t{1} << 40);
        p.particles = o.particles;
        p.count = split_counts(p.particles, p.fraction, p.species);
    } else if (!grid) {
        p.fraction.assign(static_cast<std::size_t>(ns), 1.0 / ns); // replaced by the file's counts
        p.count.assign(static_cast<std::size_t>(ns), 0);
    }

    // Nanbu–Babovsky: each pair collides with probability P = n sigma_T g dt (Babovsky 1989), which
    // must not exceed 1. For Maxwell molecules n sigma_T g = collision_rate for every pair, so the
    // bound is exact here; for the other kernels the engine checks it from the initial velocities
    // and at every step.
    if (p.scheme == Scheme::NanbuBabovsky && p.kernel == Kernel::Maxwell && p.collision_rate * dt > 1.0) {
        throw OptionError(
            "run.dt", format_number(dt),
            "Nanbu-Babovsky collision probability collision_rate * dt = " + format_number(p.collision_rate * dt) +
                " > 1: needs dt <= 1/collision_rate = " + format_number(1.0 / p.collision_rate));
    }
    if (grid)
        validate_grid(o, p);
    return p;
}

} // namespace kinflow::dsmc
