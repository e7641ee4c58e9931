#pragma once
// Deck keys of kinflow-sample: [run] seed, [sample], [output] file (names are a contract).
#include <cstdint>
#include <string>
#include <vector>

#include <boost/program_options/options_description.hpp>

namespace kinflow::sample {

struct SampleOptions {
    std::string model_file = "out/model.pt";
    std::int64_t count = 10000;
    std::string method = "euler";
    std::int64_t nfe = 100;
    std::string condition;
    std::string time;
    std::string source_file;
    std::int64_t batch = 2048;
    int threads = 1;
    std::string device = "cpu";
    std::string conserve = "none";
};

enum class Method { Euler, Heun, RK4, EulerMaruyama };
const char* to_string(Method m);
/// Network evaluations per step of a method.
int evaluations_per_step(Method m);

struct SampleConfig {
    std::string model_file;
    std::int64_t count = 10000; ///< 0: every row of the source snapshot
    Method method = Method::Euler;
    std::int64_t nfe = 100;
    std::vector<double> condition;
    std::string condition_text;
    bool has_time = false; ///< sample.time given (tfm models)
    double time = 0.0;
    std::string source_file;
    std::int64_t batch = 2048;
    int threads = 1;
    std::uint64_t seed = 42;
    std::string output_file;
    bool conserve = false; ///< sample.conserve = momentum_energy
};

void describe(boost::program_options::options_description& sample, SampleOptions& o);
void describe_output(boost::program_options::options_description& output, std::string& file);
/// Check every key that can be checked without the model file; throws OptionError.
SampleConfig validate(const SampleOptions& o, std::int64_t seed, const std::string& output_file);

} // namespace kinflow::sample
