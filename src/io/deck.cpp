#include "kinflow/io/deck.hpp"

#include <cstdint>
#include <fstream>
#include <sstream>

#include "kinflow/core/options.hpp"

namespace kinflow::io {

std::string any_to_string(const boost::any& v) {
    if (v.empty()) return "";
    if (const auto* p = boost::any_cast<std::string>(&v)) return *p;
    if (const auto* p = boost::any_cast<double>(&v)) return format_number(*p);
    if (const auto* p = boost::any_cast<int>(&v)) return std::to_string(*p);
    if (const auto* p = boost::any_cast<long>(&v)) return std::to_string(*p);
    if (const auto* p = boost::any_cast<long long>(&v)) return std::to_string(*p);
    if (const auto* p = boost::any_cast<unsigned>(&v)) return std::to_string(*p);
    if (const auto* p = boost::any_cast<bool>(&v)) return *p ? "true" : "false";
    return "?";
}

Deck::Deck(std::string program, std::string usage) : _program(std::move(program)), _usage(std::move(usage)) {}

po::options_description& Deck::section(const std::string& name, const std::string& caption) {
    for (auto& s : _sections) {
        if (s.name == name) return s.options;
    }
    _sections.push_back(Section{name, caption, po::options_description(caption)});
    return _sections.back().options;
}

Deck::Status Deck::parse(int argc, char** argv) {
    po::options_description all;
    for (const auto& s : _sections) all.add(s.options);
    po::options_description generic;
    generic.add_options()("help,h", "print the deck reference and exit")("version", "print the version and exit")(
        "quiet,q", "no progress line")("deck", po::value<std::string>(&_path), "input deck (INI)");
    if (_resume_allowed) generic.add_options()("resume", "continue from the checkpoint FILE.ckpt of output.file");
    po::options_description cli;
    cli.add(generic).add(all);
    po::positional_options_description pos;
    pos.add("deck", 1);

    po::parsed_options cli_parsed(nullptr);
    try {
        cli_parsed = po::command_line_parser(argc, argv).options(cli).positional(pos).run();
        po::store(cli_parsed, _cli);
    } catch (const po::too_many_positional_options_error&) {
        throw Error("command line: more than one input deck given");
    } catch (const po::error& e) {
        throw Error(std::string("command line: ") + e.what());
    }
    if (_cli.count("help")) return Status::Help;
    if (_cli.count("version")) return Status::Version;
    _quiet = _cli.count("quiet") > 0;
    _resume = _cli.count("resume") > 0;
    if (!_cli.count("deck")) throw Error("no input deck given (usage: " + _usage + "; --help lists every key)");
    _path = _cli["deck"].as<std::string>();

    std::ifstream in(_path);
    if (!in) throw Error(_path + ": cannot open input deck");
    po::parsed_options parsed(nullptr);
    try {
        parsed = po::parse_config_file(in, all, false);
    } catch (const po::unknown_option& e) {
        throw Error(_path + ": unknown key '" + e.get_option_name() + "' (--help lists every key)");
    } catch (const po::error& e) {
        throw Error(_path + ": " + e.what());
    }
    try {
        po::store(cli_parsed, _vm); // command line first: the first stored value wins
    } catch (const po::error& e) {
        throw Error(std::string("command line: ") + e.what());
    }
    try {
        po::store(parsed, _vm);
        po::notify(_vm);
    } catch (const po::error& e) {
        throw Error(_path + ": " + e.what());
    }
    return Status::Run;
}

std::string Deck::source(const std::string& key) const {
    const auto it = _cli.find(key);
    if (it != _cli.end() && !it->second.defaulted()) return "command line";
    const auto jt = _vm.find(key);
    if (jt != _vm.end() && !jt->second.defaulted()) return _path;
    return "default";
}

std::string Deck::explain(const OptionError& e) const {
    const std::string src = source(e.key());
    return (src == "default" ? std::string("default") : src) + ": " + e.what();
}

std::string Deck::resolved(const std::vector<std::string>& sections) const {
    std::ostringstream os;
    for (const auto& name : sections) {
        for (const auto& s : _sections) {
            if (s.name != name) continue;
            os << "[" << name << "]\n";
            for (const auto& opt : s.options.options()) {
                const std::string& key = opt->long_name();
                const auto it = _vm.find(key);
                const std::string value = it != _vm.end() ? any_to_string(it->second.value()) : "";
                os << key.substr(name.size() + 1) << " = " << value << "\n";
            }
            os << "\n";
        }
    }
    return os.str();
}

std::string Deck::help() const {
    std::ostringstream os;
    os << "usage: " << _usage << "\n\n"
       << "Runs the input deck (INI). Any key can be overridden on the command line as\n"
       << "--section.key=value. Options: --help, --version, --quiet (no progress line)"
       << (_resume_allowed ? ",\n--resume (continue an interrupted run from its checkpoint FILE.ckpt: the same deck; run.steps\n"
                             "and [output] may change, keys that change the physics may not).\n"
                           : ".\n")
       << "Vector values are comma lists; one number means the same for every component.\n";
    for (const auto& s : _sections) {
        os << "\n[" << s.name << "]  " << s.caption << "\n";
        for (const auto& opt : s.options.options()) {
            boost::any def;
            std::string def_text;
            if (opt->semantic()->apply_default(def)) def_text = any_to_string(def);
            const std::string key = opt->long_name().substr(s.name.size() + 1);
            std::string line = "  " + key + " = " + def_text;
            if (line.size() < 34) line.resize(34, ' ');
            else line += "  ";
            os << line << opt->description() << "\n";
        }
    }
    return os.str();
}

} // namespace kinflow::io
