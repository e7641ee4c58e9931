// Training against exact answers (VERIFICATION.md, Generative models). Gaussian data N(m, S): the
// flow-matching velocity and the VP noise prediction are affine in x and known exactly, so the
// trained networks are compared with them pointwise; samples must reproduce mean and covariance.
// 2D mixtures (eight Gaussians, checkerboard): the exact W2 from samples to held-out data must be
// close to the sampling-noise floor and far below a Gaussian fit. w2map: the W2-optimal map from
// N(0, I) to N(m, S) is x -> m + S^{1/2} x. Tolerances are stated at each check; every test also
// shows that a trivial model fails the same check.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include <Kokkos_Core.hpp>

#include "kinflow/io/snapshot_writer.hpp"
#include "kinflow/learn/path.hpp"
#include "kinflow/learn/trainer.hpp"
#include "kinflow/metrics/assignment.hpp"
#include "kinflow/sample/sampler.hpp"
#include "learn/learn_support.hpp"

using namespace kinflow;

namespace {

/// Relative L2 error sqrt(sum |f - g|^2 / sum |g|^2) of a network against an exact field over
/// a grid: for each t, 81 points x = mu_t + Sigma_t^{1/2} g with g on a 9 x 9 grid of [-2, 2]^2.
template <class Net, class Exact, class Marginal>
double grid_error(Net&& net, Exact&& exact, Marginal&& marginal) {
    double num = 0, den = 0;
    for (double t : {0.1, 0.3, 0.5, 0.7, 0.9}) {
        test::V2 mu;
        test::M2 sig;
        marginal(t, mu, sig);
        const auto r = test::sqrt_spd(sig);
        std::vector<float> pts;
        for (int i = 0; i < 9; ++i)
            for (int j = 0; j < 9; ++j) {
                const test::V2 g{-2.0 + 0.5 * i, -2.0 + 0.5 * j};
                const auto d = test::apply(r, g);
                pts.push_back(static_cast<float>(mu[0] + d[0]));
                pts.push_back(static_cast<float>(mu[1] + d[1]));
            }
        const auto x = torch::from_blob(pts.data(), {81, 2});
        const auto y = net(x, t);
        for (int p = 0; p < 81; ++p) {
            const auto u = exact(t, test::V2{pts[2 * p], pts[2 * p + 1]});
            for (int k = 0; k < 2; ++k) {
                const double e = y[p][k].template item<double>() - u[k];
                num += e * e;
                den += u[k] * u[k];
            }
        }
    }
    return std::sqrt(num / den);
}

/// The trained network's output on rows x at time t.
torch::Tensor output(learn::MLP& m, const torch::Tensor& x, double t) {
    torch::NoGradGuard ng;
    return m->forward(x, torch::full({x.size(0)}, static_cast<float>(t)), {});
}

/// Samples (physical units, [n, 2] doubles) from a trainer's model.
std::vector<double> draw(learn::Trainer& tr, sample::Method method, std::int64_t nfe, std::int64_t n, std::uint64_t seed) {
    const auto info = tr.info();
    learn::MLPWorkspace ws(tr.model());
    const auto net = sample::network(ws, torch::Tensor(), 4096);
    torch::manual_seed(seed);
    auto x = info.source == "uniform" ? (torch::rand({n, 2}) * 2 - 1) * std::sqrt(3.0) : torch::randn({n, 2});
    const sample::Noise noise = [](std::int64_t, torch::Tensor& z) { z.normal_(); };
    sample::transport(info, net, method, nfe, x, noise);
    std::vector<double> out(static_cast<std::size_t>(2 * n));
    for (std::int64_t i = 0; i < n; ++i)
        for (int k = 0; k < 2; ++k) out[2 * i + k] = x[i][k].item<double>() * info.norm.std[k] + info.norm.mean[k];
    return out;
}

/// Samples (physical units) from a meanflow trainer's model: `nfe` average-velocity jumps from N(0, I).
std::vector<double> draw_jumps(learn::Trainer& tr, std::int64_t nfe, std::int64_t n, std::uint64_t seed) {
    const auto info = tr.info();
    learn::MLPWorkspace ws(tr.model());
    const auto u = sample::average_network(ws, torch::Tensor(), 4096);
    torch::manual_seed(seed);
    auto x = torch::randn({n, 2});
    sample::Integrator integ;
    integ.jumps(nfe, 0.0, 1.0, x, u);
    std::vector<double> out(static_cast<std::size_t>(2 * n));
    for (std::int64_t i = 0; i < n; ++i)
        for (int k = 0; k < 2; ++k) out[2 * i + k] = x[i][k].item<double>() * info.norm.std[k] + info.norm.mean[k];
    return out;
}

void moments(const std::vector<double>& x, test::V2& m, test::M2& c) {
    const double n = static_cast<double>(x.size() / 2);
    m = {0, 0};
    c = {0, 0, 0, 0};
    for (std::size_t i = 0; i < x.size(); i += 2) {
        m[0] += x[i] / n;
        m[1] += x[i + 1] / n;
    }
    for (std::size_t i = 0; i < x.size(); i += 2) {
        const double a = x[i] - m[0], b = x[i + 1] - m[1];
        c[0] += a * a / n;
        c[1] += a * b / n;
        c[3] += b * b / n;
    }
    c[2] = c[1];
}

learn::TrainOptions small(const std::string& objective, const std::string& data, std::int64_t steps) {
    learn::TrainOptions o;
    o.objective = objective;
    o.data = data;
    o.builtin_size = 50000;
    o.hidden = 64;
    o.layers = 3;
    o.batch_size = 512;
    o.steps = steps;
    o.lr = 3e-3;
    return o;
}

/// Exact W2 between n draws and held-out data (and the two floors).
double w2(const std::vector<double>& a, const std::vector<double>& b) {
    return std::sqrt(metrics::w2_squared_exact(a.data(), b.data(), a.size() / 2, 2));
}

/// The builtin Gaussian data's exact fm velocity (normalised coordinates, CondOT path from N(0, I))
/// and the relative L2 grid error of a velocity field against it.
struct ExactGaussianFm {
    test::V2 m;
    test::M2 s;
    explicit ExactGaussianFm(const learn::Dataset& data) { test::normalised_gaussian(data.normalization(), m, s); }
    template <class Net>
    double error(Net&& net) const {
        const auto exact = [&](double t, const test::V2& x) { return test::exact_velocity(m, s, t, x); };
        const auto marginal = [&](double t, test::V2& mu, test::M2& sig) {
            mu = {t * m[0], t * m[1]};
            sig = {t * t * s[0] + (1 - t) * (1 - t), t * t * s[1], t * t * s[2], t * t * s[3] + (1 - t) * (1 - t)};
        };
        return grid_error(net, exact, marginal);
    }
    double error(learn::Trainer& tr) const {
        return error([&](const torch::Tensor& x, double t) { return output(tr.model(), x, t); });
    }
};

} // namespace

