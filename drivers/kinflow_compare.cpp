// kinflow-compare A.h5 B.h5: distances between the particle sets of two kinflow files (exact and
// Sinkhorn W2, sliced W2, energy distance, mean/covariance errors), printed and optionally saved
// as JSON and as attributes of B's root group. kinflow-compare --score-curl MODEL POINTS.h5: the
// Jacobian asymmetry of a trained score (or velocity) network at points (builds with LibTorch).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include <boost/program_options.hpp>

#include "driver_main.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/io/snapshot_reader.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "kinflow/io/version_report.hpp"
#include "kinflow/metrics/assignment.hpp"
#include "kinflow/metrics/distances.hpp"
#ifdef KINFLOW_HAVE_TORCH
#include "kinflow/learn/score_curl.hpp"
#endif

namespace {

using namespace kinflow;
namespace po = boost::program_options;

struct Args {
    std::string a, b, json;
    int snapshot_a = -1, snapshot_b = -1;
    std::int64_t max_points = 1000;
    double sinkhorn_eps = 0.01;
    int projections = 200;
    std::int64_t seed = 0;
    bool save_attrs = false;
    bool no_sinkhorn = false;
    int bootstrap = 0;
    double interpolate = 0.0;
    std::string interpolate_out;
    std::string score_curl, curl_times = "0.1,0.3,0.5,0.7,0.9";
};

std::vector<double> read_positions(const std::string& path, int index, int& dim, double& time) {
    io::SnapshotReader r(comm::Communicator::self(), path);
    const int i = r.resolve(index);
    const auto p = r.read(i, 0, r.n_global(i));
    dim = p.dim;
    time = r.time(i);
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.position);
    std::vector<double> x(h.data(), h.data() + h.size());
    // Squared distances of every metric must stay finite.
    for (const double v : x) {
        if (!(std::fabs(v) <= 1e150)) {
            throw Error("'" + path + "' snapshot " + std::to_string(i) + ": position value " + format_number(v) +
                        " is not finite or beyond 1e150");
        }
    }
    if (x.empty()) throw Error("'" + path + "' snapshot " + std::to_string(i) + " has no particles");
    return x;
}

/// At most k rows chosen uniformly without replacement (all rows, in order, when n <= k).
std::vector<double> subsample(const std::vector<double>& x, int dim, std::size_t k, std::mt19937_64& gen) {
    const std::size_t n = x.size() / static_cast<std::size_t>(dim);
    if (n <= k) return x;
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::shuffle(idx.begin(), idx.end(), gen);
    std::vector<double> out(k * static_cast<std::size_t>(dim));
    for (std::size_t i = 0; i < k; ++i)
        for (int d = 0; d < dim; ++d) out[i * dim + d] = x[idx[i] * dim + d];
    return out;
}

/// Euclidean distance between two vectors of equal length (here: two sample means).
double distance(const std::vector<double>& x, const std::vector<double>& y) {
    double s = 0;
    for (std::size_t d = 0; d < x.size(); ++d) s += (x[d] - y[d]) * (x[d] - y[d]);
    return std::sqrt(s);
}

/// --score-curl MODEL POINTS.h5 (rank 0 computes, the others return).
int score_curl(const Args& a, const comm::Communicator& comm) {
#ifndef KINFLOW_HAVE_TORCH
    (void)comm;
    throw drivers::SetupError("--score-curl " + a.score_curl + ": this kinflow-compare was built without LibTorch");
#else
    if (a.a.empty() || !a.b.empty()) throw drivers::SetupError("usage: kinflow-compare --score-curl MODEL POINTS.h5");
    std::vector<double> times;
    try {
        check_range("max-points", a.max_points, std::int64_t{1}, std::int64_t{20000});
        std::stringstream ss(a.curl_times);
        std::string item;
        while (std::getline(ss, item, ',')) times.push_back(parse_vector("curl-times", item, 1).front());
        if (times.empty()) throw OptionError("curl-times", a.curl_times, "expected a comma list of times");
    } catch (const OptionError& e) {
        throw drivers::SetupError(std::string("command line: ") + e.what());
    }
    if (!comm.is_root()) return 0;
    int dim = 0;
    double time = 0;
    std::vector<double> x;
    try {
        x = read_positions(a.a, a.snapshot_a, dim, time);
    } catch (const Error& e) {
        const std::string what = e.what();
        throw drivers::SetupError(what.find(a.a) != std::string::npos ? what : "'" + a.a + "': " + what);
    }
    std::mt19937_64 gen(static_cast<std::uint64_t>(a.seed));
    x = subsample(x, dim, static_cast<std::size_t>(a.max_points), gen);
    learn::ScoreCurl r;
    try {
        r = learn::score_curl(a.score_curl, x, dim, times, static_cast<std::uint64_t>(a.seed) + 1);
    } catch (const Error& e) {
        throw drivers::SetupError(std::string("--score-curl: ") + e.what());
    }
    std::printf("kinflow-compare --score-curl: %s (%s, score_model %s) at %lld points of %s, dim %d\n", a.score_curl.c_str(),
                r.objective.c_str(), r.score_model.c_str(), static_cast<long long>(r.points), a.a.c_str(), dim);
    std::printf("  ||J - J^T||_F / ||J||_F  %-8s %-12s %s\n", "t", "mean", "max");
    for (std::size_t i = 0; i < r.times.size(); ++i)
        std::printf("  %25s %-8g %-12.6g %.6g\n", "", r.times[i], r.mean[i], r.max[i]);
    std::printf("  curl_mean %.6g\n", r.mean_all);
    if (!a.json.empty()) {
        std::ofstream js(a.json);
        if (!js) throw Error("cannot write " + a.json);
        auto list = [](const std::vector<double>& v) {
            std::string s = "[";
            for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + format_number(v[i]);
            return s + "]";
        };
        js << "{\n  \"model\": \"" << a.score_curl << "\",\n  \"points_file\": \"" << a.a << "\",\n  \"objective\": \""
           << r.objective << "\",\n  \"score_model\": \"" << r.score_model << "\",\n  \"points\": " << r.points
           << ",\n  \"curl_times\": " << list(r.times) << ",\n  \"curl_by_time\": " << list(r.mean)
           << ",\n  \"curl_max_by_time\": " << list(r.max) << ",\n  \"curl_mean\": " << format_number(r.mean_all) << "\n}\n";
    }
    return 0;
#endif
}

