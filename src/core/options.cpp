#include "kinflow/core/options.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <unistd.h>

namespace kinflow {

std::string format_number(double v) {
    char buf[64];
    for (int prec = 6; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

void check_range(const std::string& key, double value, double lo, double hi) {
    if (!(value >= lo && value <= hi)) {
        throw OptionError(key, format_number(value), "out of range [" + format_number(lo) + ", " + format_number(hi) + "]");
    }
}

void check_range(const std::string& key, std::int64_t value, std::int64_t lo, std::int64_t hi) {
    if (value < lo || value > hi) {
        throw OptionError(key, std::to_string(value), "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
}

void check_positive(const std::string& key, double value) {
    if (!(value > 0.0) || !std::isfinite(value)) throw OptionError(key, format_number(value), "must be positive and finite");
}

double physical_memory() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

void check_memory(const std::string& key, const std::string& value, double bytes) {
    const double have = physical_memory();
    if (have > 0 && !(bytes <= have)) {
        constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
        throw OptionError(key, value,
                          "needs about " + format_number(std::round(bytes / kGiB * 10) / 10) +
                              " GiB per rank, more than this machine's " + format_number(std::round(have / kGiB * 10) / 10) +
                              " GiB of memory (use more ranks or a smaller value)");
    }
}

void check_choice(const std::string& key, const std::string& value, std::initializer_list<const char*> choices) {
    check_choice(key, value, std::vector<const char*>(choices));
}

void check_choice(const std::string& key, const std::string& value, const std::vector<const char*>& choices) {
    std::string list;
    for (const char* c : choices) {
        if (value == c) return;
        list += (list.empty() ? "" : " | ") + std::string(c);
    }
    throw OptionError(key, value, "expected one of " + list);
}

std::vector<double> parse_vector(const std::string& key, const std::string& text, int n) {
    std::vector<double> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        const auto b = item.find_first_not_of(" \t");
        const auto e = item.find_last_not_of(" \t");
        if (b == std::string::npos) throw OptionError(key, text, "empty entry in comma list");
        item = item.substr(b, e - b + 1);
        char* end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        if (end == item.c_str() || *end != '\0') throw OptionError(key, text, "'" + item + "' is not a number");
        if (!std::isfinite(v)) throw OptionError(key, text, "entries must be finite");
        out.push_back(v);
    }
    if (out.size() == 1 && n > 1) out.assign(static_cast<std::size_t>(n), out[0]);
    if (static_cast<int>(out.size()) != n) {
        throw OptionError(key, text, "expected 1 or " + std::to_string(n) + " comma-separated numbers");
    }
    return out;
}

} // namespace kinflow
