#pragma once
// Deck keys of the [dsmc] section (names are a contract: scripts and checks use them).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/program_options/options_description.hpp>

namespace kinflow::dsmc {

/// Most species a run may have (per-pair tables are fixed-size arrays copied into kernels).
inline constexpr int kMaxSpecies = 8;
/// Boltzmann's constant in J/K (units = si; exact since the 2019 SI).
inline constexpr double kBoltzmannSi = 1.380649e-23;
/// 6 ln(5/2): the BKW time at which K = 3/5, the earliest state with a non-negative density.
inline constexpr double kBkwMinTime = 5.497744391244931;

struct Options {
    std::string scheme = "ntc";     ///< nanbu_babovsky | ntc
    std::string kernel = "maxwell"; ///< maxwell | hard_sphere | vhs | vss
    double collision_rate = 1.0;    ///< maxwell: per-particle collision frequency ν
    std::string d_ref = "1";        ///< per species (comma list)
    std::string omega = "0.5";      ///< per species
    std::string alpha = "1";        ///< per species
    double T_ref = 1.0;
    std::string units = "normalized"; ///< normalized | si
    double number_density = 1.0;
    std::string species = "gas";
    std::string mass = "1";
    std::string fraction = "1";
    std::string init = "maxwellian"; ///< per species: maxwellian | bkw | two_beams | bimaxwellian; or file
    std::string temperature = "1";
    std::string temperature_x; ///< bimaxwellian: x-axis temperature per species (empty: temperature)
    std::string temperature_y; ///< bimaxwellian: y-axis temperature per species (empty: temperature)
    std::string temperature_z; ///< bimaxwellian: z-axis temperature per species (empty: temperature)
    std::string drift = "0";
    std::string beam_speed = "1";
    double bkw_t0 = kBkwMinTime;
    std::int64_t particles = 10000;
    std::int64_t shuffle_every = 10;
    std::string init_file;
    int init_snapshot = -1;

    // space = grid (spatial engine, spatial.hpp); keys unused with space = homogeneous
    std::string space = "homogeneous"; ///< homogeneous | grid
    std::string box_lo = "0,0,0";
    std::string box_hi = "1,1,1";
    std::string cells = "1,1,1";
    std::string boundary = "periodic"; ///< 1 or 6 words: xlo,xhi,ylo,yhi,zlo,zhi
    std::string wall_temperature = "1";
    std::string wall_velocity = "0";
    std::string accommodation = "1";
    std::string inflow_density;     ///< empty: number_density
    std::string inflow_temperature; ///< empty: temperature
    std::string inflow_velocity;    ///< empty: drift
    double weight = 0.0;            ///< 0: number_density * volume / particles
    std::string collisions = "true"; ///< true | false
    double density_right = 0.0;
    std::string temperature_right; ///< empty: temperature
    std::string drift_right = "0";
    double riemann_x0 = 0.5;
    std::int64_t average_from = -1;
    std::int64_t balance_every = 0;
    double balance_threshold = 1.2;
};

/// Boundary condition of one face of the spatial engine's box.
enum class Face { Periodic, Specular, Diffuse, Inflow, Outflow };

/// The spatial engine's checked keys (space = grid). Faces are ordered xlo, xhi, ylo, yhi, zlo, zhi.
struct GridParams {
    bool enabled = false;
    double lo[3] = {0, 0, 0}, hi[3] = {1, 1, 1};
    std::int64_t cells[3] = {1, 1, 1};
    Face face[6] = {Face::Periodic, Face::Periodic, Face::Periodic, Face::Periodic, Face::Periodic, Face::Periodic};
    double wall_temperature[6] = {1, 1, 1, 1, 1, 1};
    double wall_velocity[6][3] = {};
    double accommodation[6] = {1, 1, 1, 1, 1, 1};
    double inflow_density[6] = {};
    double inflow_temperature[6] = {};
    double inflow_velocity[6][3] = {};
    double weight = 1.0; ///< physical molecules per simulated particle
    bool collisions = true;
    bool riemann = false;
    double density_right = 0.0, temperature_right = 0.0, drift_right[3] = {0, 0, 0};
    double riemann_x0 = 0.5;
    std::int64_t average_from = -1; ///< first step of the time average (-1: instantaneous fields only)
    std::int64_t balance_every = 0;  ///< steps between load checks (0: slabs fixed)
    double balance_threshold = 1.2;  ///< rebalance when the largest rank holds more than this x the mean
};

enum class Scheme { NanbuBabovsky, Ntc };
enum class Kernel { Maxwell, HardSphere, Vhs, Vss };
enum class Units { Normalized, Si };
enum class Init { Maxwellian, Bkw, TwoBeams, Bimaxwellian, File };

/// Options checked and converted: enums, per-species lists resolved to one entry per species.
struct Params {
    Scheme scheme = Scheme::Ntc;
    Kernel kernel = Kernel::Maxwell;
    Units units = Units::Normalized;
    double k_boltzmann = 1.0;    ///< 1 (normalized) or kBoltzmannSi
    double number_density = 1.0; ///< n, total over species
    double collision_rate = 1.0; ///< ν (maxwell)
    double T_ref = 1.0;
    int n_species = 1;
    std::vector<std::string> species{"gas"};
    std::vector<double> mass{1.0}, fraction{1.0}, d_ref{1.0}, omega{0.5}, alpha{1.0};
    std::vector<Init> init{Init::Maxwellian};
    std::vector<double> temperature{1.0}, temperature_x{1.0}, temperature_y{1.0}, temperature_z{1.0}, beam_speed{1.0};
    /// Whether dsmc.temperature_x, _y, _z was given; an axis not given follows dsmc.temperature.
    std::array<bool, 3> axis_temperature_given{{false, false, false}};
    std::vector<std::array<double, 3>> drift{{0.0, 0.0, 0.0}};
    double bkw_t0 = kBkwMinTime;
    std::int64_t particles = 0;
    std::vector<std::int64_t> count{0}; ///< particles per species (ids species by species)
    std::int64_t shuffle_every = 10;
    double dt = 1e-3; ///< run.dt (the Nanbu–Babovsky probability check needs it)
    GridParams grid;  ///< space = grid
};

void describe(boost::program_options::options_description& d, Options& o);
/// Check every key (and, for Nanbu–Babovsky with the Maxwell kernel, the time step against
/// collision_rate · dt <= 1); throws OptionError naming the key.
Params validate(const Options& o, double dt);
/// Particles per species for `n` particles and the given fractions (largest remainder, so they
/// sum to n). Throws OptionError (key dsmc.particles) when a species would get none.
std::vector<std::int64_t> split_counts(std::int64_t n, const std::vector<double>& fraction,
                                       const std::vector<std::string>& names);

} // namespace kinflow::dsmc