int run(int argc, char** argv, const comm::Communicator& comm) {
    Args a;
    po::options_description opts("kinflow-compare A.h5 B.h5 [options]");
    opts.add_options()("help,h", "print this help")("version", "print the version and exit")(
        "a", po::value(&a.a), "first file")("b", po::value(&a.b), "second file")(
        "snapshot-a", po::value(&a.snapshot_a)->default_value(-1), "snapshot index in A (negative from the end)")(
        "snapshot-b", po::value(&a.snapshot_b)->default_value(-1), "snapshot index in B")(
        "max-points", po::value(&a.max_points)->default_value(1000),
        "random subsample size for exact W2, Sinkhorn and energy distance (O(n^2)-O(n^3) methods), >= 2")(
        "sinkhorn-eps", po::value(&a.sinkhorn_eps)->default_value(0.01),
        "Sinkhorn regularisation relative to the mean squared distance between the sets, > 0")(
        "projections", po::value(&a.projections)->default_value(200), "directions for sliced W2 (all points), >= 1")(
        "seed", po::value(&a.seed)->default_value(0), "seed for subsampling and projections")(
        "json", po::value(&a.json), "also write the metrics as JSON to this file")(
        "save-attrs", po::bool_switch(&a.save_attrs), "also store the metrics as attributes metric_* of B's root group")(
        "interpolate-out", po::value(&a.interpolate_out),
        "also write the displacement (McCann 1997) interpolation of the two compared subsamples to this kinflow file: "
        "each point of A moved the fraction --interpolate along the segment to its partner in the exact W2 "
        "assignment, (1 - s) a + s b; s outside [0, 1] extrapolates along the segments")(
        "interpolate", po::value(&a.interpolate)->default_value(0.0), "the fraction s of --interpolate-out, in [-4, 5]")(
        "no-sinkhorn", po::bool_switch(&a.no_sinkhorn), "skip the Sinkhorn W2 (the slowest metric at thousands of points)")(
        "bootstrap", po::value(&a.bootstrap)->default_value(0),
        "standard errors from B bootstrap resamples, 0 (off) or 2..1000: both subsamples are resampled with "
        "replacement (independently, or with the same rows when A and B have equal size: paired data stay paired), "
        "and each metric's SE is the standard deviation of its B recomputed values: w2_exact_se, mean_error_se")(
        "score-curl", po::value(&a.score_curl),
        "kinflow-compare --score-curl MODEL POINTS.h5: instead of comparing, measure the non-conservative part of a "
        "trained dsm score network (or fm/otfm velocity): ||J - J^T||_F / ||J||_F of the Jacobian of its x-field, "
        "float64, at --max-points points of POINTS.h5 (e.g. the data or the model's samples) carried along the training "
        "path to each of --curl-times (dsm: alpha_t x + sigma_t eps; fm: t x + (1 - t) eps); 0 to round-off for "
        "train.score_model = potential (a Hessian). Prints the mean and largest ratio per time and curl_mean over all; "
        "--json writes them (needs a build with LibTorch)")(
        "curl-times", po::value(&a.curl_times)->default_value(a.curl_times),
        "--score-curl: comma list of network times (0 noise, 1 data; dsm up to 1 - vp_eps)");
    po::positional_options_description pos;
    pos.add("a", 1).add("b", 1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw drivers::SetupError(std::string("command line: ") + e.what());
    }
    if (vm.count("help")) {
        if (comm.is_root()) std::cout << opts << "\nExact W2 is the optimal assignment (shortest augmenting paths) on "
                                                "equal-size subsamples; Sinkhorn W2 is the transport cost of the "
                                                "entropic plan (biased upward).\n";
        return 0;
    }
    if (vm.count("version")) {
        if (comm.is_root()) std::cout << io::version_report("kinflow-compare");
        return 0;
    }
    if (!a.score_curl.empty()) return score_curl(a, comm);
    if (a.a.empty() || a.b.empty()) throw drivers::SetupError("usage: kinflow-compare A.h5 B.h5 [--help]");
    try {
        check_range("max-points", a.max_points, std::int64_t{2}, std::int64_t{20000});
        check_positive("sinkhorn-eps", a.sinkhorn_eps);
        check_range("projections", static_cast<std::int64_t>(a.projections), 1, 100000);
        if (a.bootstrap != 0) check_range("bootstrap", static_cast<std::int64_t>(a.bootstrap), 2, 1000);
        check_range("interpolate", a.interpolate, -4.0, 5.0);
    } catch (const OptionError& e) {
        throw drivers::SetupError(std::string("command line: ") + e.what());
    }
    if (!comm.is_root()) return 0; // the metrics are serial; other ranks have nothing to do
    int da = 0, db = 0;
    double ta = 0, tb = 0;
    std::vector<double> xa, xb;
    const auto load = [](const std::string& path, int index, int& dim, double& time) {
        try {
            return read_positions(path, index, dim, time);
        } catch (const Error& e) { // name the file once
            const std::string what = e.what();
            throw drivers::SetupError(what.find(path) != std::string::npos ? what : "'" + path + "': " + what);
        }
    };
    xa = load(a.a, a.snapshot_a, da, ta);
    xb = load(a.b, a.snapshot_b, db, tb);
    if (da != db) throw drivers::SetupError("dimension mismatch: " + a.a + " has dim " + std::to_string(da) + ", " + a.b + " has " + std::to_string(db));
    const int dim = da;
    const std::size_t na = xa.size() / dim, nb = xb.size() / dim;
    // The same seed for both: equal-size files keep the same rows (paired data stay paired).
    std::mt19937_64 gen_a(static_cast<std::uint64_t>(a.seed)), gen_b(static_cast<std::uint64_t>(a.seed));
    const std::size_t k = std::min<std::size_t>({na, nb, static_cast<std::size_t>(a.max_points)});
    const auto sa = subsample(xa, dim, k, gen_a), sb = subsample(xb, dim, k, gen_b);
    const metrics::Cloud ca{xa.data(), na, dim}, cb{xb.data(), nb, dim}, ka{sa.data(), k, dim}, kb{sb.data(), k, dim};

    std::vector<std::pair<std::string, double>> m;
    const auto pairing = metrics::exact_assignment(sa.data(), sb.data(), k, dim);
    m.emplace_back("w2_exact", std::sqrt(metrics::assignment_cost(sa.data(), sb.data(), pairing, dim)));
    if (!a.interpolate_out.empty()) {
        ParticleSet p;
        p.allocate(k, dim, 0, false, "kinflow::compare");
        p.n_global = static_cast<std::int64_t>(k);
        auto pos = Kokkos::create_mirror_view(p.position);
        auto ids = Kokkos::create_mirror_view(p.id);
        const double s = a.interpolate;
        for (std::size_t i = 0; i < k; ++i) {
            ids(i) = static_cast<std::int64_t>(i);
            for (int d = 0; d < dim; ++d)
                pos(i, d) = (1.0 - s) * sa[i * dim + d] + s * sb[static_cast<std::size_t>(pairing[i]) * dim + d];
        }
        Kokkos::deep_copy(p.position, pos);
        Kokkos::deep_copy(p.id, ids);
        std::ostringstream deck;
        deck << "[interpolation]\na = " << a.a << "\nb = " << a.b << "\nfraction = " << format_number(s) << "\n";
        io::SnapshotWriter w(comm::Communicator::self(), a.interpolate_out, io::FileInfo{"interpolation", deck.str(), a.seed, dim});
        w.write(p, (1.0 - s) * ta + s * tb, 0, {});
        w.finish();
    }
    double cmean = 0;
    for (std::size_t i = 0; i < k; ++i)
        for (int d = 0; d < dim; ++d) cmean += (sa[i * dim + d] - sb[((i * 7919) % k) * dim + d]) * (sa[i * dim + d] - sb[((i * 7919) % k) * dim + d]);
    cmean /= static_cast<double>(k);
    metrics::SinkhornResult sk;
    if (!a.no_sinkhorn) {
        sk = metrics::sinkhorn_w2_squared(ka, kb, a.sinkhorn_eps * std::max(cmean, 1e-300), 500, 1e-6);
        m.emplace_back("w2_sinkhorn", std::sqrt(sk.cost));
    }
    m.emplace_back("sliced_w2", std::sqrt(metrics::sliced_w2_squared(ca, cb, a.projections, static_cast<std::uint64_t>(a.seed) + 1)));
    m.emplace_back("energy_distance", metrics::energy_distance(ka, kb));
    std::vector<double> ma, mb, Sa, Sb;
    metrics::mean_cov(ca, ma, Sa);
    metrics::mean_cov(cb, mb, Sb);
    double ds = 0;
    for (std::size_t i = 0; i < Sa.size(); ++i) ds += (Sa[i] - Sb[i]) * (Sa[i] - Sb[i]);
    m.emplace_back("mean_error", distance(ma, mb));
    m.emplace_back("cov_error_fro", std::sqrt(ds));
    m.emplace_back("w2_gaussian_fit", std::sqrt(std::max(0.0, metrics::gaussian_w2_squared(ma, Sa, mb, Sb, dim))));
    if (a.bootstrap > 0) {
        // Bootstrap (Efron 1979): resample both subsamples with replacement and recompute. Equal
        // sizes use the same row draw for both (keeps paired rows paired, as the subsample does).
        std::mt19937_64 gen(static_cast<std::uint64_t>(a.seed) + 7);
        std::uniform_int_distribution<std::size_t> row(0, k - 1);
        std::vector<double> ra(sa.size()), rb(sb.size());
        std::vector<std::vector<double>> vals(2);
        for (int r = 0; r < a.bootstrap; ++r) {
            for (std::size_t i = 0; i < k; ++i) {
                const std::size_t ia = row(gen), ib = na == nb ? ia : row(gen);
                std::copy(sa.begin() + ia * dim, sa.begin() + (ia + 1) * dim, ra.begin() + i * dim);
                std::copy(sb.begin() + ib * dim, sb.begin() + (ib + 1) * dim, rb.begin() + i * dim);
            }
            const metrics::Cloud qa{ra.data(), k, dim}, qb{rb.data(), k, dim};
            vals[0].push_back(std::sqrt(metrics::w2_squared_exact(ra.data(), rb.data(), k, dim)));
            std::vector<double> pa, pb, Qa, Qb;
            metrics::mean_cov(qa, pa, Qa);
            metrics::mean_cov(qb, pb, Qb);
            vals[1].push_back(distance(pa, pb));
        }
        auto sd = [](const std::vector<double>& v) {
            double mean = 0, var = 0;
            for (double x : v) mean += x / static_cast<double>(v.size());
            for (double x : v) var += (x - mean) * (x - mean) / static_cast<double>(v.size() - 1);
            return std::sqrt(var);
        };
        m.emplace_back("w2_exact_se", sd(vals[0]));
        m.emplace_back("mean_error_se", sd(vals[1]));
    }

    std::printf("kinflow-compare: A = %s (snapshot t = %g, %zu points), B = %s (t = %g, %zu points), dim %d\n", a.a.c_str(),
                ta, na, a.b.c_str(), tb, nb, dim);
    if (a.no_sinkhorn) std::printf("  subsample for exact/energy: %zu points\n", k);
    else std::printf("  subsample for exact/Sinkhorn/energy: %zu points; Sinkhorn eps = %g x mean sq. distance (%d iterations)\n",
                     k, a.sinkhorn_eps, sk.iterations);
    if (a.bootstrap > 0) std::printf("  standard errors (_se) from %d bootstrap resamples\n", a.bootstrap);
    for (const auto& kv : m) std::printf("  %-16s %.6g\n", kv.first.c_str(), kv.second);
    if (!a.json.empty()) {
        std::ofstream js(a.json);
        if (!js) throw Error("cannot write " + a.json);
        js << "{\n  \"a\": \"" << a.a << "\",\n  \"b\": \"" << a.b << "\",\n  \"points\": " << k;
        for (const auto& kv : m) js << ",\n  \"" << kv.first << "\": " << format_number(kv.second);
        js << "\n}\n";
    }
    if (a.save_attrs) {
        io::silence_hdf5_errors();
        io::Handle f(H5Fopen(a.b.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose, "open " + a.b + " for writing");
        for (const auto& kv : m) io::write_attr(f, "metric_" + kv.first, kv.second);
        io::write_attr(f, "metric_reference", a.a);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) { return kinflow::drivers::driver_main(argc, argv, "kinflow-compare", run); }
