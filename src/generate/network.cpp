// MODEL.h5 read and evaluated in float32 without LibTorch (generate/network.hpp).
#include "kinflow/generate/network.hpp"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <unistd.h>

#include "kinflow/core/error.hpp"
#include "kinflow/io/hdf5.hpp"

namespace kinflow::generate {

namespace {

constexpr int kFormat = 1;     // MODEL.h5 format this reader knows (docs/model_h5.md)
constexpr std::int64_t kBlock = 64; // rows per block: a block's activations (64 x hidden floats) stay in L1

/// A whole dataset of the expected shape ([rows] when cols < 0, else [rows, cols]) as `T`.
template <class T>
std::vector<T> read_dataset(hid_t file, const std::string& name, hid_t mtype, hsize_t rows, long cols) {
    io::Handle d(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose, "open " + name);
    io::Handle space(H5Dget_space(d), H5Sclose, "H5Dget_space");
    const int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[2] = {0, 0};
    if (rank != (cols < 0 ? 1 : 2) || H5Sget_simple_extent_dims(space, dims, nullptr) < 0 || dims[0] != rows ||
        (cols >= 0 && dims[1] != static_cast<hsize_t>(cols))) {
        std::ostringstream os;
        os << name << " has shape [" << dims[0] << (rank == 2 ? ", " + std::to_string(dims[1]) : std::string()) << "], expected ["
           << rows << (cols >= 0 ? ", " + std::to_string(cols) : std::string()) << "]";
        throw Error(os.str());
    }
    std::vector<T> v(static_cast<std::size_t>(rows * static_cast<hsize_t>(std::max(cols, 1L))));
    if (!v.empty()) io::h5check_status(H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "read " + name);
    return v;
}

Linear read_linear(hid_t file, const std::string& name, int in, int out) {
    Linear lin;
    lin.in = in;
    lin.out = out;
    const auto w = read_dataset<float>(file, "network/" + name + "/weight", H5T_NATIVE_FLOAT, static_cast<hsize_t>(out), in);
    lin.b = read_dataset<float>(file, "network/" + name + "/bias", H5T_NATIVE_FLOAT, static_cast<hsize_t>(out), -1);
    lin.w = w;
    lin.wt.resize(w.size());
    for (int j = 0; j < out; ++j)
        for (int k = 0; k < in; ++k) lin.wt[static_cast<std::size_t>(k) * out + j] = w[static_cast<std::size_t>(j) * in + k];
    return lin;
}

std::vector<double> read_vector(hid_t file, const std::string& name, hsize_t n) {
    return read_dataset<double>(file, name, H5T_NATIVE_DOUBLE, n, -1);
}

int read_int(hid_t file, const std::string& name, std::int64_t lo, std::int64_t hi) {
    const std::int64_t v = io::read_attr_int(file, name);
    if (v < lo || v > hi) throw Error("attribute " + name + " = " + std::to_string(v) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int>(v);
}

void read_model(hid_t f, Network& net) {
    auto& info = net.info;
    auto& s = info.spec;
    info.objective = learn::parse_objective(io::read_attr_string(f, "objective"));
    s.activation = learn::parse_activation(io::read_attr_string(f, "activation"));
    s.potential = io::has_attr(f, "score_model") && io::read_attr_string(f, "score_model") != "vector";
    if (s.potential) throw Error("a potential score model (score = -grad phi): use kinflow-sample");
    s.film = io::read_attr_string(f, "condition_embedding") == "film";
    s.dim = read_int(f, "dim", 1, 3);
    s.cond_dim = read_int(f, "cond_dim", 0, 1 << 16);
    s.hidden = read_int(f, "hidden", 1, 1 << 16);
    s.layers = read_int(f, "layers", 1, 1 << 10);
    s.time_features = read_int(f, "time_features", 0, 1 << 16);
    if (s.time_features % 2 != 0) throw Error("attribute time_features = " + std::to_string(s.time_features) + " is odd");
    s.time_inputs = io::has_attr(f, "time_inputs") ? read_int(f, "time_inputs", 1, 2) : 1;
    s.film_width = s.film ? read_int(f, "film_width", 1, 1 << 16) : 0;
    if (s.film && s.embed_width() == 0) throw Error("a film model without time features or conditions");
    info.conditions = learn::split_attribute(io::read_attr_string(f, "conditions"), ',');
    if (static_cast<int>(info.conditions.size()) != s.cond_dim)
        throw Error("attribute conditions names " + std::to_string(info.conditions.size()) + " condition(s), cond_dim = " + std::to_string(s.cond_dim));
    info.source = io::read_attr_string(f, "source");
    info.data = io::read_attr_string(f, "data");
    info.files = learn::split_attribute(io::read_attr_string(f, "files"), '\n');
    info.target_time = io::read_attr_double(f, "target_time");
    info.time_origin = io::read_attr_double(f, "time_origin");
    info.time_scale = io::read_attr_double(f, "time_scale");
    info.beta_min = io::read_attr_double(f, "beta_min");
    info.beta_max = io::read_attr_double(f, "beta_max");
    info.vp_eps = io::read_attr_double(f, "vp_eps");
    info.step = io::read_attr_int(f, "step");
    info.deck = io::read_attr_string(f, "deck");
    if (io::has_attr(f, "corrector")) info.corrector = io::read_attr_string(f, "corrector");
    // The output gate (optional; absent or -1: none).
    if (io::has_attr(f, "output_gate_column")) {
        s.gate_column = static_cast<int>(std::clamp<std::int64_t>(io::read_attr_int(f, "output_gate_column"), -2, 1 << 16));
        if (s.gated()) {
            s.gate_origin = io::read_attr_double(f, "output_gate_origin");
            s.gate_scale = io::read_attr_double(f, "output_gate_scale");
        }
        if (!s.gate_valid())
            throw Error("attribute output_gate_column = " + std::to_string(s.gate_column) + " (cond_dim " + std::to_string(s.cond_dim) +
                        "), output_gate_origin, output_gate_scale: the column must be in [-1, cond_dim), the origin finite, the scale finite and > 0");
    }

    const auto dim = static_cast<hsize_t>(s.dim), cdim = static_cast<hsize_t>(s.cond_dim);
    auto& norm = info.norm;
    norm.mean = read_vector(f, "normalization/mean", dim);
    norm.std = read_vector(f, "normalization/std", dim);
    const bool snapshot = info.source.rfind("snapshot:", 0) == 0;
    norm.source_mean = read_vector(f, "normalization/source_mean", snapshot ? dim : 0);
    norm.source_std = read_vector(f, "normalization/source_std", snapshot ? dim : 0);
    norm.cond_mean = read_vector(f, "normalization/cond_mean", cdim);
    norm.cond_std = read_vector(f, "normalization/cond_std", cdim);

    net.omega = read_dataset<float>(f, "network/time_frequencies", H5T_NATIVE_FLOAT, static_cast<hsize_t>(s.time_features / 2), -1);
    int in = s.first_width();
    for (int l = 0; l <= s.layers; ++l) {
        const int out = l == s.layers ? s.outputs() : s.hidden;
        net.linears.push_back(read_linear(f, "linear" + std::to_string(l), in, out));
        in = out;
    }
    if (s.film) {
        net.embed = read_linear(f, "embed", s.embed_width(), s.film_width);
        net.film = read_linear(f, "film", s.film_width, 2 * s.layers * s.hidden);
    }
}

// ---- activations -------------------------------------------------------------------------------

double activate(learn::Activation act, double z) {
    switch (act) {
    case learn::Activation::SiLU: return z / (1.0 + std::exp(-z));
    case learn::Activation::GELU: return 0.5 * z * (1.0 + std::erf(z * 0.70710678118654752440));
    case learn::Activation::Tanh: return std::tanh(z);
    }
    return z;
}

/// z <- act(z * scale + shift) (film) or act(z), over n values (one row block of a layer).
void modulate_activate(learn::Activation act, float* __restrict z, std::int64_t rows, int width, const float* scale,
                       const float* shift) {
    if (scale) {
        for (std::int64_t r = 0; r < rows; ++r) {
            float* __restrict zr = z + r * width;
            for (int j = 0; j < width; ++j) zr[j] = zr[j] * scale[j] + shift[j];
        }
    }
    const std::int64_t n = rows * width;
    switch (act) {
    case learn::Activation::SiLU: // x sigmoid(x), as LibTorch: x / (1 + exp(-x))
        for (std::int64_t i = 0; i < n; ++i) z[i] = z[i] / (1.0f + fast_expf(-z[i]));
        break;
    case learn::Activation::GELU: // exact: x Phi(x) = x (1 + erf(x / sqrt 2)) / 2
        for (std::int64_t i = 0; i < n; ++i) z[i] = z[i] * 0.5f * (1.0f + std::erf(z[i] * 0.70710678118654752440f));
        break;
    case learn::Activation::Tanh:
        for (std::int64_t i = 0; i < n; ++i) z[i] = std::tanh(z[i]);
        break;
    }
}

/// z [rows, out] = bias + h [rows, in] W^T (W^T stored as wt [in, out]): tiles of kRows rows x
/// kCols columns whose sums stay in vector registers over the whole k loop (each weight row
/// loaded once per tile of rows); the remaining rows and columns by the plain row loop. kLanes:
/// the partial sums of the output layer's dot products.
constexpr int kRows = 4, kCols = 16, kLanes = 16;
void linear_rows(const Linear& lin, const float* bias, const float* __restrict h, std::int64_t rows, int in,
                 float* __restrict z) {
    const int out = lin.out;
    const float* __restrict wt = lin.wt.data();
    const int tiled_cols = out - out % kCols;
    std::int64_t r = 0;
    for (; r + kRows <= rows && tiled_cols > 0; r += kRows) {
        for (int j0 = 0; j0 < tiled_cols; j0 += kCols) {
            // four rows written out: the loop over j is the one the compiler vectorises
            float a0[kCols], a1[kCols], a2[kCols], a3[kCols];
            for (int j = 0; j < kCols; ++j) a0[j] = a1[j] = a2[j] = a3[j] = bias[j0 + j];
            const float *h0 = h + r * in, *h1 = h0 + in, *h2 = h1 + in, *h3 = h2 + in;
            for (int k = 0; k < in; ++k) {
                const float* __restrict wk = wt + static_cast<std::size_t>(k) * out + j0;
                const float v0 = h0[k], v1 = h1[k], v2 = h2[k], v3 = h3[k];
                for (int j = 0; j < kCols; ++j) {
                    a0[j] += v0 * wk[j];
                    a1[j] += v1 * wk[j];
                    a2[j] += v2 * wk[j];
                    a3[j] += v3 * wk[j];
                }
            }
            for (int j = 0; j < kCols; ++j) {
                z[r * out + j0 + j] = a0[j];
                z[(r + 1) * out + j0 + j] = a1[j];
                z[(r + 2) * out + j0 + j] = a2[j];
                z[(r + 3) * out + j0 + j] = a3[j];
            }
        }
        for (int i = 0; i < kRows && tiled_cols < out; ++i) { // columns beyond the tiles
            float* __restrict zr = z + (r + i) * out;
            for (int j = tiled_cols; j < out; ++j) {
                float v = bias[j];
                for (int k = 0; k < in; ++k) v += h[(r + i) * in + k] * wt[static_cast<std::size_t>(k) * out + j];
                zr[j] = v;
            }
        }
    }
    for (; r < rows; ++r) { // rows beyond the tiles
        float* __restrict zr = z + r * out;
        const float* __restrict hr = h + r * in;
        for (int j = 0; j < out; ++j) zr[j] = bias[j];
        for (int k = 0; k < in; ++k) {
            const float hv = hr[k];
            const float* __restrict wk = wt + static_cast<std::size_t>(k) * out;
            for (int j = 0; j < out; ++j) zr[j] += hv * wk[j];
        }
    }
}

} // namespace

namespace {
// HDF5 1.10 can loop forever reading a variable-length string attribute whose global heap block was
// zeroed or overwritten (the global heap has no checksum; found by the fuzz test's damaged MODEL.h5,
// as postprocess/kinflow_h5.py found it for h5py). While MODEL.h5 is read, a watchdog ends the
// process with one line instead (async-signal-safe: the message is prepared before arming).
char g_watchdog_message[1024];
std::size_t g_watchdog_length = 0;
extern "C" void watchdog_fired(int) {
    (void)!::write(2, g_watchdog_message, g_watchdog_length);
    ::_exit(1);
}
struct Watchdog {
    explicit Watchdog(const std::string& path, unsigned seconds) {
        const std::string m = "kinflow-generate: error: sample.model_file: '" + path + "': damaged kinflow MODEL.h5 (the HDF5 library did not return within " +
                              std::to_string(seconds) + " s)\n";
        g_watchdog_length = std::min(m.size(), sizeof g_watchdog_message);
        std::memcpy(g_watchdog_message, m.data(), g_watchdog_length);
        std::signal(SIGALRM, watchdog_fired);
        ::alarm(seconds);
    }
    ~Watchdog() {
        ::alarm(0);
        std::signal(SIGALRM, SIG_DFL);
    }
};
} // namespace

Network load_network(const std::string& path) {
    namespace fs = std::filesystem;
    io::silence_hdf5_errors();
    if (!fs::is_regular_file(path)) throw Error("'" + path + "': no such file");
    const Watchdog watchdog(path, 10);
    // The serial driver: MPI need not be initialised (rank 0 of a parallel run reads alone too).
    io::Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate");
    const hid_t fid = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
    if (fid < 0) throw Error("'" + path + "': not an HDF5 file (damaged or truncated?)");
    io::Handle f(fid, H5Fclose, "H5Fopen");
    if (!io::has_attr(f, "kinflow_model_h5")) throw Error("'" + path + "': not a kinflow MODEL.h5 (no kinflow_model_h5 attribute)");
    Network net;
    net.path = path;
    try {
        const std::int64_t format = io::read_attr_int(f, "kinflow_model_h5");
        if (format > kFormat)
            throw Error("MODEL.h5 format " + std::to_string(format) + ", this reader knows up to " + std::to_string(kFormat));
        read_model(f, net);
    } catch (const Error& e) {
        throw Error("'" + path + "': damaged or unsupported kinflow MODEL.h5 (" + e.what() + ")");
    }
    return net;
}

Call prepare(const Network& net, double t, const float* cond, double gap) {
    const auto& s = net.info.spec;
    Call c;
    // e = [sin(w t), cos(w t)(, sin(w gap), cos(w gap)), c] with LibTorch's float arithmetic:
    // w_k t rounded to float, then sin and cos (MLPWorkspace::evaluate).
    std::vector<float> e;
    if (s.time_features > 0) {
        for (int k = 0; k < s.time_inputs; ++k) {
            const float tk = static_cast<float>(k == 0 ? t : gap);
            for (float w : net.omega) e.push_back(std::sin(w * tk));
            for (float w : net.omega) e.push_back(std::cos(w * tk));
        }
    }
    for (int k = 0; k < s.cond_dim; ++k) e.push_back(cond[k]);
    const Linear& l0 = net.linears.front();
    const int H = s.hidden;
    c.bias0 = l0.b;
    if (s.film) {
        // [gamma_0, beta_0, gamma_1, ...] = W_film act(W_embed e + b_embed) + b_film, once per call.
        std::vector<double> a(static_cast<std::size_t>(s.film_width));
        for (int j = 0; j < s.film_width; ++j) {
            double acc = net.embed.b[j];
            for (std::size_t m = 0; m < e.size(); ++m) acc += static_cast<double>(net.embed.wt[m * s.film_width + j]) * e[m];
            a[j] = static_cast<float>(activate(s.activation, static_cast<float>(acc)));
        }
        const int G = 2 * s.layers * H;
        std::vector<float> gb(static_cast<std::size_t>(G));
        for (int j = 0; j < G; ++j) {
            double acc = net.film.b[j];
            for (int m = 0; m < s.film_width; ++m) acc += static_cast<double>(net.film.wt[static_cast<std::size_t>(m) * G + j]) * a[m];
            gb[j] = static_cast<float>(acc);
        }
        c.scale.resize(static_cast<std::size_t>(s.layers * H));
        c.shift.resize(c.scale.size());
        for (int l = 0; l < s.layers; ++l) {
            for (int j = 0; j < H; ++j) {
                c.scale[l * H + j] = 1.0f + gb[2 * l * H + j];
                c.shift[l * H + j] = gb[(2 * l + 1) * H + j];
            }
        }
    } else if (!e.empty()) { // concat: W0[:, dim:] e folded into the first bias
        for (int j = 0; j < H; ++j) {
            double acc = l0.b[j];
            for (std::size_t m = 0; m < e.size(); ++m) acc += static_cast<double>(l0.wt[(s.dim + m) * H + j]) * e[m];
            c.bias0[j] = static_cast<float>(acc);
        }
    }
    if (s.gated()) c.gate = static_cast<float>(s.gate(cond[s.gate_column]));
    return c;
}

void evaluate(const Network& net, const Call& call, const float* x, std::int64_t n, float* out, Scratch& scratch) {
    const auto& s = net.info.spec;
    const int H = s.hidden, L = s.layers, D = s.dim, O = s.outputs();
    scratch.a.resize(static_cast<std::size_t>(kBlock * H));
    scratch.b.resize(scratch.a.size());
    const float* scale = s.film ? call.scale.data() : nullptr;
    const float* shift = s.film ? call.shift.data() : nullptr;
    const Linear& l0 = net.linears.front();
    for (std::int64_t r0 = 0; r0 < n; r0 += kBlock) {
        const std::int64_t rows = std::min(kBlock, n - r0);
        float* h = scratch.a.data();
        float* z = scratch.b.data();
        // First layer: the x columns of W0 (rows 0..dim-1 of its transpose) on the folded bias.
        for (std::int64_t r = 0; r < rows; ++r) {
            float* __restrict hr = h + r * H;
            const float* xr = x + (r0 + r) * D;
            for (int j = 0; j < H; ++j) hr[j] = call.bias0[j];
            for (int k = 0; k < D; ++k) {
                const float xv = xr[k];
                const float* __restrict wk = l0.wt.data() + static_cast<std::size_t>(k) * H;
                for (int j = 0; j < H; ++j) hr[j] += xv * wk[j];
            }
        }
        modulate_activate(s.activation, h, rows, H, scale, shift);
        for (int l = 1; l < L; ++l) {
            linear_rows(net.linears[l], net.linears[l].b.data(), h, rows, H, z);
            modulate_activate(s.activation, z, rows, H, scale ? scale + l * H : nullptr, shift ? shift + l * H : nullptr);
            std::swap(h, z);
        }
        // Output layer (dim <= 3 outputs): dot products over the hidden units in kLanes partial
        // sums (a vectorisable loop; the sums of a float reduction may not be reordered otherwise).
        const Linear& last = net.linears.back();
        for (std::int64_t r = 0; r < rows; ++r) {
            const float* __restrict hr = h + r * H;
            for (int j = 0; j < O; ++j) {
                const float* __restrict w = last.w.data() + static_cast<std::size_t>(j) * H;
                float part[kLanes] = {};
                int k = 0;
                for (; k + kLanes <= H; k += kLanes)
                    for (int i = 0; i < kLanes; ++i) part[i] += hr[k + i] * w[k + i];
                float y = last.b[j];
                for (; k < H; ++k) y += hr[k] * w[k];
                for (int i = 0; i < kLanes; ++i) y += part[i];
                out[(r0 + r) * O + j] = y * call.gate; // gate 1 (exact) without one
            }
        }
    }
}

} // namespace kinflow::generate
