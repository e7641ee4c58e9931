// The MLP and its hand-written passes (against autograd), the model file, and the integrators
// (convergence orders; exact Gaussian vector fields transport N(0, I) to N(m, S)).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "kinflow/learn/model.hpp"
#include "kinflow/learn/model_file.hpp"
#include "kinflow/learn/scheduler.hpp"
#include "kinflow/sample/sampler.hpp"
#include "learn/learn_support.hpp"

using namespace kinflow;

namespace {
learn::ModelSpec spec(learn::Activation act, int cond_dim = 2, bool film = false) {
    learn::ModelSpec s;
    s.film = film;
    s.dim = 3;
    s.cond_dim = cond_dim;
    s.hidden = 24;
    s.layers = 3;
    s.activation = act;
    s.time_features = 8;
    return s;
}
double rel_diff(const torch::Tensor& a, const torch::Tensor& b) { return ((a - b).norm() / b.norm()).item<double>(); }

/// Give a film model's zero-initialised modulation layer random weights (a trained model's state),
/// so that every FiLM path carries a gradient.
void randomize_film(learn::MLP& m) {
    if (!m->spec().film) return;
    torch::NoGradGuard ng;
    m->film()->weight.normal_(0.0, 0.3);
    m->film()->bias.normal_(0.0, 0.3);
}
} // namespace

TEST(LearnModel, HandWrittenBackwardMatchesAutograd) {
    for (bool film : {false, true})
    for (auto act : {learn::Activation::SiLU, learn::Activation::GELU, learn::Activation::Tanh}) {
        torch::manual_seed(3);
        learn::MLP m(spec(act, 2, film));
        randomize_film(m);
        const std::int64_t n = 97;
        const auto x = torch::randn({n, 3}), t = torch::rand({n}), c = torch::randn({n, 2}), target = torch::randn({n, 3});
        // Autograd: the parameters' .grad() are views of the flat gradient buffer.
        auto& g = m->flat_gradients();
        g.zero_();
        const auto loss = (m->forward(x, t, c) - target).pow(2).sum() / (n * 3.0);
        loss.backward();
        const auto reference = g.narrow(0, 0, m->parameter_count()).clone();
        // Hand-written: y and the gradient of the same loss.
        learn::MLPWorkspace ws(m);
        g.fill_(123.0f); // backward() overwrites
        ws.set_features(x, t, c);
        const auto y = ws.forward().clone();
        EXPECT_LT(rel_diff(y, m->forward(x, t, c).detach()), 1e-6);
        ws.backward(2.0 * (y - target) / (n * 3.0));
        EXPECT_LT(rel_diff(g.narrow(0, 0, m->parameter_count()), reference), 1e-5) << learn::to_string(act) << " film " << film;
        // The chunked step (7 rows at a time, gradients summed over chunks): the same loss and gradient.
        g.fill_(123.0f);
        ws.set_features(x, t, c);
        const double chunked_loss = ws.mse_step(target, 1.0 / (n * 3.0), 7);
        EXPECT_NEAR(chunked_loss, loss.item<double>(), 1e-5 * loss.item<double>());
        EXPECT_LT(rel_diff(g.narrow(0, 0, m->parameter_count()), reference), 1e-5) << learn::to_string(act);
        // A row weight (train.tail_weight): the chunked step against autograd of scale * sum w |r|^2.
        const auto w = 1.0 + 0.7 * x.pow(2).sum(1) / 3.0;
        g.zero_();
        const auto wloss = ((m->forward(x, t, c) - target).pow(2).sum(1) * w).sum() / (n * 3.0);
        wloss.backward();
        const auto wreference = g.narrow(0, 0, m->parameter_count()).clone();
        EXPECT_GT(rel_diff(wreference, reference), 1e-2); // the weight changes the gradient
        g.fill_(123.0f);
        ws.set_features(x, t, c);
        const double weighted_loss = ws.mse_step(target, 1.0 / (n * 3.0), 7, w);
        EXPECT_NEAR(weighted_loss, wloss.item<double>(), 1e-5 * wloss.item<double>());
        EXPECT_LT(rel_diff(g.narrow(0, 0, m->parameter_count()), wreference), 1e-5) << learn::to_string(act);
        // And every layer's weight gradient is a view of the buffer.
        EXPECT_EQ(m->linears()[1]->weight.grad().data_ptr<float>(),
                  g.data_ptr<float>() + m->linears()[0]->weight.numel() + m->linears()[0]->bias.numel());
    }
}