TEST(LearnTraining, FlowMatchingVelocityIsTheExactOneOnGaussianData) {
    const auto cfg = test::config(small("fm", "builtin:gaussian", 1500));
    const learn::Dataset data(comm::Communicator::self(), cfg.data);
    learn::Trainer tr(comm::Communicator::self(), cfg, data);
    const ExactGaussianFm exact(data);
    const double before = exact.error(tr);
    // The best velocity that ignores x: the mean velocity E[x_1 - x_0] = m.
    const double constant = exact.error([&](const torch::Tensor& x, double) {
        return torch::tensor({exact.m[0], exact.m[1]}).to(torch::kFloat32).expand({x.size(0), 2});
    });
    tr.run(cfg.steps);
    const double after = exact.error(tr);
    std::printf("  fm velocity, relative L2 error on the grid: trained %.4f, untrained %.3f, best constant %.3f\n", after, before,
                constant);
    // Tolerance 0.06 (measured 0.033 with 1500 steps of 512); trivial models: 1.0.
    EXPECT_LT(after, 0.06);
    EXPECT_GT(before, 0.06);
    EXPECT_GT(constant, 0.06);

    // Samples: RK4 with 40 evaluations, 10^4 draws. Mean within 0.06 (5 standard errors
    // sqrt(S_kk/n) <= 0.014 plus the model error), covariance entries within 0.1.
    test::V2 mean;
    test::M2 cov;
    moments(draw(tr, sample::Method::RK4, 40, 10000, 3), mean, cov);
    std::printf("  fm samples: mean (%.4f, %.4f), cov (%.4f, %.4f, %.4f); exact (1, -0.5), (2, 0.6, 0.5)\n", mean[0], mean[1],
                cov[0], cov[1], cov[3]);
    const auto pm = learn::builtin_gaussian_mean();
    const auto pc = learn::builtin_gaussian_cov();
    for (int k = 0; k < 2; ++k) EXPECT_NEAR(mean[k], pm[k], 0.06);
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(cov[k], pc[k], 0.1);
}

TEST(LearnTraining, TailWeightLeavesTheExactVelocityTheMinimiser) {
    // train.tail_weight weighs each row by a function of the network's input x_t only, so the
    // minimiser is still the exact marginal velocity; a weight that biased it (e.g. one depending
    // on x_1) would show here as a grid error far above the unweighted fit's 0.033.
    auto o = small("fm", "builtin:gaussian", 1500);
    o.tail_weight = 1.0;
    o.tail_power = 2.0;
    const auto cfg = test::config(o);
    const learn::Dataset data(comm::Communicator::self(), cfg.data);
    learn::Trainer tr(comm::Communicator::self(), cfg, data);
    tr.run(cfg.steps);
    const double after = ExactGaussianFm(data).error(tr);
    std::printf("  fm velocity with tail_weight 1, power 2: relative L2 error on the grid %.4f\n", after);
    EXPECT_LT(after, 0.06); // the unweighted fit's tolerance
}

TEST(LearnTraining, ScoreMatchingNoisePredictionIsTheExactOneOnGaussianData) {
    const auto cfg = test::config(small("dsm", "builtin:gaussian", 2000));
    const learn::Dataset data(comm::Communicator::self(), cfg.data);
    learn::Trainer tr(comm::Communicator::self(), cfg, data);
    test::V2 m;
    test::M2 s;
    test::normalised_gaussian(data.normalization(), m, s);
    const learn::VPScheduler vp{cfg.beta_min, cfg.beta_max};
    const auto exact = [&](double t, const test::V2& x) { return test::exact_eps(m, s, vp.alpha(t), vp.sigma(t), x); };
    const auto marginal = [&](double t, test::V2& mu, test::M2& sig) {
        const double a = vp.alpha(t), sg = vp.sigma(t);
        mu = {a * m[0], a * m[1]};
        sig = {a * a * s[0] + sg * sg, a * a * s[1], a * a * s[2], a * a * s[3] + sg * sg};
    };
    const double before = grid_error([&](const torch::Tensor& x, double t) { return output(tr.model(), x, t); }, exact, marginal);
    // The exact answer for standard normal data, eps_hat = sigma_t x: right only where the data are N(0, I).
    const double white = grid_error([&](const torch::Tensor& x, double t) { return x * static_cast<float>(vp.sigma(t)); },
                                    exact, marginal);
    tr.run(cfg.steps);
    const double after = grid_error([&](const torch::Tensor& x, double t) { return output(tr.model(), x, t); }, exact, marginal);
    std::printf("  dsm noise prediction (sigma_t x score), relative L2 error: trained %.4f, untrained %.3f, N(0,I) score %.3f\n",
                after, before, white);
    // Tolerance 0.05 (measured 0.017; the white-noise score 0.15, untrained 1.0); score =
    // -eps_hat / sigma_t, so the score's relative error is the same.
    EXPECT_LT(after, 0.05);
    EXPECT_GT(before, 0.05);
    EXPECT_GT(white, 0.05);

    // Probability-flow ODE (RK4, 100 evaluations) and reverse SDE (Euler–Maruyama, 500 steps):
    // the same moment tolerances as flow matching, plus 0.05 for the SDE's O(h) bias.
    const auto pm = learn::builtin_gaussian_mean();
    const auto pc = learn::builtin_gaussian_cov();
    for (auto [method, nfe, extra] : {std::tuple{sample::Method::RK4, 100, 0.0}, {sample::Method::EulerMaruyama, 500, 0.05}}) {
        test::V2 mean;
        test::M2 cov;
        moments(draw(tr, method, nfe, 10000, 4), mean, cov);
        std::printf("  dsm %s samples: mean (%.4f, %.4f), cov (%.4f, %.4f, %.4f)\n", sample::to_string(method), mean[0], mean[1],
                    cov[0], cov[1], cov[3]);
        for (int k = 0; k < 2; ++k) EXPECT_NEAR(mean[k], pm[k], 0.06 + extra);
        for (int k = 0; k < 4; ++k) EXPECT_NEAR(cov[k], pc[k], 0.1 + 2 * extra);
    }
}

