#pragma once
// Tests that run PyTorch itself (tests/torch_ref, /usr/bin/python3 with
// Debian's python3-torch) are skipped where torch is not installed: Boost.Test
// reports them as skipped, with the reason, rather than passed.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace miras::testing {

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kTorchRefDir = "tests/torch_ref";

inline bool torch_available() {
    static const int ok = [] {
        const std::string cmd = std::string(kPython) + " -c 'import torch' >/dev/null 2>&1";
        return std::filesystem::exists(kPython) && std::filesystem::is_directory(kTorchRefDir) &&
               std::system(cmd.c_str()) == 0;
    }();
    return ok;
}

// BOOST_AUTO_TEST_CASE(name, *boost::unit_test::precondition(miras::testing::needs_torch))
inline boost::test_tools::assertion_result needs_torch(boost::unit_test::test_unit_id) {
    boost::test_tools::assertion_result r(torch_available());
    if (!r) r.message() << "torch not installed (" << kPython << " -c 'import torch' failed; Debian: python3-torch)";
    return r;
}

}  // namespace miras::testing
