#pragma once
// Deck keys of the [ks] section (names are a contract: scripts and checks use them).
#include <cstdint>
#include <string>

#include <boost/program_options/options_description.hpp>

namespace kinflow::ks {

struct Options {
    int dim = 2;
    std::int64_t particles = 4096;
    double mass = 1.0;
    double chi = 1.0;
    double mu = 1.0;
    double delta = 0.05;
    std::string init = "gaussian"; ///< gaussian | uniform_ball | two_bumps | file
    double init_std = 1.0;
    double init_separation = 1.0;
    std::string init_file;
    int init_snapshot = -1;
    std::string flow = "none"; ///< none | shear | cellular | kolmogorov | abc
    double flow_amplitude = 1.0;
    std::string model = "parabolic_elliptic"; ///< parabolic_elliptic | parabolic_parabolic
    std::string solver = "direct";            ///< direct | mesh (parabolic_elliptic)
    int mesh_cells = 0;                       ///< grid cells per axis; 0: 256 (2D), 64 (3D)
    int mesh_order = 2;                       ///< assignment order: 2 (cloud-in-cell) | 3 (triangular-shaped cloud)
    double p3m_cutoff = 0.0;                  ///< short-range correction radius in grid spacings (0: off)
    std::string mesh_fft = "auto";            ///< auto | replicated | distributed (mesh FFTs over ranks)
    double epsilon = 1.0;                     ///< parabolic_parabolic: eps in eps c_t = lap c - k^2 c + rho
    double k = 0.0;                           ///< parabolic_parabolic: screening k
    int modes = 16;                           ///< parabolic_parabolic: H, modes |j_k| <= H/2 per axis
    double box = 6.283185307179586;           ///< parabolic_parabolic: periodic box side L
    std::string field_init = "elliptic";      ///< parabolic_parabolic: elliptic | zero
    std::string exchange = "allgather";       ///< allgather | ring
    bool adaptive_dt = false;
    double blowup_fraction = 0.1;
    std::int64_t blowup_check_every = 10;
};

enum class Init { Gaussian, UniformBall, TwoBumps, File };
enum class Flow { None, Shear, Cellular, Kolmogorov, Abc };
enum class Exchange { Allgather, Ring };
enum class Model { ParabolicElliptic, ParabolicParabolic };
enum class Solver { Direct, Mesh };
enum class MeshFft { Auto, Replicated, Distributed };
enum class FieldInit { Elliptic, Zero };

/// Options checked and converted.
struct Params {
    int dim = 2;
    std::int64_t particles = 0;
    double mass = 1.0;   ///< total mass M; each particle carries M/N
    double chi = 1.0;    ///< chemotactic sensitivity
    double mu = 1.0;     ///< diffusivity
    double delta = 0.05; ///< blob radius
    Init init = Init::Gaussian;
    double init_std = 1.0;
    double init_separation = 1.0;
    Flow flow = Flow::None;
    double flow_amplitude = 1.0;
    Exchange exchange = Exchange::Allgather;
    Model model = Model::ParabolicElliptic;
    Solver solver = Solver::Direct;
    int mesh_cells = 256; ///< resolved (never 0)
    int mesh_order = 2;
    double p3m_cutoff = 0.0;
    MeshFft mesh_fft = MeshFft::Auto; ///< resolved against the rank count by the mesh solver
    double epsilon = 1.0;
    double k = 0.0;
    int modes = 16;
    double box = 6.283185307179586;
    FieldInit field_init = FieldInit::Elliptic;
    bool adaptive_dt = false;
    double blowup_fraction = 0.1; ///< 0: no blow-up detection
    std::int64_t blowup_check_every = 10;
};

/// max over x of |∇K_δ(x)|: 1/(4πδ) in 2D, 2/(3^{3/2}·4π·δ²) ≈ 0.0306/δ² in 3D (VERIFICATION.md).
double kernel_gradient_bound(int dim, double delta);
/// Largest run.dt with χ M max|∇K_δ| dt <= δ/4 (no particle moves more than a quarter blob
/// radius per step by the interaction); +infinity when χ M = 0.
double max_stable_dt(const Params& p);

void describe(boost::program_options::options_description& d, Options& o);
/// Check every key (and the time step against the kernel bound unless adaptive_dt); throws
/// OptionError naming the key and the value.
Params validate(const Options& o, double dt);

} // namespace kinflow::ks