TEST(LearnTraining, W2MapPushesTheSourceToGaussianData) {
    // The W2 objective fixes the pushforward f#N(0, I) = N(m, S), not the map (any rotation of
    // the optimal m + S^{1/2} x has zero loss too): check the pushforward's moments.
    auto o = small("w2map", "builtin:gaussian", 1500);
    o.batch_size = 128;
    const auto cfg = test::config(o);
    const learn::Dataset data(comm::Communicator::self(), cfg.data);
    learn::Trainer tr(comm::Communicator::self(), cfg, data);
    const auto pm = learn::builtin_gaussian_mean();
    const auto pc = learn::builtin_gaussian_cov();
    auto error = [&] {
        test::V2 mean;
        test::M2 cov;
        moments(draw(tr, sample::Method::Euler, 1, 10000, 7), mean, cov);
        double e = 0;
        for (int k = 0; k < 2; ++k) e = std::max(e, std::fabs(mean[k] - pm[k]));
        for (int k = 0; k < 4; ++k) e = std::max(e, std::fabs(cov[k] - pc[k]));
        std::printf("    pushforward mean (%.4f, %.4f), cov (%.4f, %.4f, %.4f)\n", mean[0], mean[1], cov[0], cov[1], cov[3]);
        return e;
    };
    const double before = error();
    tr.run(cfg.steps);
    const double after = error();
    std::printf("  w2map: largest moment error of f#N(0,I) against N(m, S): trained %.4f, untrained %.3f\n", after, before);
    // Tolerance 0.25 on every mean and covariance entry: 5 standard errors of 10^4 draws (<= 0.07)
    // plus the bias of minibatch W2, which shrinks the pushforward (measured: variance 1.81
    // instead of 2 with 128-point batches; it decreases with the batch size). Trivial maps fail:
    // untrained 2.0, the shift x + m 1.0.
    EXPECT_LT(after, 0.25);
    EXPECT_GT(before, 0.25);
}

namespace {
/// Train on a 2D mixture and compare samples with held-out data by exact W2 (n = 1500).
void mixture_w2(const std::string& objective, const std::string& name, std::int64_t steps, std::int64_t batch, std::int64_t nfe,
                double level) {
    auto o = small(objective, "builtin:" + name, steps);
    o.batch_size = batch;
    const auto cfg = test::config(o);
    const learn::Dataset data(comm::Communicator::self(), cfg.data);
    learn::Trainer tr(comm::Communicator::self(), cfg, data);
    tr.run(cfg.steps);
    const std::int64_t n = 1500;
    std::vector<double> held_a, held_b;
    learn::generate_builtin(name, 1001, 0, n, held_a); // other seeds: data never seen in training
    learn::generate_builtin(name, 1002, 0, n, held_b);
    const auto samples = draw(tr, sample::Method::RK4, nfe, n, 5);
    // Trivial model: a Gaussian with the data's mean and covariance.
    test::V2 mean;
    test::M2 cov;
    moments(held_b, mean, cov);
    const auto l = test::sqrt_spd(cov);
    torch::manual_seed(6);
    const auto z = torch::randn({n, 2}, torch::kFloat64);
    std::vector<double> gauss(static_cast<std::size_t>(2 * n));
    for (std::int64_t i = 0; i < n; ++i) {
        const auto d = test::apply(l, {z[i][0].item<double>(), z[i][1].item<double>()});
        gauss[2 * i] = mean[0] + d[0];
        gauss[2 * i + 1] = mean[1] + d[1];
    }
    const double w_model = w2(samples, held_a), w_floor = w2(held_b, held_a), w_gauss = w2(gauss, held_a);
    std::printf("  %s on %s (batch %lld, %lld steps, rk4 nfe %lld): W2(samples, held-out) %.4f; floor W2(held-out, held-out) %.4f; Gaussian fit %.4f\n",
                objective.c_str(), name.c_str(), static_cast<long long>(batch), static_cast<long long>(steps),
                static_cast<long long>(nfe), w_model, w_floor, w_gauss);
    EXPECT_LT(w_model, level);
    EXPECT_GT(w_gauss, level);
}
} // namespace

// Levels against the noise floor (W2 between two held-out sets of 1500: 0.48 and 0.27) and the
// Gaussian fit (1.65 and 0.85); measured: 0.36 (fm, eight Gaussians) and 0.36 (otfm, checkerboard).
TEST(LearnTraining, EightGaussiansSamplesAreCloseInW2) { mixture_w2("fm", "eight_gaussians", 3000, 512, 40, 0.55); }