TEST(LearnModel, FoldedEvaluationMatchesForward) {
    for (bool film : {false, true}) {
        torch::manual_seed(4);
        learn::MLP m(spec(learn::Activation::SiLU, 2, film));
        randomize_film(m);
        learn::MLPWorkspace ws(m);
        const auto x = torch::randn({50, 3});
        const auto c = torch::tensor({0.3f, -1.2f});
        auto out = torch::empty({50, 3});
        ws.evaluate(x, 0.37, c, out);
        torch::NoGradGuard ng;
        const auto ref = m->forward(x, torch::full({50}, 0.37f), c.expand({50, 2}));
        EXPECT_LT(rel_diff(out, ref), 1e-6) << "film " << film;
    }
    torch::manual_seed(4);
    learn::MLP m(spec(learn::Activation::SiLU));
    // Parameters live in the flat buffer.
    m->flat_parameters().zero_();
    EXPECT_EQ(m->linears()[0]->weight.abs().sum().item<float>(), 0.0f);
}

TEST(LearnModel, FilmShapesAndZeroInitialModulation) {
    // Widths: first layer x only (3), embedding [8 time features, 2 conditions] -> film_width 5,
    // modulation 5 -> 2 x 3 layers x 24; the flat buffer holds exactly these parameters.
    torch::manual_seed(8);
    auto sp = spec(learn::Activation::SiLU, 2, true);
    sp.film_width = 5;
    learn::MLP m(sp);
    EXPECT_EQ(m->linears()[0]->weight.sizes(), (std::vector<std::int64_t>{24, 3}));
    EXPECT_EQ(m->embed()->weight.sizes(), (std::vector<std::int64_t>{5, 10}));
    EXPECT_EQ(m->film()->weight.sizes(), (std::vector<std::int64_t>{144, 5}));
    const std::int64_t expected = (3 * 24 + 24) + 2 * (24 * 24 + 24) + (24 * 3 + 3) + (10 * 5 + 5) + (5 * 144 + 144);
    EXPECT_EQ(m->parameter_count(), expected);
    EXPECT_EQ(m->film()->bias.data_ptr<float>() + 144, m->flat_parameters().data_ptr<float>() + expected);
    const auto e = torch::randn({5, 10});
    EXPECT_EQ(m->modulation(e).sizes(), (std::vector<std::int64_t>{5, 144}));
    // Zero-initialised modulation: at initialisation the output does not depend on t or the condition.
    torch::NoGradGuard ng;
    const auto x = torch::randn({7, 3});
    const auto a = m->forward(x, torch::full({7}, 0.1f), torch::zeros({7, 2}));
    const auto b = m->forward(x, torch::full({7}, 0.9f), torch::ones({7, 2}));
    EXPECT_TRUE(torch::equal(a, b));
    // A film model without time features or conditions is refused.
    auto bare = spec(learn::Activation::SiLU, 0, true);
    bare.time_features = 0;
    EXPECT_THROW(learn::MLP{bare}, Error);
}

