// generate::evaluate (float32, folded time/condition inputs, tiled layers, fast_expf) against a
// direct float64 evaluation of the network formula of docs/model_h5.md on random weights, for
// concat and FiLM, one and two time inputs, every activation, row counts around the block and
// tile sizes, and the output gate; fast_expf against std::exp.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kinflow/generate/network.hpp"

using namespace kinflow;
using generate::Linear;
using generate::Network;

namespace {

struct Dense { // W [out][in] row-major, as MODEL.h5 stores it
    int in = 0, out = 0;
    std::vector<double> w, b;
};

Dense random_dense(std::mt19937& g, int in, int out) {
    std::normal_distribution<double> n(0.0, 1.0 / std::sqrt(static_cast<double>(in)));
    Dense d{in, out, {}, {}};
    for (int i = 0; i < in * out; ++i) d.w.push_back(static_cast<float>(n(g)));
    for (int j = 0; j < out; ++j) d.b.push_back(static_cast<float>(n(g)));
    return d;
}

Linear transposed(const Dense& d) {
    Linear l;
    l.in = d.in;
    l.out = d.out;
    l.wt.resize(static_cast<std::size_t>(d.in * d.out));
    for (int j = 0; j < d.out; ++j)
        for (int k = 0; k < d.in; ++k) l.wt[k * d.out + j] = static_cast<float>(d.w[j * d.in + k]);
    for (double v : d.w) l.w.push_back(static_cast<float>(v));
    for (double v : d.b) l.b.push_back(static_cast<float>(v));
    return l;
}

std::vector<double> affine(const Dense& d, const std::vector<double>& h) {
    std::vector<double> z(d.b);
    for (int j = 0; j < d.out; ++j)
        for (int k = 0; k < d.in; ++k) z[j] += d.w[j * d.in + k] * h[k];
    return z;
}

double act(learn::Activation a, double z) {
    switch (a) {
    case learn::Activation::SiLU: return z / (1.0 + std::exp(-z));
    case learn::Activation::GELU: return 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
    case learn::Activation::Tanh: return std::tanh(z);
    }
    return z;
}

struct Case {
    bool film;
    int time_inputs, cond_dim;
    learn::Activation activation;
    int gate_column;
};

void check(const Case& c, std::int64_t rows) {
    std::mt19937 g(17 + rows);
    const int D = 2, H = 40, L = 3, TF = 6, FW = 12;
    Network net;
    auto& s = net.info.spec;
    s.dim = D;
    s.hidden = H;
    s.layers = L;
    s.cond_dim = c.cond_dim;
    s.time_features = TF;
    s.time_inputs = c.time_inputs;
    s.film = c.film;
    s.film_width = FW;
    s.activation = c.activation;
    net.omega = {1.0f, 10.0f, 100.0f};
    std::vector<Dense> dense;
    int in = s.first_width();
    for (int l = 0; l <= L; ++l) {
        dense.push_back(random_dense(g, in, l == L ? D : H));
        net.linears.push_back(transposed(dense.back()));
        in = H;
    }
    Dense embed, film;
    if (c.film) {
        embed = random_dense(g, s.embed_width(), FW);
        film = random_dense(g, FW, 2 * L * H);
        net.embed = transposed(embed);
        net.film = transposed(film);
    }
    net.info.spec.gate_column = c.gate_column;
    net.info.spec.gate_origin = -1.5;
    net.info.spec.gate_scale = 0.7;
    const double t = 0.3, gap = 0.45;
    const std::vector<float> cond = {0.25f, -0.8f};
    std::normal_distribution<float> n01;
    std::vector<float> x(static_cast<std::size_t>(rows * D)), out(x.size());
    for (auto& v : x) v = n01(g);
    generate::Scratch scratch;
    generate::evaluate(net, generate::prepare(net, t, cond.data(), gap), x.data(), rows, out.data(), scratch);

    // the formula: e = [sin(w t), cos(w t)(, sin(w gap), cos(w gap)), c] (w t rounded to float)
    std::vector<double> e;
    for (int k = 0; k < c.time_inputs; ++k) {
        const float tk = static_cast<float>(k == 0 ? t : gap);
        for (float w : net.omega) e.push_back(std::sin(static_cast<double>(w * tk)));
        for (float w : net.omega) e.push_back(std::cos(static_cast<double>(w * tk)));
    }
    for (int k = 0; k < c.cond_dim; ++k) e.push_back(cond[k]);
    std::vector<double> gb;
    if (c.film) {
        auto a = affine(embed, e);
        for (auto& v : a) v = act(c.activation, v);
        gb = affine(film, a);
    }
    const double gate = c.gate_column >= 0 ? -std::expm1(-(cond[c.gate_column] - net.info.spec.gate_origin) / net.info.spec.gate_scale) : 1.0;
    double worst = 0.0, scale = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) {
        std::vector<double> h(x.begin() + r * D, x.begin() + (r + 1) * D);
        if (!c.film) h.insert(h.end(), e.begin(), e.end());
        for (int l = 0; l < L; ++l) {
            auto z = affine(dense[l], h);
            for (int j = 0; j < H; ++j) {
                if (c.film) z[j] = z[j] * (1.0 + gb[2 * l * H + j]) + gb[(2 * l + 1) * H + j];
                z[j] = act(c.activation, z[j]);
            }
            h = z;
        }
        const auto y = affine(dense[L], h);
        for (int k = 0; k < D; ++k) {
            worst = std::max(worst, std::fabs(out[r * D + k] - gate * y[k]));
            scale = std::max(scale, std::fabs(gate * y[k]));
        }
    }
    // float32 arithmetic over ~40-term sums of O(1) terms: a few 1e-7 of the output scale
    EXPECT_LT(worst, 2e-6 * std::max(scale, 1.0)) << "film " << c.film << " time inputs " << c.time_inputs << " cond "
                                                   << c.cond_dim << " activation " << learn::to_string(c.activation)
                                                   << " rows " << rows;
}

} // namespace

TEST(GenerateNetwork, AgreesWithTheFormulaInFloat64) {
    const std::vector<Case> cases = {
        {false, 1, 0, learn::Activation::SiLU, -1}, {false, 1, 2, learn::Activation::GELU, -1},
        {false, 2, 2, learn::Activation::Tanh, 1},  {true, 1, 0, learn::Activation::SiLU, -1},
        {true, 2, 2, learn::Activation::SiLU, 0},   {true, 1, 2, learn::Activation::GELU, 1},
    };
    for (const auto& c : cases)
        for (std::int64_t rows : {1, 3, 4, 63, 64, 65, 203}) check(c, rows);
}

TEST(GenerateNetwork, FastExpfWithin1e7Relative) {
    double worst = 0.0;
    for (int i = 0; i <= 2000000; ++i) {
        const float x = -87.0f + 175.0f * static_cast<float>(i) / 2000000.0f;
        const double e = std::exp(static_cast<double>(x));
        worst = std::max(worst, std::fabs(generate::fast_expf(x) - e) / e);
    }
    EXPECT_LT(worst, 1e-7);
    EXPECT_EQ(generate::fast_expf(0.0f), 1.0f);
    EXPECT_GT(generate::fast_expf(200.0f), 1e38f); // clamped, finite
    EXPECT_GT(generate::fast_expf(-200.0f), 0.0f);
}