TEST(LearnTraining, CheckerboardSamplesAreCloseInW2) { mixture_w2("otfm", "checkerboard", 4000, 128, 40, 0.45); }

namespace {
/// A 2D kinflow file (ids 0..n-1, recorded deck `deck`) with one snapshot per time; rows(s, i)
/// gives particle i's position at snapshot s.
template <class Rows>
std::string write_2d(const std::string& name, const std::string& deck, std::int64_t n, const std::vector<double>& times,
                     Rows&& rows) {
    const std::string path = test::scratch(name);
    io::SnapshotWriter w(comm::Communicator::self(), path, io::FileInfo{"test", deck, 1, 2});
    for (std::size_t s = 0; s < times.size(); ++s) {
        ParticleSet p;
        p.allocate(static_cast<std::size_t>(n), 2, 0, false);
        p.n_global = n;
        auto pos = Kokkos::create_mirror_view(p.position);
        auto id = Kokkos::create_mirror_view(p.id);
        for (std::int64_t i = 0; i < n; ++i) {
            const test::V2 x = rows(s, i);
            id(i) = i;
            pos(i, 0) = x[0];
            pos(i, 1) = x[1];
        }
        Kokkos::deep_copy(p.position, pos);
        Kokkos::deep_copy(p.id, id);
        w.write(p, times[s], static_cast<std::int64_t>(s), {});
    }
    w.finish();
    return path;
}

/// A kinflow file of n draws from N(m, S) in 2D whose recorded deck sets [g] shift = c.
std::string gaussian_file(const std::string& name, double c, const test::V2& m, const test::M2& s, std::int64_t n,
                          std::uint64_t seed) {
    const auto l = test::sqrt_spd(s);
    torch::manual_seed(seed);
    const auto z = torch::randn({n, 2}, torch::kFloat64);
    return write_2d(name, "[g]\nshift = " + std::to_string(c) + "\n", n, {0.0}, [&](std::size_t, std::int64_t i) {
        const auto d = test::apply(l, {z[i][0].item<double>(), z[i][1].item<double>()});
        return test::V2{m[0] + d[0], m[1] + d[1]};
    });
}
} // namespace

TEST(LearnTraining, ConditionalGaussianFamilyAtAnUnseenCondition) {
    // Data N(m(c), S) with m(c) = (1 + 1.5 c, -c) for c = -1, 0, 1, 2 (4000 draws each); an fm model
    // conditioned on c with FiLM embedding is sampled at c = 0.5 (never seen) and c = 2.5 (a mild
    // extrapolation) and compared with the exact N(m(c), S). Tolerances on every mean and
    // covariance entry: 5 standard errors of 10^4 samples (<= 0.04) plus 0.08 for the learning error
    // (measured: 0.009 at c = 0.5, 0.074 at c = 2.5); the nearest training condition is 0.75 away
    // in mean, so a model that ignored or snapped the condition fails, and so does the untrained one.
    const test::M2 s{0.5, 0.15, 0.15, 0.3};
    auto mean_of = [](double c) { return test::V2{1.0 + 1.5 * c, -c}; };
    std::string files;
    for (double c : {-1.0, 0.0, 1.0, 2.0})
        files += (files.empty() ? "" : ",") + gaussian_file("family_" + std::to_string(static_cast<int>(c + 1)) + ".h5", c, mean_of(c), s, 4000, 40 + static_cast<std::uint64_t>(c + 1));
    auto o = small("fm", files, 2500);
    o.condition = "g.shift";
    o.condition_embedding = "film";
    o.batch_size = 512;
    const auto cfg = test::config(o);
    const learn::Dataset data(comm::Communicator::self(), cfg.data);
    learn::Trainer tr(comm::Communicator::self(), cfg, data);
    auto sample_at = [&](double c) {
        const auto info = tr.info();
        const float cn = static_cast<float>((c - info.norm.cond_mean[0]) / info.norm.cond_std[0]);
        learn::MLPWorkspace ws(tr.model());
        const auto cond = torch::full({1}, cn);
        const auto net = sample::network(ws, cond, 4096);
        torch::manual_seed(12);
        const std::int64_t n = 10000;
        auto x = torch::randn({n, 2});
        const sample::Noise noise = [](std::int64_t, torch::Tensor& z) { z.normal_(); };
        sample::transport(info, net, sample::Method::RK4, 40, x, noise);
        std::vector<double> out(static_cast<std::size_t>(2 * n));
        for (std::int64_t i = 0; i < n; ++i)
            for (int k = 0; k < 2; ++k) out[2 * i + k] = x[i][k].item<double>() * info.norm.std[k] + info.norm.mean[k];
        return out;
    };
    auto error = [&](double c) {
        test::V2 mean;
        test::M2 cov;
        moments(sample_at(c), mean, cov);
        const auto m = mean_of(c);
        double e = 0;
        for (int k = 0; k < 2; ++k) e = std::max(e, std::fabs(mean[k] - m[k]));
        for (int k = 0; k < 4; ++k) e = std::max(e, std::fabs(cov[k] - s[k]));
        std::printf("    c = %.2f: mean (%.4f, %.4f) exact (%.4f, %.4f); cov (%.4f, %.4f, %.4f) exact (%.2f, %.2f, %.2f)\n", c,
                    mean[0], mean[1], m[0], m[1], cov[0], cov[1], cov[3], s[0], s[1], s[3]);
        return e;
    };
    const double before = error(0.5);
    tr.run(cfg.steps);
    const double inside = error(0.5), outside = error(2.5);
    std::printf("  conditional Gaussian family (fm, film): largest moment error at c = 0.5: %.4f (untrained %.3f); at c = 2.5: %.4f\n",
                inside, before, outside);
    EXPECT_LT(inside, 0.12);
    EXPECT_LT(outside, 0.12);
    EXPECT_GT(before, 0.12);
}

