// Option validation helpers: each bad value is an OptionError naming the key and the value.
#include <gtest/gtest.h>

#include <cmath>

#include "kinflow/core/options.hpp"

using namespace kinflow;

TEST(Options, ParseVectorBroadcastsAndRejects) {
    EXPECT_EQ(parse_vector("a.b", "2.5", 3), (std::vector<double>{2.5, 2.5, 2.5}));
    EXPECT_EQ(parse_vector("a.b", " 1, -2 ,3e1", 3), (std::vector<double>{1, -2, 30}));
    EXPECT_THROW(parse_vector("a.b", "1,2", 3), OptionError);
    EXPECT_THROW(parse_vector("a.b", "1,x,3", 3), OptionError);
    EXPECT_THROW(parse_vector("a.b", "1,,3", 3), OptionError);
    EXPECT_THROW(parse_vector("a.b", "inf", 1), OptionError);
    try {
        parse_vector("langevin.center", "1,oops", 2);
        FAIL() << "no exception";
    } catch (const OptionError& e) {
        EXPECT_EQ(e.key(), "langevin.center");
        EXPECT_EQ(e.value(), "1,oops");
        EXPECT_NE(std::string(e.what()).find("oops"), std::string::npos);
    }
}

TEST(Options, RangeAndChoice) {
    EXPECT_NO_THROW(check_range("k", 2.0, 1.0, 3.0));
    EXPECT_THROW(check_range("k", 3.5, 1.0, 3.0), OptionError);
    EXPECT_THROW(check_range("k", std::nan(""), 1.0, 3.0), OptionError);
    EXPECT_THROW(check_range("k", std::int64_t{0}, std::int64_t{1}, std::int64_t{3}), OptionError);
    EXPECT_THROW(check_positive("k", 0.0), OptionError);
    EXPECT_NO_THROW(check_choice("k", "b", {"a", "b"}));
    try {
        check_choice("langevin.dynamics", "sideways", {"overdamped", "underdamped"});
        FAIL() << "no exception";
    } catch (const OptionError& e) {
        EXPECT_NE(std::string(e.what()).find("overdamped | underdamped"), std::string::npos);
    }
    EXPECT_EQ(format_number(0.1), "0.1");
    EXPECT_EQ(format_number(1e-5), "1e-05");
}
