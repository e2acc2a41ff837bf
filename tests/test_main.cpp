// The one translation unit that defines the Boost.Test module (and main).
#define BOOST_TEST_MODULE miras
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>