TEST(LearnTraining, PhysicalTimeFlowMatchingLearnsAKnownDrift) {
    // tfm on a run whose particles drift at the constant velocity (2, 1): x(t) = x(0) + (2, 1) t,
    // snapshots at t = 0, 0.5, 1 (x(0) ~ N(0, I), 2000 particles). With the ids' coupling every
    // segment's velocity is exactly (2, 1), so the learned field must be that constant, and
    // integrating it from the initial particles to t = 0.75 (between snapshots) must move each
    // particle by (1.5, 0.75): tolerance 0.03 on every particle (the regression of a constant
    // field); an untrained model is off by far more.
    const std::int64_t n = 2000;
    torch::manual_seed(21);
    const auto x0 = torch::randn({n, 2}, torch::kFloat64);
    const std::string path = write_2d("tfm_drift.h5", "[g]\nshift = 0\n", n, {0.0, 0.5, 1.0}, [&](std::size_t s, std::int64_t i) {
        const double t = 0.5 * static_cast<double>(s);
        return test::V2{x0[i][0].item<double>() + 2.0 * t, x0[i][1].item<double>() + 1.0 * t};
    });
    auto o = small("tfm", path, 1500);
    o.snapshot = "1,2";
    o.source = "snapshot:0";
    o.coupling = "id";
    o.batch_size = 256;
    const auto cfg = test::config(o);
    const learn::Dataset data(comm::Communicator::self(), cfg.data);
    learn::Trainer tr(comm::Communicator::self(), cfg, data);
    auto worst = [&] {
        const auto info = tr.info();
        EXPECT_DOUBLE_EQ(info.time_origin, 0.0);
        EXPECT_DOUBLE_EQ(info.time_scale, 1.0);
        learn::MLPWorkspace ws(tr.model());
        const auto net = sample::network(ws, torch::Tensor(), 4096);
        auto x = torch::empty({n, 2});
        for (int k = 0; k < 2; ++k) x.select(1, k).copy_((x0.select(1, k) - info.norm.source_mean[k]) / info.norm.source_std[k]);
        const sample::Noise noise = [](std::int64_t, torch::Tensor& z) { z.normal_(); };
        sample::transport(info, net, sample::Method::RK4, 40, x, noise, (0.75 - info.time_origin) / info.time_scale);
        double e = 0;
        const double shift[2] = {1.5, 0.75};
        for (std::int64_t i = 0; i < n; ++i)
            for (int k = 0; k < 2; ++k)
                e = std::max(e, std::fabs(x[i][k].item<double>() * info.norm.std[k] + info.norm.mean[k] - x0[i][k].item<double>() - shift[k]));
        return e;
    };
    const double before = worst();
    tr.run(cfg.steps);
    const double after = worst();
    std::printf("  tfm constant drift: largest displacement error at t = 0.75: trained %.4f, untrained %.3f\n", after, before);
    EXPECT_LT(after, 0.03);
    EXPECT_GT(before, 0.3);
}

TEST(LearnTraining, MeanFlowAtEqualTimesIsFlowMatching) {
    // train.meanflow_fraction = 0: every row has s = t, where MeanFlow's target v + (t - s) du is v,
    // so a meanflow step is an fm step at the same rows and times: its loss and gradient equal
    // autograd's for |u_theta(x_s, s, gap 0) - (x_1 - x_0)|^2 averaged over rows and dimensions,
    // x_s = x_0 + s (x_1 - x_0). With the adaptive weight (p = 1) the reported loss is still that
    // unweighted error.
    for (double p : {0.0, 1.0}) {
        auto o = small("meanflow", "builtin:gaussian", 10);
        o.meanflow_fraction = 0.0;
        o.meanflow_power = p;
        o.batch_size = 300;
        const auto cfg = test::config(o);
        const learn::Dataset data(comm::Communicator::self(), cfg.data);
        learn::Trainer tr(comm::Communicator::self(), cfg, data);
        learn::Batch b;
        data.draw(cfg.seed, 1, tr.global_batch(), b);
        std::vector<float> s(static_cast<std::size_t>(b.rows)), t(static_cast<std::size_t>(b.rows));
        learn::meanflow_times(cfg.seed, 1, b.slot, 0.0, s.data(), t.data());
        for (std::int64_t i = 0; i < b.rows; ++i) ASSERT_EQ(s[i], t[i]);
        const auto x1 = torch::from_blob(b.x1.data(), {b.rows, 2}), x0 = torch::from_blob(b.x0.data(), {b.rows, 2});
        const auto st = torch::from_blob(s.data(), {b.rows});
        auto& g = tr.model()->flat_gradients();
        g.zero_();
        const auto fm = (tr.model()->forward(x0 + st.unsqueeze(1) * (x1 - x0), st, {}, torch::zeros({b.rows})) - (x1 - x0))
                            .pow(2)
                            .mean();
        fm.backward();
        const std::int64_t np = tr.model()->parameter_count();
        const auto reference = g.narrow(0, 0, np).clone();
        const double loss = tr.step_once();
        std::printf("  meanflow at s = t (p = %g): loss %.6f, fm loss %.6f\n", p, loss, fm.item<double>());
        EXPECT_NEAR(loss, fm.item<double>(), 1e-5 * fm.item<double>());
        if (p == 0.0) {
            EXPECT_LT(((g.narrow(0, 0, np) - reference).norm() / reference.norm()).item<double>(), 1e-4);
        }
    }
}

