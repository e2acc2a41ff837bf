// The one translation unit that defines the Boost.Test module (and main).
#define BOOST_TEST_MODULE miras
// BOOST_TEST_DYN_LINK (link against the shared Boost.Test) comes from the
// Makefile, for every test file alike.
#include <boost/test/unit_test.hpp>
