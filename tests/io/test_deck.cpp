// Deck parsing: INI sections, command-line overrides, defaults, and errors naming file/key/value.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "kinflow/engines/langevin/options.hpp"
#include "kinflow/io/deck.hpp"
#include "kinflow/io/run_options.hpp"

using namespace kinflow;

namespace {
struct Fixture {
    io::RunOptions run;
    io::OutputOptions out;
    langevin::Options lv;
    io::Deck deck{"test", "test DECK"};
    Fixture() {
        io::describe(deck.section("run", "run"), run);
        io::describe(deck.section("output", "output"), out);
        langevin::describe(deck.section("langevin", "langevin"), lv);
    }
    io::Deck::Status parse(std::vector<std::string> args) {
        args.insert(args.begin(), "test");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        return deck.parse(static_cast<int>(argv.size()), argv.data());
    }
};

std::string write_deck(const std::string& name, const std::string& text) {
    const std::string path = ::testing::TempDir() + name;
    std::ofstream(path) << text;
    return path;
}

std::string error_of(Fixture& f, const std::vector<std::string>& args) {
    try {
        f.parse(args);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}
} // namespace

TEST(Deck, SectionsCommentsAndCommandLineOverride) {
    const auto path = write_deck("deck_ok.ini", "[run]\nengine = langevin  # the engine\nseed = 7\ndt = 0.5\n\n"
                                                "[langevin]\ndim = 2\ncenter = 1, 2\n");
    Fixture f;
    ASSERT_EQ(f.parse({path, "--langevin.dim=3", "--run.steps", "12"}), io::Deck::Status::Run);
    EXPECT_EQ(f.run.engine, "langevin");
    EXPECT_EQ(f.run.seed, 7);
    EXPECT_EQ(f.run.steps, 12);
    EXPECT_EQ(f.run.dt, 0.5);
    EXPECT_EQ(f.lv.dim, 3); // command line wins over the deck
    EXPECT_EQ(f.lv.center, "1, 2");
    EXPECT_EQ(f.deck.source("langevin.dim"), "command line");
    EXPECT_EQ(f.deck.source("run.seed"), path);
    EXPECT_EQ(f.deck.source("output.every"), "default");
    const std::string resolved = f.deck.resolved({"run", "output", "langevin"});
    EXPECT_NE(resolved.find("[langevin]\ndim = 3\n"), std::string::npos);
    EXPECT_NE(resolved.find("seed = 7\n"), std::string::npos);
    EXPECT_NE(resolved.find("every = 100\n"), std::string::npos); // default included
    EXPECT_NE(resolved.find("dt = 0.5\n"), std::string::npos);
}

TEST(Deck, ErrorsNameFileKeyAndValue) {
    const auto unknown = write_deck("deck_unknown.ini", "[langevin]\nbogus = 1\n");
    Fixture a;
    const auto e1 = error_of(a, {unknown});
    EXPECT_NE(e1.find(unknown), std::string::npos) << e1;
    EXPECT_NE(e1.find("langevin.bogus"), std::string::npos) << e1;

    const auto badtype = write_deck("deck_type.ini", "[langevin]\ndim = two\n");
    Fixture b;
    const auto e2 = error_of(b, {badtype});
    EXPECT_NE(e2.find(badtype), std::string::npos) << e2;
    EXPECT_NE(e2.find("two"), std::string::npos) << e2;
    EXPECT_NE(e2.find("langevin.dim"), std::string::npos) << e2;

    Fixture c;
    const auto e3 = error_of(c, {::testing::TempDir() + "no_such_deck.ini"});
    EXPECT_NE(e3.find("no_such_deck.ini"), std::string::npos) << e3;

    Fixture d;
    EXPECT_NE(error_of(d, {}).find("no input deck"), std::string::npos);

    Fixture e;
    const auto ok = write_deck("deck_ok2.ini", "[run]\nseed = 1\n");
    EXPECT_NE(error_of(e, {ok, "--nope.key=1"}).find("command line"), std::string::npos);
}

TEST(Deck, OutOfRangeValueIsExplainedWithItsSource) {
    const auto path = write_deck("deck_range.ini", "[langevin]\ndim = 5\n");
    Fixture f;
    ASSERT_EQ(f.parse({path}), io::Deck::Status::Run);
    try {
        langevin::validate(f.lv, f.run.dt);
        FAIL() << "dim = 5 accepted";
    } catch (const OptionError& e) {
        const std::string msg = f.deck.explain(e);
        EXPECT_EQ(msg.rfind(path + ": langevin.dim = '5'", 0), 0u) << msg;
    }
}

TEST(Deck, HelpListsEveryKeyWithDefault) {
    Fixture f;
    EXPECT_EQ(f.parse({"--help"}), io::Deck::Status::Help);
    const std::string help = f.deck.help();
    for (const char* key : {"engine", "seed", "steps", "dt", "file", "every", "dim", "particles", "dynamics", "potential",
                            "stiffness", "center", "temperature", "friction", "interaction", "interaction_strength", "init",
                            "init_mean", "init_std", "init_file"}) {
        EXPECT_NE(help.find("\n  " + std::string(key) + " = "), std::string::npos) << key;
    }
    EXPECT_NE(help.find("dynamics = overdamped"), std::string::npos);
}