TEST(LearnTraining, MeanFlowAverageVelocityIsTheExactOneOnGaussianData) {
    // Data N(m, S) (builtin:gaussian; in normalised coordinates N(m', S'), S' correlated), source
    // N(0, I): fm's marginal flow is X_tau(x_0) = tau m' + Sigma_tau^{1/2} x_0, and the exact average
    // velocity u(x, s, t) = [X_t(X_s^{-1}(x)) - x] / (t - s) is affine in x
    // (test::exact_average_velocity). The trained u is compared with it on 81 points per (s, t)
    // (x = mu_s + Sigma_s^{1/2} g, g on a 9 x 9 grid of [-2, 2]^2) at (s, t) = (0, 1), (0, 0.5),
    // (0.5, 1), (0.2, 0.7); then 10^4 one-jump samples x_0 + u(x_0, 0, 1) are compared with N(m, S).
    auto o = small("meanflow", "builtin:gaussian", 5000);
    const auto cfg = test::config(o);
    const learn::Dataset data(comm::Communicator::self(), cfg.data);
    learn::Trainer tr(comm::Communicator::self(), cfg, data);
    test::V2 m;
    test::M2 sg;
    test::normalised_gaussian(data.normalization(), m, sg);
    const std::vector<std::pair<double, double>> pairs{{0.0, 1.0}, {0.0, 0.5}, {0.5, 1.0}, {0.2, 0.7}};
    // field(s, t, x) -> prediction at the points; returns the relative L2 error over all pairs.
    auto error = [&](auto&& field) {
        double num = 0, den = 0;
        for (auto [s, t] : pairs) {
            const test::M2 sig{s * s * sg[0] + (1 - s) * (1 - s), s * s * sg[1], s * s * sg[2], s * s * sg[3] + (1 - s) * (1 - s)};
            const auto r = test::sqrt_spd(sig);
            std::vector<float> pts;
            for (int i = 0; i < 9; ++i)
                for (int j = 0; j < 9; ++j) {
                    const auto d = test::apply(r, {-2.0 + 0.5 * i, -2.0 + 0.5 * j});
                    pts.push_back(static_cast<float>(s * m[0] + d[0]));
                    pts.push_back(static_cast<float>(s * m[1] + d[1]));
                }
            const auto x = torch::from_blob(pts.data(), {81, 2});
            const auto y = field(s, t, x);
            for (int p = 0; p < 81; ++p) {
                const auto u = test::exact_average_velocity(m, sg, s, t, {pts[2 * p], pts[2 * p + 1]});
                for (int k = 0; k < 2; ++k) {
                    const double e = y[p][k].template item<double>() - u[k];
                    num += e * e;
                    den += u[k] * u[k];
                }
            }
        }
        return std::sqrt(num / den);
    };
    auto model_field = [&](double s, double t, const torch::Tensor& x) {
        torch::NoGradGuard ng;
        const auto n = x.size(0);
        return tr.model()->forward(x, torch::full({n}, static_cast<float>(s)), {}, torch::full({n}, static_cast<float>(t - s)));
    };
    // The instantaneous velocity at s (what one Euler step of an exact fm model uses): wrong for s < t.
    auto instantaneous = [&](double s, double, const torch::Tensor& x) {
        auto y = torch::empty({x.size(0), 2});
        for (std::int64_t i = 0; i < x.size(0); ++i) {
            const auto v = test::exact_velocity(m, sg, s, {x[i][0].item<double>(), x[i][1].item<double>()});
            y[i][0] = v[0];
            y[i][1] = v[1];
        }
        return y;
    };
    const double before = error(model_field), euler = error(instantaneous);
    tr.run(cfg.steps);
    const double after = error(model_field);
    std::printf("  meanflow average velocity, relative L2 error: trained %.4f, untrained %.3f, exact instantaneous velocity %.3f\n",
                after, before, euler);
    // Tolerance 0.08 (measured 0.044 with 5000 steps of 512, train.meanflow_fraction 0.5, power 0;
    // the average velocity off the diagonal is learnt from the diagonal outwards, more slowly than
    // fm's velocity: at (0, 1) alone the error was 0.2 after 2000 steps, 0.12 after 4000); trivial
    // fields fail: untrained 1.0, the exact instantaneous velocity 1.3.
    EXPECT_LT(after, 0.08);
    EXPECT_GT(before, 0.08);
    EXPECT_GT(euler, 0.08);

    // Samples (10^4): the mean within 0.06 (5 standard errors <= 0.07 plus the model error, as in
    // the fm test). Covariance entries: within 0.1 at 2 evaluations (the fm test's tolerance with
    // RK4 at 40), within 0.15 at 1 evaluation (measured 0.10: the one-jump map shrinks the variance
    // by ~5 %, at 5000 and at 8000 steps).
    const auto pm = learn::builtin_gaussian_mean();
    const auto pc = learn::builtin_gaussian_cov();
    for (std::int64_t nfe : {1, 2}) {
        test::V2 mean;
        test::M2 cov;
        moments(draw_jumps(tr, nfe, 10000, 3), mean, cov);
        std::printf("  meanflow samples, nfe %lld: mean (%.4f, %.4f), cov (%.4f, %.4f, %.4f); exact (1, -0.5), (2, 0.6, 0.5)\n",
                    static_cast<long long>(nfe), mean[0], mean[1], cov[0], cov[1], cov[3]);
        for (int k = 0; k < 2; ++k) EXPECT_NEAR(mean[k], pm[k], 0.06) << "nfe " << nfe;
        for (int k = 0; k < 4; ++k) EXPECT_NEAR(cov[k], pc[k], nfe == 1 ? 0.15 : 0.1) << "nfe " << nfe;
    }
}

