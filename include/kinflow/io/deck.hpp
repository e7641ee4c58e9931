#pragma once
// Input decks: INI files parsed by Boost.Program_options, one section per module, any key
// overridable on the command line as --section.key=value.
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "kinflow/core/error.hpp"

namespace kinflow::io {

namespace po = boost::program_options;

class Deck {
  public:
    /// `program` names the driver in messages; `usage` is the one-line synopsis for --help.
    Deck(std::string program, std::string usage);

    /// A section `[name]`: modules fill it with their describe() functions. `caption` is its
    /// heading in --help.
    po::options_description& section(const std::string& name, const std::string& caption);

    enum class Status { Run, Help, Version };
    /// Parse argv (the deck path, --section.key=value overrides, --help, --quiet, --version), then
    /// the deck file; command-line values win. Throws Error with a message that names the
    /// file or command line, the key and the bad value.
    Status parse(int argc, char** argv);

    const std::string& path() const { return _path; }
    bool quiet() const { return _quiet; }
    /// Accept --resume (kinflow-simulate: continue from the checkpoint of output.file).
    void allow_resume() { _resume_allowed = true; }
    bool resume() const { return _resume; }
    /// Where `key` got its value: the deck path, "command line" or "default".
    std::string source(const std::string& key) const;
    /// Prefix an OptionError with where the key came from: "deck.ini: langevin.dim = '5': ...".
    std::string explain(const OptionError& e) const;
    /// The resolved deck (defaults included) for the given sections, as INI text.
    std::string resolved(const std::vector<std::string>& sections) const;
    /// The reference printed by --help: every key with default and meaning.
    std::string help() const;
    const po::variables_map& values() const { return _vm; }

  private:
    std::string _program, _usage, _path;
    bool _quiet = false, _resume = false, _resume_allowed = false;
    struct Section {
        std::string name, caption;
        po::options_description options;
    };
    std::vector<Section> _sections;
    po::variables_map _vm, _cli;
};

/// Text of a parsed or default value (numbers in shortest round-trip form).
std::string any_to_string(const boost::any& v);

} // namespace kinflow::io
