// kinflow-model-reference OUT_DIR: LibTorch's outputs for postprocess/kinflow_model.py to match.
// For every objective, activation and condition embedding, without and with conditions, a model
// with random weights (a trained model's FiLM modulation is not zero) is written as CASE.h5 by
// learn::save_model_h5 (what kinflow-train calls), and CASE.ref.h5 beside it holds random
// normalised inputs and the network's outputs on them: MLP::forward (per-row times and
// conditions), MLPWorkspace::evaluate (one time and condition row, the sampler's path) and the
// field kinflow-sample integrates (sample::ode_field; w2map: sample::transport's map; meanflow: the
// average velocity u(x, t0, t0 + gap0) and two jumps of Integrator::jumps); fm and meanflow also with the
// output gate of train.time_gate (CASE_gate).
// tests/postprocess/test_kinflow_model.py runs it. No MPI or Kokkos: LibTorch and HDF5 only.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "kinflow/io/hdf5.hpp"
#include "kinflow/learn/model.hpp"
#include "kinflow/learn/model_file.hpp"
#include "kinflow/learn/scheduler.hpp"
#include "kinflow/sample/sampler.hpp"

using namespace kinflow;

namespace {

void write(hid_t file, const std::string& name, const torch::Tensor& t) {
    const auto c = t.detach().to(torch::kFloat32).contiguous();
    std::vector<hsize_t> dims(c.sizes().begin(), c.sizes().end());
    io::Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose,
                     "H5Screate_simple");
    io::Handle d(H5Dcreate2(file, name.c_str(), H5T_NATIVE_FLOAT, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Dclose, "create " + name);
    if (c.numel() > 0)
        io::h5check_status(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data_ptr<float>()), name);
}

std::vector<double> random_vector(int n, double lo, double hi) {
    const auto r = torch::rand({n}, torch::kFloat64) * (hi - lo) + lo;
    return std::vector<double>(r.data_ptr<double>(), r.data_ptr<double>() + n);
}