TEST(LearnTraining, FlowMapStepMatchesAReferenceGradient) {
    // flowmap's training step (Lagrangian self-distillation, forward-mode AD for dX/dt, reverse
    // through it) against an independent route: the same loss on a float64 copy of the network with
    // du/dt by a central difference in the gap (eps = 1e-6: truncation ~ (eps w)^2 with w <= 3,
    // round-off ~ 1e-10) and the parameter gradients by plain autograd. Rows with s = t carry fm's
    // target x_1 - x_0, the others sg(u(X(x_s, s, t), t, t)).
    auto o = small("flowmap", "builtin:eight_gaussians", 10);
    o.meanflow_fraction = 0.5;
    o.batch_size = 300;
    const auto cfg = test::config(o);
    const learn::Dataset data(comm::Communicator::self(), cfg.data);
    learn::Trainer tr(comm::Communicator::self(), cfg, data);
    learn::Batch b;
    data.draw(cfg.seed, 1, tr.global_batch(), b);
    std::vector<float> s(static_cast<std::size_t>(b.rows)), t(static_cast<std::size_t>(b.rows));
    learn::meanflow_times(cfg.seed, 1, b.slot, cfg.meanflow_fraction, s.data(), t.data());
    const auto x1 = torch::from_blob(b.x1.data(), {b.rows, 2}), x0 = torch::from_blob(b.x0.data(), {b.rows, 2});
    const auto st = torch::from_blob(s.data(), {b.rows}), tt = torch::from_blob(t.data(), {b.rows});
    const auto gap = tt - st, g = gap.unsqueeze(1);
    const auto xs = x0 + st.unsqueeze(1) * (x1 - x0);
    const std::int64_t apart = (gap > 0).sum().item<std::int64_t>();
    ASSERT_GT(apart, 100);
    ASSERT_LT(apart, 200);
    torch::Tensor target;
    {
        torch::NoGradGuard ng;
        auto& m = tr.model();
        const auto xt = xs + g * m->forward(xs, st, {}, gap);
        target = torch::where(g > 0, m->forward(xt, st + gap, {}, torch::zeros_like(gap)), x1 - x0).to(torch::kFloat64);
    }
    learn::MLP m64(tr.model()->spec());
    {
        torch::NoGradGuard ng;
        m64->flat_parameters().copy_(tr.model()->flat_parameters());
    }
    m64->to(torch::kFloat64);
    const double eps = 1e-6;
    const auto xs64 = xs.to(torch::kFloat64), s64 = st.to(torch::kFloat64), gap64 = gap.to(torch::kFloat64);
    const auto u = m64->forward(xs64, s64, {}, gap64);
    const auto du = (m64->forward(xs64, s64, {}, gap64 + eps) - m64->forward(xs64, s64, {}, gap64 - eps)) / (2 * eps);
    const auto ref_loss = (u + gap64.unsqueeze(1) * du - target).pow(2).sum() / (2.0 * static_cast<double>(b.rows));
    std::vector<torch::Tensor> params;
    for (auto& p : m64->parameters()) params.push_back(p);
    const auto grads = torch::autograd::grad({ref_loss}, params, {}, true); // keep the graph: no_du below
    std::vector<torch::Tensor> flat;
    for (const auto& gr : grads) flat.push_back(gr.reshape({-1}));
    const auto reference = torch::cat(flat);
    const double loss = tr.step_once();
    const std::int64_t np = tr.model()->parameter_count();
    const auto got = tr.model()->flat_gradients().narrow(0, 0, np).to(torch::kFloat64);
    const double rel = ((got - reference).norm() / reference.norm()).item<double>();
    std::printf("  flowmap step: loss %.6f, reference %.6f; gradient relative difference %.2e (%lld of %lld rows with s < t)\n",
                loss, ref_loss.item<double>(), rel, static_cast<long long>(apart), static_cast<long long>(b.rows));
    EXPECT_NEAR(loss, ref_loss.item<double>(), 1e-5 * ref_loss.item<double>());
    EXPECT_LT(rel, 1e-4);
    // The loss is not fm's: dropping the du/dt term changes the gradient (the check can fail).
    const auto no_du = (u - target).pow(2).sum() / (2.0 * static_cast<double>(b.rows));
    std::vector<torch::Tensor> flat2;
    for (const auto& gr : torch::autograd::grad({no_du}, params)) flat2.push_back(gr.reshape({-1}));
    EXPECT_GT(((torch::cat(flat2) - reference).norm() / reference.norm()).item<double>(), 1e-2);
}