TEST(LearnModel, FilmGradientMatchesFiniteDifferences) {
    // Independent of autograd: central differences of the loss in float64 (a float64 copy of the
    // network) against the hand-written float32 gradient, on parameters of every kind of layer.
    torch::manual_seed(9);
    const auto sp = spec(learn::Activation::Tanh, 2, true);
    learn::MLP m(sp);
    randomize_film(m);
    learn::MLP m64(sp);
    {
        torch::NoGradGuard ng;
        m64->flat_parameters().copy_(m->flat_parameters());
    }
    m64->to(torch::kFloat64);
    const std::int64_t n = 13;
    const auto x = torch::randn({n, 3}, torch::kFloat64), t = torch::rand({n}, torch::kFloat64);
    const auto c = torch::randn({n, 2}, torch::kFloat64), target = torch::randn({n, 3}, torch::kFloat64);
    learn::MLPWorkspace ws(m);
    ws.set_features(x.to(torch::kFloat32), t.to(torch::kFloat32), c.to(torch::kFloat32));
    ws.mse_step(target.to(torch::kFloat32), 1.0 / n, n);
    const auto grad = m->flat_gradients();
    auto params64 = m64->parameters();
    torch::NoGradGuard ng;
    auto loss64 = [&] { return (m64->forward(x, t, c) - target).pow(2).sum().item<double>() / n; };
    // The flat index of the first element of each parameter tensor, in registration order.
    std::int64_t offset = 0, checked = 0;
    double worst = 0;
    for (auto& p : params64) {
        auto flat = p.view({-1});
        for (std::int64_t k : {std::int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
            const double h = 1e-6, v = flat[k].item<double>();
            flat[k] = v + h;
            const double up = loss64();
            flat[k] = v - h;
            const double down = loss64();
            flat[k] = v;
            const double fd = (up - down) / (2 * h);
            const double hw = grad[offset + k].item<double>();
            worst = std::max(worst, std::fabs(fd - hw) / (std::fabs(fd) + 1e-3));
            ++checked;
        }
        offset += flat.numel();
    }
    std::printf("  film gradient: %lld entries, worst relative difference %.2e\n", static_cast<long long>(checked), worst);
    EXPECT_EQ(offset, m->parameter_count());
    EXPECT_LT(worst, 1e-3); // float32 forward/backward against float64 differences
}

namespace {
/// A meanflow network: two time inputs (s and the gap t - s).
learn::ModelSpec mean_spec(learn::Activation act, bool film) {
    auto s = spec(act, 2, film);
    s.time_inputs = 2;
    return s;
}
} // namespace

TEST(LearnModel, MeanFlowJvpRoutesAgree) {
    // MeanFlow's derivative of u(x, s, t) along the tangent (v, 1, 0) on (x, s, t), i.e. (v, 1, -1)
    // on the network's inputs (x, s, gap = t - s), by four routes on a fixed network: the
    // hand-written tangent pass (the training route) against LibTorch's forward-mode AD and double
    // backward (float32, the same arithmetic in another order: round-off) and float64 central
    // differences (eps 1e-6: truncation (eps w)^2 / 6 ~ 2e-9 for time frequencies w up to 100, so
    // the difference measures the float32 round-off of the hand route, w t rounded to float32
    // included). Tolerance 1e-5 relative.
    double worst[3] = {0, 0, 0};
    for (bool film : {false, true})
    for (auto act : {learn::Activation::SiLU, learn::Activation::GELU, learn::Activation::Tanh}) {
        torch::manual_seed(13);
        learn::MLP m(mean_spec(act, film));
        randomize_film(m);
        const std::int64_t n = 61;
        const auto x = torch::randn({n, 3}), s = torch::rand({n}) * 0.9, c = torch::randn({n, 2}), v = torch::randn({n, 3});
        const auto gap = torch::rand({n}) * (1.0 - s);
        const auto hand = learn::output_jvp(m, x, s, c, gap, v, 1.0, -1.0, learn::JvpRoute::Hand);
        torch::Tensor y_ref;
        {
            torch::NoGradGuard ng;
            y_ref = m->forward(x, s, c, gap);
        }
        EXPECT_LT(rel_diff(hand.y, y_ref), 1e-6);
        int k = 0;
        for (auto route : {learn::JvpRoute::ForwardAD, learn::JvpRoute::DoubleBackward, learn::JvpRoute::CentralDifference}) {
            const auto other = learn::output_jvp(m, x, s, c, gap, v, 1.0, -1.0, route);
            const double d = rel_diff(hand.dy.to(torch::kFloat64), other.dy.to(torch::kFloat64));
            worst[k] = std::max(worst[k], d);
            ++k;
            EXPECT_LT(d, 1e-5) << learn::to_string(route) << " " << learn::to_string(act) << " film " << film;
            EXPECT_LT(rel_diff(hand.y.to(torch::kFloat64), other.y.to(torch::kFloat64)), 1e-6) << learn::to_string(route);
        }
        // The time part of the tangent matters: without it the derivative differs.
        const auto x_only = learn::output_jvp(m, x, s, c, gap, v, 0.0, 0.0, learn::JvpRoute::Hand);
        EXPECT_GT(rel_diff(x_only.dy, hand.dy), 1e-2);
        // The sampler's folded evaluation at one (s, gap) equals the forward pass.
        learn::MLPWorkspace ws(m);
        auto out = torch::empty({n, 3});
        const auto crow = torch::tensor({0.3f, -1.2f});
        ws.evaluate(x, 0.25, crow, out, 0.5);
        torch::NoGradGuard ng;
        EXPECT_LT(rel_diff(out, m->forward(x, torch::full({n}, 0.25f), crow.expand({n, 2}), torch::full({n}, 0.5f))), 1e-6);
    }
    std::printf("  meanflow JVP, worst relative difference from the hand-written pass: forward-mode AD %.2e, double backward "
                "%.2e, float64 central difference %.2e\n", worst[0], worst[1], worst[2]);
}

TEST(LearnModel, MeanFlowStepMatchesAutograd) {
    // The training route (MLPWorkspace::meanflow_step, chunks of 7 rows) against autograd of
    // scale sum_i sg(w_i) |u_i - sg(target_i)|^2, target = v + gap du with du by forward-mode AD,
    // w_i = (sg(l_i) + 1e-3)^-p: the same unweighted loss and the same gradient.
    for (bool film : {false, true})
    for (double p : {0.0, 0.75}) {
        torch::manual_seed(17);
        learn::MLP m(mean_spec(learn::Activation::SiLU, film));
        randomize_film(m);
        const std::int64_t n = 45;
        const auto x = torch::randn({n, 3}), s = torch::rand({n}) * 0.9, c = torch::randn({n, 2}), v = torch::randn({n, 3});
        const auto gap = torch::rand({n}) * (1.0 - s) * (torch::rand({n}) < 0.5).to(torch::kFloat32); // about half s = t
        const double scale = 1.0 / (n * 3.0);
        const auto ad = learn::output_jvp(m, x, s, c, gap, v, 1.0, -1.0, learn::JvpRoute::ForwardAD);
        const auto target = (v + gap.unsqueeze(1) * ad.dy).detach();
        auto& g = m->flat_gradients();
        g.zero_();
        const auto l = (m->forward(x, s, c, gap) - target).pow(2).sum(1);
        const auto w = (l.detach() + 1e-3).pow(-p);
        ((w * l).sum() * scale).backward();
        const auto reference = g.narrow(0, 0, m->parameter_count()).clone();
        const double unweighted = l.sum().item<double>() * scale;
        learn::MLPWorkspace ws(m);
        g.fill_(123.0f);
        ws.set_features(x, s, c, gap);
        const double loss = ws.meanflow_step(v, gap, p, scale, 7);
        EXPECT_NEAR(loss, unweighted, 1e-5 * unweighted);
        EXPECT_LT(rel_diff(g.narrow(0, 0, m->parameter_count()), reference), 1e-4) << "film " << film << " p " << p;
    }
}

TEST(LearnModel, OutputGateVanishesAtTheSourceTimeAndKeepsEveryPassExact) {
    // train.time_gate: y = g(c_1) net with g = 1 - exp(-(c_1 - origin) / scale) on condition column 1.
    // Against the same weights without the gate and g computed independently in float64: the
    // forward pass, the folded evaluation, the hand-written backward (autograd reference), the
    // meanflow step (tangent and backward gated) and g = 0 exactly at the origin.
    for (bool film : {false, true})
    for (int time_inputs : {1, 2}) {
        torch::manual_seed(21);
        auto sp = spec(learn::Activation::SiLU, 2, film);
        sp.time_inputs = time_inputs;
        learn::MLP plain(sp);
        randomize_film(plain);
        sp.gate_column = 1;
        sp.gate_origin = static_cast<float>(-0.7);
        sp.gate_scale = 0.45;
        learn::MLP m(sp);
        {
            torch::NoGradGuard ng;
            m->flat_parameters().copy_(plain->flat_parameters());
        }
        const std::int64_t n = 40;
        const auto x = torch::randn({n, 3}), t = torch::rand({n}), v = torch::randn({n, 3}), target = torch::randn({n, 3});
        auto c = torch::randn({n, 2});
        c.narrow(0, 0, 5).select(1, 1).fill_(static_cast<float>(sp.gate_origin)); // five rows at the source time
        const auto gap = time_inputs == 2 ? torch::rand({n}) * 0.5 : torch::Tensor();
        torch::Tensor y_plain, y;
        {
            torch::NoGradGuard ng;
            y_plain = plain->forward(x, t, c, gap);
            y = m->forward(x, t, c, gap);
        }
        const auto c64 = c.select(1, 1).to(torch::kFloat64);
        const auto g64 = 1.0 - torch::exp(-(c64 - sp.gate_origin) / sp.gate_scale);
        EXPECT_LT(rel_diff(y.to(torch::kFloat64), y_plain.to(torch::kFloat64) * g64.unsqueeze(1)), 1e-6);
        EXPECT_EQ(y.narrow(0, 0, 5).abs().max().item<float>(), 0.0f) << "film " << film;
        EXPECT_GT(y.narrow(0, 5, n - 5).abs().min().item<float>(), 0.0f);
        // Folded evaluation at one condition row: exactly zero at the origin, the forward pass elsewhere.
        learn::MLPWorkspace ws(m);
        auto out = torch::empty({n, 3});
        const double gap0 = time_inputs == 2 ? 0.3 : 0.0;
        for (float c1 : {static_cast<float>(sp.gate_origin), 0.4f}) {
            const auto crow = torch::tensor({0.2f, c1});
            ws.evaluate(x, 0.6, crow, out, gap0);
            torch::NoGradGuard ng;
            const auto ref = m->forward(x, torch::full({n}, 0.6f), crow.expand({n, 2}),
                                        time_inputs == 2 ? torch::full({n}, 0.3f) : torch::Tensor());
            if (c1 == static_cast<float>(sp.gate_origin)) EXPECT_EQ(out.abs().max().item<float>(), 0.0f);
            else EXPECT_LT(rel_diff(out, ref), 1e-6);
        }
        auto& grad = m->flat_gradients();
        const double scale = 1.0 / (n * 3.0);
        if (time_inputs == 1) { // the mse step against autograd
            grad.zero_();
            ((m->forward(x, t, c) - target).pow(2).sum() * scale).backward();
            const auto reference = grad.narrow(0, 0, m->parameter_count()).clone();
            grad.fill_(123.0f);
            ws.set_features(x, t, c);
            ws.mse_step(target, scale, 7);
            EXPECT_LT(rel_diff(grad.narrow(0, 0, m->parameter_count()), reference), 1e-5) << "film " << film;
        } else { // the meanflow step against autograd with the forward-mode AD target
            const auto ad = learn::output_jvp(m, x, t, c, gap, v, 1.0, -1.0, learn::JvpRoute::ForwardAD);
            const auto hand = learn::output_jvp(m, x, t, c, gap, v, 1.0, -1.0, learn::JvpRoute::Hand);
            EXPECT_LT(rel_diff(hand.dy, ad.dy), 1e-5);
            EXPECT_EQ(hand.dy.narrow(0, 0, 5).abs().max().item<float>(), 0.0f);
            const auto tgt = (v + gap.unsqueeze(1) * ad.dy).detach();
            grad.zero_();
            ((m->forward(x, t, c, gap) - tgt).pow(2).sum() * scale).backward();
            const auto reference = grad.narrow(0, 0, m->parameter_count()).clone();
            grad.fill_(123.0f);
            ws.set_features(x, t, c, gap);
            ws.meanflow_step(v, gap, 0.0, scale, 7);
            EXPECT_LT(rel_diff(grad.narrow(0, 0, m->parameter_count()), reference), 1e-4) << "film " << film;
        }
    }
}

TEST(LearnModel, ModelFileRoundTrip) {
    torch::manual_seed(5);
    learn::ModelInfo info;
    info.spec = spec(learn::Activation::GELU, 1);
    info.objective = learn::Objective::DSM;
    info.conditions = {"ks.chi"};
    info.norm.mean = {1, 2, 3};
    info.norm.std = {4, 5, 6};
    info.norm.cond_mean = {0.5};
    info.norm.cond_std = {2};
    info.source = "gaussian";
    info.files = {"a.h5", "b.h5"};
    info.beta_max = 12;
    info.step = 77;
    info.corrector = "out/first.pt";
    info.deck = "[train]\nobjective = dsm\n";
    learn::MLP m(info.spec);
    const std::string path = test::scratch("roundtrip.pt");
    learn::save_model_file(path, info, m->flat_parameters());
    const auto back = learn::load_model_file(path);
    EXPECT_TRUE(torch::equal(back.model->flat_parameters(), m->flat_parameters()));
    EXPECT_EQ(back.info.objective, learn::Objective::DSM);
    EXPECT_EQ(back.info.spec.activation, learn::Activation::GELU);
    EXPECT_EQ(back.info.spec.cond_dim, 1);
    EXPECT_EQ(back.info.conditions, info.conditions);
    EXPECT_EQ(back.info.norm.std, info.norm.std);
    EXPECT_EQ(back.info.norm.cond_std, info.norm.cond_std);
    EXPECT_EQ(back.info.files, info.files);
    EXPECT_EQ(back.info.beta_max, 12.0);
    EXPECT_EQ(back.info.step, 77);
    EXPECT_EQ(back.info.corrector, "out/first.pt"); // w2map with train.corrector: the first stage
    EXPECT_EQ(back.info.deck, info.deck);
    EXPECT_FALSE(back.info.spec.film);
    EXPECT_THROW(learn::load_model_file(test::scratch("missing.pt")), Error);
    // A film model keeps its embedding and modulation weights.
    info.spec.film = true;
    info.spec.film_width = 7;
    learn::MLP mf(info.spec);
    randomize_film(mf);
    learn::save_model_file(path, info, mf->flat_parameters());
    const auto film_back = learn::load_model_file(path);
    EXPECT_TRUE(film_back.info.spec.film);
    EXPECT_EQ(film_back.info.spec.film_width, 7);
    EXPECT_TRUE(torch::equal(film_back.model->flat_parameters(), mf->flat_parameters()));
    EXPECT_EQ(film_back.info.spec.time_inputs, 1);
    // A meanflow model has two time inputs.
    info.objective = learn::Objective::MeanFlow;
    info.spec.time_inputs = 2;
    learn::MLP mm(info.spec);
    learn::save_model_file(path, info, mm->flat_parameters());
    const auto mean_back = learn::load_model_file(path);
    EXPECT_EQ(mean_back.info.objective, learn::Objective::MeanFlow);
    EXPECT_EQ(mean_back.info.spec.time_inputs, 2);
    EXPECT_EQ(mean_back.model->spec().input_width(), 3 + 2 * 8 + 1);
    EXPECT_TRUE(torch::equal(mean_back.model->flat_parameters(), mm->flat_parameters()));
    EXPECT_FALSE(mean_back.info.spec.gated());
    // A gated model keeps its gate; a gate column beyond the conditions is a damaged file.
    info.spec.gate_column = 0;
    info.spec.gate_origin = -0.25;
    info.spec.gate_scale = 0.75;
    learn::save_model_file(path, info, mm->flat_parameters());
    const auto gate_back = learn::load_model_file(path);
    EXPECT_EQ(gate_back.info.spec.gate_column, 0);
    EXPECT_EQ(gate_back.info.spec.gate_origin, -0.25);
    EXPECT_EQ(gate_back.info.spec.gate_scale, 0.75);
    info.spec.gate_column = 1; // one condition only
    learn::save_model_file(path, info, mm->flat_parameters());
    EXPECT_THROW(learn::load_model_file(path), Error);
}

TEST(LearnSampler, IntegratorsConvergeAtTheirOrder) {
    // dx/dt = t x on [0, 1]: x(1) = x(0) e^{1/2}. Halving the step divides the error by 2^p.
    torch::NoGradGuard ng;
    const sample::Field f = [](const torch::Tensor& x, double t, torch::Tensor& out) { at::mul_out(out, x, t); };
    const double exact = std::exp(0.5);
    for (auto [method, order] : {std::pair{sample::Method::Euler, 1}, {sample::Method::Heun, 2}, {sample::Method::RK4, 4}}) {
        double err[2];
        for (int k = 0; k < 2; ++k) {
            auto x = torch::ones({1, 1}, torch::kFloat64);
            sample::Integrator integ;
            const std::int64_t steps = 8 << k;
            const auto evals = integ.ode(method, steps, 0.0, 1.0, x, f);
            EXPECT_EQ(evals, steps * sample::evaluations_per_step(method));
            err[k] = std::fabs(x.item<double>() - exact);
        }
        const double observed = std::log2(err[0] / err[1]);
        EXPECT_NEAR(observed, order, 0.25) << sample::to_string(method);
    }
}

namespace {
/// Sample moments of n draws transported by `net` from N(0, I), in 2D.
void moments_after(const learn::ModelInfo& info, const sample::Network& net, sample::Method method, std::int64_t nfe,
                   test::V2& mean, test::M2& cov) {
    torch::manual_seed(11);
    const std::int64_t n = 20000;
    auto x = torch::randn({n, 2}, torch::kFloat64);
    const sample::Noise noise = [](std::int64_t, torch::Tensor& z) { z.normal_(); };
    sample::transport(info, net, method, nfe, x, noise);
    const auto m = x.mean(0);
    const auto c = (x - m).t().mm(x - m) / static_cast<double>(n);
    mean = {m[0].item<double>(), m[1].item<double>()};
    cov = {c[0][0].item<double>(), c[0][1].item<double>(), c[1][0].item<double>(), c[1][1].item<double>()};
}
} // namespace

TEST(LearnSampler, ExactGaussianFieldsTransportNoiseToTheData) {
    // Data N(m, S): the exact CondOT velocity (ODE) and the exact VP noise prediction (probability-
    // flow ODE and reverse SDE) must carry N(0, I) to N(m, S). 20000 samples: 5 standard errors
    // (mean: sqrt(S_kk/n) <= 0.01; covariance: sqrt((S_ii S_jj + S_ij^2)/n) <= 0.015) plus the
    // discretisation error (Euler–Maruyama: O(h), 0.03 at 1000 steps).
    const test::V2 m{1.0, -0.5};
    const test::M2 s{2.0, 0.6, 0.6, 0.5};
    learn::ModelInfo info;
    info.spec.dim = 2;
    const learn::VPScheduler vp{info.beta_min, info.beta_max};
    // Both fields are affine in x: out = (x - c) A^T + b, evaluated with tensor ops.
    auto affine = [](const torch::Tensor& x, const test::M2& a, const test::V2& c, const test::V2& b, torch::Tensor& out) {
        const auto at = torch::tensor({a[0], a[2], a[1], a[3]}, torch::kFloat64).view({2, 2});
        const auto ct = torch::tensor({c[0], c[1]}, torch::kFloat64), bt = torch::tensor({b[0], b[1]}, torch::kFloat64);
        out.copy_((x - ct).mm(at) + bt);
    };
    // Exact velocity u_t(x) = m + (t S - (1 - t) I) Sigma_t^{-1} (x - t m): columns of A from unit vectors.
    const sample::Network fm_net = [&](const torch::Tensor& x, double t, torch::Tensor& out) {
        const test::V2 b = test::exact_velocity(m, s, t, {t * m[0], t * m[1]});
        const test::V2 e0 = test::exact_velocity(m, s, t, {t * m[0] + 1, t * m[1]});
        const test::V2 e1 = test::exact_velocity(m, s, t, {t * m[0], t * m[1] + 1});
        affine(x, {e0[0] - b[0], e1[0] - b[0], e0[1] - b[1], e1[1] - b[1]}, {t * m[0], t * m[1]}, b, out);
    };
    const sample::Network vp_net = [&](const torch::Tensor& x, double t, torch::Tensor& out) {
        const double a = vp.alpha(t), sg = vp.sigma(t);
        const test::V2 c{a * m[0], a * m[1]};
        const test::V2 e0 = test::exact_eps(m, s, a, sg, {c[0] + 1, c[1]});
        const test::V2 e1 = test::exact_eps(m, s, a, sg, {c[0], c[1] + 1});
        affine(x, {e0[0], e1[0], e0[1], e1[1]}, c, {0.0, 0.0}, out);
    };
    struct Case {
        learn::Objective objective;
        sample::Method method;
        std::int64_t nfe;
        double tol_extra;
    };
    for (const auto& c : {Case{learn::Objective::FM, sample::Method::RK4, 40, 0.0},
                          Case{learn::Objective::DSM, sample::Method::RK4, 200, 0.0},
                          Case{learn::Objective::DSM, sample::Method::EulerMaruyama, 1000, 0.03}}) {
        info.objective = c.objective;
        test::V2 mean;
        test::M2 cov;
        moments_after(info, c.objective == learn::Objective::FM ? fm_net : vp_net, c.method, c.nfe, mean, cov);
        const std::string what = std::string(learn::to_string(c.objective)) + " " + sample::to_string(c.method);
        std::printf("  %s nfe %lld: mean (%.4f, %.4f), cov (%.4f, %.4f, %.4f)\n", what.c_str(), static_cast<long long>(c.nfe),
                    mean[0], mean[1], cov[0], cov[1], cov[3]);
        EXPECT_NEAR(mean[0], m[0], 0.05 + c.tol_extra) << what;
        EXPECT_NEAR(mean[1], m[1], 0.05 + c.tol_extra) << what;
        for (int k = 0; k < 4; ++k) EXPECT_NEAR(cov[k], s[k], 0.075 + 2 * c.tol_extra) << what << " cov " << k;
    }
}

TEST(LearnSampler, ExactAverageVelocityJumpsAreExactAtAnyNfe) {
    // The exact average velocity composes: x_{k+1} = x_k + (t_{k+1} - t_k) u(x_k, t_k, t_{k+1}) is
    // X_{t_{k+1}}(X_{t_k}^{-1}(x_k)), so 1, 2 or 4 jumps all land on X_1(x_0) = m + S^{1/2} x_0
    // (float64 round-off).
    const test::V2 m{1.0, -0.5};
    const test::M2 s{2.0, 0.6, 0.6, 0.5};
    const sample::AverageField u = [&](const torch::Tensor& x, double s0, double t, torch::Tensor& out) {
        for (std::int64_t i = 0; i < x.size(0); ++i) {
            const auto r = test::exact_average_velocity(m, s, s0, t, {x[i][0].item<double>(), x[i][1].item<double>()});
            out[i][0] = r[0];
            out[i][1] = r[1];
        }
    };
    torch::manual_seed(19);
    const auto x0 = torch::randn({20, 2}, torch::kFloat64);
    const auto root = test::sqrt_spd(s);
    for (std::int64_t nfe : {1, 2, 4}) {
        auto x = x0.clone();
        sample::Integrator integ;
        EXPECT_EQ(integ.jumps(nfe, 0.0, 1.0, x, u), nfe);
        double worst = 0;
        for (std::int64_t i = 0; i < 20; ++i) {
            const auto e = test::apply(root, {x0[i][0].item<double>(), x0[i][1].item<double>()});
            for (int k = 0; k < 2; ++k) worst = std::max(worst, std::fabs(x[i][k].item<double>() - m[k] - e[k]));
        }
        EXPECT_LT(worst, 1e-12) << "nfe " << nfe;
    }
}