/// One case: CASE.h5 (the model) and CASE.ref.h5 (inputs and LibTorch outputs).
void write_case(const std::string& dir, learn::Objective objective, learn::Activation act, bool film, int cond_dim,
                int index, bool gated = false) {
    learn::ModelInfo info;
    auto& s = info.spec;
    s.dim = 2 + index % 2;
    s.cond_dim = cond_dim;
    s.hidden = 16;
    s.layers = 2 + index % 2;
    s.activation = act;
    s.time_features = objective == learn::Objective::W2Map ? 0 : 8;
    s.time_inputs = objective == learn::Objective::MeanFlow ? 2 : 1;
    s.film = film;
    s.film_width = 8;
    info.objective = objective;
    for (int c = 0; c < cond_dim; ++c)
        info.conditions.push_back(c == 0 ? "ks.chi" : "dsmc.kappa");
    info.norm.mean = random_vector(s.dim, -2.0, 2.0);
    info.norm.std = random_vector(s.dim, 0.5, 3.0);
    info.norm.cond_mean = random_vector(cond_dim, -1.0, 1.0);
    info.norm.cond_std = random_vector(cond_dim, 0.3, 2.0);
    // Snapshot sources (their own normalisation; tfm: the target's) with conditions, noise without.
    if (objective == learn::Objective::TFM) {
        info.source = "snapshot:0";
        info.norm.source_mean = info.norm.mean;
        info.norm.source_std = info.norm.std;
        info.time_origin = 0.25;
        info.time_scale = 1.5;
    } else if (cond_dim > 0 && objective != learn::Objective::DSM) {
        info.source = "snapshot:0";
        info.norm.source_mean = random_vector(s.dim, -1.0, 1.0);
        info.norm.source_std = random_vector(s.dim, 0.5, 2.0);
    }
    if (gated) { // train.time_gate on the second condition; the origin as a float32 normalised value
        s.gate_column = 1;
        s.gate_origin = static_cast<float>(random_vector(1, -1.0, 1.0)[0]);
        s.gate_scale = 0.6;
    }
    info.step = index;
    info.deck = "[train]\nobjective = " + std::string(learn::to_string(objective)) + "\n";

    learn::MLP model(s);
    if (film) {
        torch::NoGradGuard ng;
        model->film()->weight.normal_(0.0, 0.3);
        model->film()->bias.normal_(0.0, 0.3);
    }
    const std::string name = dir + "/" + learn::to_string(objective) + "_" + learn::to_string(act) + "_" +
                             (film ? "film" : "concat") + "_c" + std::to_string(cond_dim) + (gated ? "_gate" : "");
    learn::save_model_h5(name + ".h5", info, model->flat_parameters(), 42, 1);

    // Inputs: normalised rows (some far out, where the activations saturate), times, conditions.
    const std::int64_t n = 50;
    const auto x = torch::randn({n, s.dim}) * 2.0;
    const auto t = torch::rand({n});
    const auto cond = cond_dim > 0 ? torch::randn({n, cond_dim}) : torch::Tensor();
    const bool meanflow = objective == learn::Objective::MeanFlow;
    const auto gap = meanflow ? torch::rand({n}) * (1.0 - t) : torch::Tensor(); // meanflow: t - s per row
    const double gap0 = meanflow ? 0.45 : 0.0;
    // One time and one condition row as kinflow-sample forms them: raw values normalised in double.
    const double t0 = objective == learn::Objective::DSM ? 0.61 : 0.37;
    const auto cond_raw = random_vector(cond_dim, -3.0, 3.0);
    std::vector<float> cond_row(static_cast<std::size_t>(cond_dim));
    for (int c = 0; c < cond_dim; ++c)
        cond_row[c] = static_cast<float>((cond_raw[c] - info.norm.cond_mean[c]) / info.norm.cond_std[c]);
    const auto cond_t = cond_dim > 0 ? torch::from_blob(cond_row.data(), {cond_dim}) : torch::empty({0});

    torch::Tensor forward;
    {
        torch::NoGradGuard ng;
        forward = model->forward(x, t, cond, gap);
    }
    learn::MLPWorkspace ws(model);
    auto evaluate = torch::empty_like(x);
    ws.evaluate(x, t0, cond_t, evaluate, gap0);
    auto field = torch::empty_like(x);
    const auto net = sample::network(ws, cond_t, 16);
    auto jumps = torch::Tensor();
    if (meanflow) {
        sample::average_network(ws, cond_t, 16)(x, t0, t0 + gap0, field);
        jumps = x.clone();
        sample::Integrator integ;
        integ.jumps(2, 0.0, 1.0, jumps, sample::average_network(ws, cond_t, 16));
    } else if (objective == learn::Objective::W2Map) {
        field = x.clone();
        sample::transport(info, net, sample::Method::Euler, 1, field, {}, 1.0);
    } else {
        sample::ode_field(objective, learn::VPScheduler{info.beta_min, info.beta_max}, net)(x, t0, field);
    }

    io::Handle file(H5Fcreate((name + ".ref.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                    "create " + name + ".ref.h5");
    write(file, "x_hat", x);
    write(file, "t", t);
    write(file, "cond_hat", cond_dim > 0 ? cond : torch::empty({n, 0}));
    write(file, "forward", forward);
    io::write_attr(file, "t0", t0);
    write(file, "cond_row", cond_t);
    write(file, "cond_raw",
          torch::tensor(cond_raw.empty() ? std::vector<double>{} : cond_raw, torch::kFloat64).reshape({cond_dim}));
    write(file, "evaluate", evaluate);
    write(file, "field", field);
    if (meanflow) {
        write(file, "gap", gap);
        io::write_attr(file, "gap0", gap0);
        write(file, "jumps2", jumps);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: kinflow-model-reference OUT_DIR\n";
        return 2;
    }
    try {
        torch::manual_seed(15);
        torch::set_num_threads(1);
        int index = 0;
        for (auto objective : {learn::Objective::FM, learn::Objective::OTFM, learn::Objective::DSM,
                               learn::Objective::W2Map, learn::Objective::TFM, learn::Objective::MeanFlow}) {
            for (auto act : {learn::Activation::SiLU, learn::Activation::GELU, learn::Activation::Tanh}) {
                for (bool film : {false, true}) {
                    for (int cond_dim : {0, 2}) {
                        // film needs time features or conditions (kinflow-train refuses a film w2map without
                        // conditions)
                        if (film && objective == learn::Objective::W2Map && cond_dim == 0)
                            continue;
                        write_case(argv[1], objective, act, film, cond_dim, index++);
                    }
                }
            }
        }
        // the output gate (train.time_gate) of the objectives that take it
        for (auto objective : {learn::Objective::FM, learn::Objective::MeanFlow})
            for (bool film : {false, true}) write_case(argv[1], objective, learn::Activation::SiLU, film, 2, index++, true);
        std::cout << "kinflow-model-reference: " << index << " cases in " << argv[1] << "\n";
    } catch (const std::exception& e) {
        std::cerr << "kinflow-model-reference: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