TEST(LearnTraining, FlowMapIsTheExactMapOnGaussianData) {
    // Data N(m, S) (builtin:gaussian), source N(0, I): the exact flow map of fm's marginal flow is
    // affine, X_{s,t}(x) = t m' + Sigma_t^{1/2} Sigma_s^{-1/2} (x - s m') in normalised coordinates
    // (test::exact_flow_map). Checks: X(x, t, t) = x bitwise (by construction, before and after
    // training); the trained X(x, s, t) = x + (t - s) u(x, s, t) against the exact map on 81 points
    // per (s, t) (x = mu_s + Sigma_s^{1/2} g, g on a 9 x 9 grid of [-2, 2]^2); the composition
    // X(X(x, s, r), r, t) against X(x, s, t) at the same points; 10^4 samples at 1 and 2 jumps.
    // train.meanflow_fraction 0.25 (measured: displacement error 0.076 at 3000 steps against 0.19 with
    // 0.5 and 0.80 with lr 1e-3; 6000 steps at 0.5 diverged): the Lagrangian residual is anchored by
    // the diagonal's velocity, so more rows on the diagonal help.
    auto o = small("flowmap", "builtin:gaussian", 3000);
    o.meanflow_fraction = 0.25;
    const auto cfg = test::config(o);
    const learn::Dataset data(comm::Communicator::self(), cfg.data);
    learn::Trainer tr(comm::Communicator::self(), cfg, data);
    test::V2 m;
    test::M2 sg;
    test::normalised_gaussian(data.normalization(), m, sg);
    learn::MLPWorkspace ws(tr.model());
    const auto u = sample::average_network(ws, torch::Tensor(), 4096);
    // X(x, s, t) of the model: one jump.
    auto flow = [&](const torch::Tensor& x, double s, double t) {
        auto y = x.clone();
        sample::Integrator integ;
        integ.jumps(1, s, t, y, u);
        return y;
    };
    auto points = [&](double s) {
        const test::M2 sig{s * s * sg[0] + (1 - s) * (1 - s), s * s * sg[1], s * s * sg[2], s * s * sg[3] + (1 - s) * (1 - s)};
        const auto r = test::sqrt_spd(sig);
        auto x = torch::empty({81, 2});
        for (int i = 0; i < 9; ++i)
            for (int j = 0; j < 9; ++j) {
                const auto d = test::apply(r, {-2.0 + 0.5 * i, -2.0 + 0.5 * j});
                x[9 * i + j][0] = static_cast<float>(s * m[0] + d[0]);
                x[9 * i + j][1] = static_cast<float>(s * m[1] + d[1]);
            }
        return x;
    };
    const std::vector<std::pair<double, double>> pairs{{0.0, 1.0}, {0.0, 0.5}, {0.5, 1.0}, {0.2, 0.7}};
    // Relative L2 error of the displacement X(x, s, t) - x against the exact one, over all pairs.
    auto map_error = [&] {
        double num = 0, den = 0;
        for (auto [s, t] : pairs) {
            const auto x = points(s);
            const auto y = flow(x, s, t);
            for (int p = 0; p < 81; ++p) {
                const test::V2 xp{x[p][0].item<double>(), x[p][1].item<double>()};
                const auto e = test::exact_flow_map(m, sg, s, t, xp);
                for (int k = 0; k < 2; ++k) {
                    const double d = y[p][k].item<double>() - e[k];
                    num += d * d;
                    den += (e[k] - xp[k]) * (e[k] - xp[k]);
                }
            }
        }
        return std::sqrt(num / den);
    };
    // Relative composition defect |X(X(x, s, r), r, t) - X(x, s, t)| / |X(x, s, t) - x| (RMS over points and triples).
    const std::vector<std::array<double, 3>> triples{{0.0, 0.5, 1.0}, {0.0, 0.25, 1.0}, {0.0, 0.8, 1.0}, {0.2, 0.4, 0.9}};
    auto composition = [&] {
        double num = 0, den = 0;
        for (const auto& [s, r, t] : triples) {
            const auto x = points(s);
            const auto direct = flow(x, s, t);
            const auto two = flow(flow(x, s, r), r, t);
            num += (two - direct).pow(2).sum().item<double>();
            den += (direct - x).pow(2).sum().item<double>();
        }
        return std::sqrt(num / den);
    };
    // The same defect of a map that is not a flow map: one Euler step of the exact velocity,
    // x + (t - s) v_s(x) (the check can fail).
    double euler_num = 0, euler_den = 0;
    for (const auto& [s, r, t] : triples) {
        const auto x = points(s);
        for (int p = 0; p < 81; ++p) {
            const test::V2 xp{x[p][0].item<double>(), x[p][1].item<double>()};
            auto euler = [&](double a, double b, const test::V2& y) {
                const auto v = test::exact_velocity(m, sg, a, y);
                return test::V2{y[0] + (b - a) * v[0], y[1] + (b - a) * v[1]};
            };
            const auto direct = euler(s, t, xp), two = euler(r, t, euler(s, r, xp));
            for (int k = 0; k < 2; ++k) {
                euler_num += (two[k] - direct[k]) * (two[k] - direct[k]);
                euler_den += (direct[k] - xp[k]) * (direct[k] - xp[k]);
            }
        }
    }
    const double comp_euler = std::sqrt(euler_num / euler_den);
    auto identity_is_exact = [&] {
        for (double t : {0.0, 0.3, 0.7, 1.0}) {
            const auto x = points(t);
            if (!torch::equal(flow(x, t, t), x)) return false;
        }
        return true;
    };
    EXPECT_TRUE(identity_is_exact()) << "untrained";
    const double before = map_error(), comp_before = composition();
    tr.run(cfg.steps);
    const double after = map_error(), comp_after = composition();
    EXPECT_TRUE(identity_is_exact()) << "trained";
    std::printf("  flowmap X(x, s, t) against the exact map, relative L2 error of the displacement: trained %.4f, untrained %.3f; "
                "composition defect: trained %.4f, untrained %.3f, Euler steps of the exact velocity %.3f\n",
                after, before, comp_after, comp_before, comp_euler);
    // Tolerances: map 0.12 (measured 0.076; untrained 1.01); composition 0.12 (measured 0.082, the
    // untrained net's 0.046 is small only because its X barely moves; Euler steps of the exact
    // velocity, a map that is not a flow map, give 0.37).
    EXPECT_LT(after, 0.12);
    EXPECT_GT(before, 0.5);
    EXPECT_LT(comp_after, 0.12);
    EXPECT_GT(comp_euler, 0.12);

    const auto pm = learn::builtin_gaussian_mean();
    const auto pc = learn::builtin_gaussian_cov();
    for (std::int64_t nfe : {1, 2}) {
        test::V2 mean;
        test::M2 cov;
        moments(draw_jumps(tr, nfe, 10000, 3), mean, cov);
        std::printf("  flowmap samples, nfe %lld: mean (%.4f, %.4f), cov (%.4f, %.4f, %.4f); exact (1, -0.5), (2, 0.6, 0.5)\n",
                    static_cast<long long>(nfe), mean[0], mean[1], cov[0], cov[1], cov[3]);
        for (int k = 0; k < 2; ++k) EXPECT_NEAR(mean[k], pm[k], 0.06) << "nfe " << nfe;
        for (int k = 0; k < 4; ++k) EXPECT_NEAR(cov[k], pc[k], nfe == 1 ? 0.15 : 0.1) << "nfe " << nfe; // as meanflow's test
    }
}

