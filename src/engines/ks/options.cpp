#include "kinflow/engines/ks/options.hpp"

#include <cmath>
#include <limits>

#include <boost/program_options.hpp>

#include "kinflow/core/compat.hpp"
#include "kinflow/core/options.hpp"

namespace kinflow::ks {

namespace po = boost::program_options;

double kernel_gradient_bound(int dim, double delta) {
    // 2D: |∇K_δ| = r / (2π(r²+δ²)), largest at r = δ. 3D: r / (4π(r²+δ²)^{3/2}), largest at r = δ/√2.
    if (dim == 2)
        return 1.0 / (4.0 * kPi * delta);
    return 2.0 / (std::pow(3.0, 1.5) * 4.0 * kPi * delta * delta);
}

double max_stable_dt(const Params& p) {
    const double a = p.chi * p.mass * kernel_gradient_bound(p.dim, p.delta);
    return a > 0 ? 0.25 * p.delta / a : std::numeric_limits<double>::infinity();
}

void describe(po::options_description& d, Options& o) {
    d.add_options()("ks.dim", po::value(&o.dim)->default_value(o.dim), "spatial dimension: 2 | 3")(
        "ks.particles", po::value(&o.particles)->default_value(o.particles),
        "number of blob particles N, >= 1 (ignored with init = file: the file decides); each carries mass M/N")(
        "ks.mass", po::value(&o.mass)->default_value(o.mass),
        "total mass M = integral of rho, > 0 (2D critical mass: 8 pi mu / chi)")(
        "ks.chi", po::value(&o.chi)->default_value(o.chi),
        "chemotactic sensitivity chi in rho_t + div(rho v) = mu lap rho - chi div(rho grad c), -lap c = rho; >= 0")(
        "ks.mu", po::value(&o.mu)->default_value(o.mu), "diffusivity mu (noise sqrt(2 mu) dW), >= 0")(
        "ks.delta", po::value(&o.delta)->default_value(o.delta),
        "blob radius delta of the regularized kernel, > 0: grad K_delta(x) = -x/(2 pi (|x|^2+delta^2)) in 2D, "
        "-x/(4 pi (|x|^2+delta^2)^(3/2)) in 3D; with model = parabolic_parabolic only the radius of the collapse "
        "check")(
        "ks.init", po::value(&o.init)->default_value(o.init),
        "initial positions: gaussian (centred, per-axis std init_std) | uniform_ball (centred ball of per-axis "
        "std init_std, radius init_std sqrt(dim+2)) | two_bumps (half the particles in each of two gaussians of "
        "std init_std centred at +-init_separation/2 on the x axis) | file (init_file)")(
        "ks.init_std", po::value(&o.init_std)->default_value(o.init_std),
        "per-axis standard deviation of the initial density (length), > 0")(
        "ks.init_separation", po::value(&o.init_separation)->default_value(o.init_separation),
        "distance between the two bump centres (init = two_bumps; length), >= 0")(
        "ks.init_file", po::value(&o.init_file)->default_value(o.init_file),
        "kinflow HDF5 file with the initial positions (init = file; its dim must equal ks.dim)")(
        "ks.init_snapshot", po::value(&o.init_snapshot)->default_value(o.init_snapshot),
        "snapshot index in init_file; negative counts from the end (-1 = last)")(
        "ks.flow", po::value(&o.flow)->default_value(o.flow),
        "prescribed divergence-free advection v (A = flow_amplitude): none | shear (v = A (y, 0[, 0])) | "
        "cellular (2D: v = A (sin x cos y, -cos x sin y)) | kolmogorov (3D: v = A (sin z, sin x, sin y)) | "
        "abc (3D: v = A (sin z + cos y, sin x + cos z, sin y + cos x))")(
        "ks.flow_amplitude", po::value(&o.flow_amplitude)->default_value(o.flow_amplitude),
        "flow amplitude A (velocity), finite, |A| <= 1e6")(
        "ks.model", po::value(&o.model)->default_value(o.model),
        "chemoattractant equation: parabolic_elliptic (-lap c = rho in free space; blob particles, ks.solver) | "
        "parabolic_parabolic (eps c_t = lap c - k^2 c + rho on the periodic box [-box/2, box/2)^dim; c kept as "
        "Fourier modes |j_k| <= modes/2, implicit Euler in Fourier space, particles drift by chi grad c (SIPF, "
        "arXiv 2309.13554); positions are wrapped into the box after every step)")(
        "ks.solver", po::value(&o.solver)->default_value(o.solver),
        "interaction sum (model = parabolic_elliptic): direct (all pairs, O(N^2) per step, bit-identical for any "
        "rank count) | mesh (particle-mesh: counts deposited on a mesh_cells^dim grid over the particles' bounding "
        "box, convolved with grad K_delta sampled on the grid by zero-padded FFTs (Hockney, FFTW), interpolated back "
        "with the same assignment; O(N + G log G); the grid is summed over the ranks and transformed as ks.mesh_fft "
        "says)")(
        "ks.mesh_cells", po::value(&o.mesh_cells)->default_value(o.mesh_cells),
        "solver = mesh: grid cells per axis (the FFTs run on twice that); 0 = 256 in 2D, 64 in 3D; else 16..4096 "
        "(2D), 16..256 (3D). The spacing is the bounding box's largest side / (mesh_cells - 4), so accuracy needs it "
        "well below delta")(
        "ks.mesh_order", po::value(&o.mesh_order)->default_value(o.mesh_order),
        "solver = mesh: assignment/interpolation order, 2 (cloud-in-cell, 2^dim nodes) | 3 (triangular-shaped "
        "cloud, 3^dim nodes)")(
        "ks.p3m_cutoff", po::value(&o.p3m_cutoff)->default_value(o.p3m_cutoff),
        "solver = mesh: P3M short-range correction radius r_c in grid spacings, 0 (off) or 1..16: pairs closer "
        "than r_c get the exact blob interaction instead of the mesh's (cell list over all positions, "
        "allgathered; cost ~ N x neighbours x (mesh_order^dim)^2), so the result approaches the direct sum")(
        "ks.mesh_fft", po::value(&o.mesh_fft)->default_value(o.mesh_fft),
        "solver = mesh: how the zero-padded FFTs run over the ranks: replicated (every rank holds the whole "
        "(2 mesh_cells)^dim grid, the deposit is summed with MPI_Allreduce and every rank runs the full FFTs) | "
        "distributed (FFTW-MPI slab decomposition along the first axis: the deposit is summed with "
        "MPI_Reduce_scatter into each rank's slab, the transforms and the kernel multiply run on the slabs, the "
        "field is assembled with MPI_Allgatherv; less FFT time and memory per rank) | auto (distributed when "
        "ranks > 1 and the padded grid has at least 1024^2 (2D) / 128^3 (3D) points, i.e. mesh_cells >= 512 "
        "(2D) / 64 (3D); replicated otherwise). Both agree to round-off")(
        "ks.epsilon", po::value(&o.epsilon)->default_value(o.epsilon),
        "model = parabolic_parabolic: eps >= 0 in eps c_t = lap c - k^2 c + rho (0: the elliptic limit "
        "-lap c + k^2 c = rho, mean dropped when k = 0)")(
        "ks.k", po::value(&o.k)->default_value(o.k),
        "model = parabolic_parabolic: screening (degradation) k >= 0 (inverse length)")(
        "ks.modes", po::value(&o.modes)->default_value(o.modes),
        "model = parabolic_parabolic: H, even, Fourier modes j with |j_k| <= H/2 per axis ((H+1)^dim modes; "
        "cost O(N (H+1)^dim) per step); 2..256 (2D), 2..64 (3D)")(
        "ks.box", po::value(&o.box)->default_value(o.box),
        "model = parabolic_parabolic: side L > 0 of the periodic box [-L/2, L/2)^dim (length)")(
        "ks.field_init", po::value(&o.field_init)->default_value(o.field_init),
        "model = parabolic_parabolic: c before the first step: elliptic (c_hat_j = rho_hat_j/(|2 pi j/L|^2 + k^2) "
        "from the initial particles; the j = 0 mode 0 when k = 0) | zero")(
        "ks.exchange", po::value(&o.exchange)->default_value(o.exchange),
        "how ranks see every position: allgather (all N positions on every rank) | ring (one rank's block at a "
        "time, O(N/P) memory per rank); both sum in global-id order, so results are bit-identical")(
        "ks.adaptive_dt", po::value(&o.adaptive_dt)->default_value(o.adaptive_dt),
        "false: run.dt must satisfy the kernel bound chi M max|grad K_delta| dt <= delta/4 (deck error otherwise); "
        "true: each step uses min(run.dt, delta / (4 max_i |interaction drift_i|)) and snapshot times are the "
        "true simulated times")(
        "ks.blowup_fraction", po::value(&o.blowup_fraction)->default_value(o.blowup_fraction),
        "collapse criterion: the run stops cleanly (final snapshot, exit 0) once this fraction of the mass lies "
        "within delta of the densest particle; in (0, 1], or 0 to never stop. A collapsed 2D aggregate (about the "
        "critical mass over a few delta) holds ~0.15 of M = 10 pi within delta, hence the default 0.1")(
        "ks.blowup_check_every", po::value(&o.blowup_check_every)->default_value(o.blowup_check_every),
        "steps between collapse checks, >= 1 (a checked step counts delta-neighbours in its pair sum, which makes that "
        "sum ~1.3x (3D) to ~1.8x (2D) slower)");
}

Params validate(const Options& o, double dt) {
    Params p;
    if (o.dim != 2 && o.dim != 3)
        throw OptionError("ks.dim", std::to_string(o.dim), "must be 2 or 3");
    p.dim = o.dim;
    check_positive("ks.mass", o.mass);
    p.mass = o.mass;
    check_range("ks.chi", o.chi, 0.0, 1e12);
    p.chi = o.chi;
    check_range("ks.mu", o.mu, 0.0, 1e12);
    p.mu = o.mu;
    check_positive("ks.delta", o.delta);
    p.delta = o.delta;
    check_choice("ks.init", o.init, {"gaussian", "uniform_ball", "two_bumps", "file"});
    p.init = o.init == "gaussian"       ? Init::Gaussian
             : o.init == "uniform_ball" ? Init::UniformBall
             : o.init == "two_bumps"    ? Init::TwoBumps
                                        : Init::File;
    check_positive("ks.init_std", o.init_std);
    p.init_std = o.init_std;
    check_range("ks.init_separation", o.init_separation, 0.0, 1e12);
    p.init_separation = o.init_separation;
    if (p.init == Init::File) {
        if (o.init_file.empty())
            throw OptionError("ks.init_file", o.init_file, "required with init = file");
    } else {
        check_range("ks.particles", o.particles, std::int64_t{1}, std::int64_t{1} << 40);
    }
    p.particles = o.particles;
    check_choice("ks.flow", o.flow, {"none", "shear", "cellular", "kolmogorov", "abc"});
    p.flow = o.flow == "none"         ? Flow::None
             : o.flow == "shear"      ? Flow::Shear
             : o.flow == "cellular"   ? Flow::Cellular
             : o.flow == "kolmogorov" ? Flow::Kolmogorov
                                      : Flow::Abc;
    if (p.flow == Flow::Cellular && p.dim != 2)
        throw OptionError("ks.flow", o.flow, "cellular flow needs ks.dim = 2");
    if ((p.flow == Flow::Kolmogorov || p.flow == Flow::Abc) && p.dim != 3) {
        throw OptionError("ks.flow", o.flow, o.flow + " flow needs ks.dim = 3");
    }
    check_range("ks.flow_amplitude", o.flow_amplitude, -1e6, 1e6);
    p.flow_amplitude = o.flow_amplitude;
    check_choice("ks.model", o.model, {"parabolic_elliptic", "parabolic_parabolic"});
    p.model = o.model == "parabolic_elliptic" ? Model::ParabolicElliptic : Model::ParabolicParabolic;
    check_choice("ks.solver", o.solver, {"direct", "mesh"});
    p.solver = o.solver == "direct" ? Solver::Direct : Solver::Mesh;
    if (p.model == Model::ParabolicParabolic && p.solver == Solver::Mesh) {
        throw OptionError("ks.solver", o.solver,
                          "applies to model = parabolic_elliptic only (parabolic_parabolic uses its Fourier modes)");
    }
    if (o.mesh_cells != 0) {
        check_range("ks.mesh_cells", std::int64_t{o.mesh_cells}, std::int64_t{16},
                    std::int64_t{p.dim == 2 ? 4096 : 256});
    }
    p.mesh_cells = o.mesh_cells != 0 ? o.mesh_cells : (p.dim == 2 ? 256 : 64);
    if (o.mesh_order != 2 && o.mesh_order != 3)
        throw OptionError("ks.mesh_order", std::to_string(o.mesh_order), "must be 2 (cloud-in-cell) or 3 (TSC)");
    p.mesh_order = o.mesh_order;
    if (o.p3m_cutoff != 0.0)
        check_range("ks.p3m_cutoff", o.p3m_cutoff, 1.0, 16.0);
    p.p3m_cutoff = o.p3m_cutoff;
    check_choice("ks.mesh_fft", o.mesh_fft, {"auto", "replicated", "distributed"});
    p.mesh_fft = o.mesh_fft == "auto"         ? MeshFft::Auto
                 : o.mesh_fft == "replicated" ? MeshFft::Replicated
                                              : MeshFft::Distributed;
    check_range("ks.epsilon", o.epsilon, 0.0, 1e12);
    p.epsilon = o.epsilon;
    check_range("ks.k", o.k, 0.0, 1e12);
    p.k = o.k;
    check_range("ks.modes", std::int64_t{o.modes}, std::int64_t{2}, std::int64_t{p.dim == 2 ? 256 : 64});
    if (o.modes % 2 != 0)
        throw OptionError("ks.modes", std::to_string(o.modes), "must be even (modes |j_k| <= modes/2)");
    p.modes = o.modes;
    check_positive("ks.box", o.box);
    check_range("ks.box", o.box, 0.0, 1e12);
    p.box = o.box;
    check_choice("ks.field_init", o.field_init, {"elliptic", "zero"});
    p.field_init = o.field_init == "elliptic" ? FieldInit::Elliptic : FieldInit::Zero;
    if (p.model == Model::ParabolicParabolic && o.adaptive_dt) {
        throw OptionError("ks.adaptive_dt", "true",
                          "is not supported with model = parabolic_parabolic (the field update uses run.dt)");
    }
    check_choice("ks.exchange", o.exchange, {"allgather", "ring"});
    p.exchange = o.exchange == "allgather" ? Exchange::Allgather : Exchange::Ring;
    p.adaptive_dt = o.adaptive_dt;
    if (!(o.blowup_fraction == 0.0 || (o.blowup_fraction > 0.0 && o.blowup_fraction <= 1.0))) {
        throw OptionError("ks.blowup_fraction", format_number(o.blowup_fraction), "must be in (0, 1], or 0 to disable");
    }
    p.blowup_fraction = o.blowup_fraction;
    check_range("ks.blowup_check_every", o.blowup_check_every, std::int64_t{1}, std::int64_t{1} << 40);
    p.blowup_check_every = o.blowup_check_every;

    // Kernel bound (VERIFICATION.md): the interaction moves a particle by at most
    // chi M max|grad K_delta| dt per step; keep that below a quarter blob radius.
    if (!p.adaptive_dt && p.model == Model::ParabolicElliptic) {
        const double bound = max_stable_dt(p);
        if (!(dt <= bound)) {
            throw OptionError("run.dt", format_number(dt),
                              "violates the blob-kernel bound chi M max|grad K_delta| dt <= delta/4: needs dt <= " +
                                  format_number(bound) +
                                  " (max|grad K_delta| = " + format_number(kernel_gradient_bound(p.dim, p.delta)) +
                                  (p.dim == 2 ? " = 1/(4 pi delta)" : " = 0.0306/delta^2") +
                                  " for dim = " + std::to_string(p.dim) + ", delta = " + format_number(p.delta) +
                                  ", chi M = " + format_number(p.chi * p.mass) + "); or set ks.adaptive_dt = true");
        }
    }
    return p;
}

} // namespace kinflow::ks
