#pragma once
// Deck keys of the [langevin] section (names are a contract: scripts and checks use them).
#include <array>
#include <cstdint>
#include <string>

#include <boost/program_options/options_description.hpp>

namespace kinflow::langevin {

struct Options {
    int dim = 1;
    std::int64_t particles = 10000;
    std::string dynamics = "overdamped"; ///< overdamped | underdamped
    std::string potential = "harmonic";  ///< none | harmonic | double_well
    double stiffness = 1.0;
    std::string center = "0";
    double temperature = 1.0;
    double friction = 1.0;
    std::string interaction = "none"; ///< none | harmonic
    double interaction_strength = 0.0;
    std::string init = "gaussian"; ///< gaussian | uniform | file
    std::string init_mean = "0";
    std::string init_std = "1";
    std::string init_file;
    int init_snapshot = -1;
};

enum class Dynamics { Overdamped, Underdamped };
enum class Potential { None, Harmonic, DoubleWell };
enum class Init { Gaussian, Uniform, File };

/// Options checked and converted: enums, vectors broadcast to 3 components.
struct Params {
    int dim = 1;
    std::int64_t particles = 0;
    Dynamics dynamics = Dynamics::Overdamped;
    Potential potential = Potential::Harmonic;
    double stiffness = 1.0;
    std::array<double, 3> center{};
    double temperature = 1.0;
    double friction = 1.0;
    double kappa = 0.0; ///< mean-field strength (0 without interaction)
    Init init = Init::Gaussian;
    std::array<double, 3> init_mean{};
    std::array<double, 3> init_std{};
};

void describe(boost::program_options::options_description& d, Options& o);
/// Check every key (and the time step against the stability bound); throws OptionError.
Params validate(const Options& o, double dt);

} // namespace kinflow::langevin
