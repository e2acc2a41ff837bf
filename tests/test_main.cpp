// The one translation unit that defines the Boost.Test module (and main).
#define BOOST_TEST_MODULE miras
// BOOST_TEST_DYN_LINK (link against the shared Boost.Test) comes from the
// Makefile, for every test file alike.
#include <boost/test/unit_test.hpp>

// Under AddressSanitizer a failed malloc aborts the process by default; the
// tests of out-of-memory errors (test_allocator.cpp, test_cli.cpp) need it to
// return null as glibc does. Read by ASan at start-up; unused otherwise.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }
