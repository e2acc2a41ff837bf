// The name -> entry table behind the bias, retention and architecture
// registries: lookup, listing, and the errors a config author sees.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

#include <string>
#include <vector>

#include "miras/bias.h"
#include "miras/registry.h"

using namespace miras;

using miras::test::error_of;

BOOST_AUTO_TEST_SUITE(miras_registry)

BOOST_AUTO_TEST_CASE(lookup_and_sorted_listing) {
    Registry<int> r("colour", {{"red", 1}, {"blue", 2}});
    r.add("green", 3);
    BOOST_TEST(r.find("red") == 1);
    BOOST_TEST(r.find("green") == 3);
    BOOST_TEST(r.has("blue"));
    BOOST_TEST(!r.has("Blue"));
    // Sorted, whatever the order of registration.
    BOOST_TEST(r.names() == (std::vector<std::string>{"blue", "green", "red"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(unknown_name_lists_the_known_ones) {
    Registry<int> r("colour", {{"red", 1}, {"blue", 2}});
    BOOST_TEST(error_of<std::invalid_argument>([&] { r.find("mauve"); }) ==
               "memory config: unknown colour 'mauve' (known: blue, red)");
}

// A reference from find() must outlive later registrations, so a taken name
// is refused rather than replaced.
BOOST_AUTO_TEST_CASE(taken_or_empty_names_are_refused) {
    Registry<int> r("colour", {{"red", 1}});
    const int& red = r.find("red");
    BOOST_TEST(error_of<std::invalid_argument>([&] { r.add("red", 9); }) == "cannot register colour 'red': name already taken");
    BOOST_TEST(error_of<std::invalid_argument>([&] { r.add("", 9); }) == "cannot register colour '': empty name");
    BOOST_TEST(red == 1);
    BOOST_TEST(r.names().size() == 1u);
    BOOST_TEST(error_of<std::invalid_argument>([] { Registry<int>("colour", {{"red", 1}, {"red", 2}}); }) ==
               "cannot register colour 'red': name already taken");
}

// Through the public API: a built-in cannot be overwritten.
BOOST_AUTO_TEST_CASE(builtin_bias_cannot_be_replaced) {
    BiasFn fn = [](const Tensor& pred, const Tensor&, const Tensor&, const MemoryConfig&) { return sum(pred, {-1}); };
    BOOST_TEST(error_of<std::invalid_argument>([&] { register_bias("l2", fn); }).find("attentional bias 'l2'") !=
               std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([] { register_bias("test_null", BiasFn()); }).find("register_bias") !=
               std::string::npos);
    BOOST_TEST(!has_bias("test_null"));
}

BOOST_AUTO_TEST_SUITE_END()
