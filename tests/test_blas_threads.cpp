// tensor/threads.h: the BLAS thread count round-trips through the setter and
// the getter, a count below 1 is an std::invalid_argument naming it (and
// changes nothing), BlasThreadsScope restores the previous count, and a GEMM
// large enough for OpenBLAS to split gives the same f64 result with 1 and 2
// threads up to rounding, and bit for bit when repeated with 1 thread.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/ops.h"
#include "tensor/threads.h"

using namespace miras;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The message of the invalid_argument set_blas_threads(n) throws.
std::string threads_error(int n) {
    try {
        set_blas_threads(n);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tensor_threads)

BOOST_AUTO_TEST_CASE(set_and_get_round_trip) {
    const BlasThreadsScope restore(blas_threads());  // leave the suite's count as found
    for (int n : {1, 2, 3, 1}) {
        BOOST_TEST(set_blas_threads(n) == n);
        BOOST_TEST(blas_threads() == n);
    }
}

BOOST_AUTO_TEST_CASE(counts_below_one_are_an_error_naming_the_value) {
    const BlasThreadsScope two(2);
    for (int n : {0, -1, -8}) {
        const std::string msg = threads_error(n);
        BOOST_TEST(contains(msg, "set_blas_threads"), msg);
        BOOST_TEST(contains(msg, ">= 1"), msg);
        BOOST_TEST(contains(msg, "got " + std::to_string(n)), msg);
        BOOST_TEST(blas_threads() == 2);  // unchanged by the refused call
    }
    BOOST_CHECK_THROW(BlasThreadsScope bad(0), std::invalid_argument);
    BOOST_TEST(blas_threads() == 2);
}

BOOST_AUTO_TEST_CASE(scope_restores_the_previous_count) {
    const BlasThreadsScope outer(1);
    {
        const BlasThreadsScope inner(2);
        BOOST_TEST(blas_threads() == 2);
    }
    BOOST_TEST(blas_threads() == 1);
    // Also when an exception leaves the scope.
    try {
        const BlasThreadsScope inner(3);
        BOOST_TEST(blas_threads() == 3);
        throw std::runtime_error("leave");
    } catch (const std::runtime_error&) {
    }
    BOOST_TEST(blas_threads() == 1);
}

BOOST_AUTO_TEST_CASE(gemm_agrees_across_thread_counts) {
    // (256, 256) @ (256, 256) f64: well above OpenBLAS's size for splitting a
    // GEMM over threads, and a few milliseconds.
    Generator g(7);
    const Tensor a = randn({256, 256}, g, DType::f64), b = randn({256, 256}, g, DType::f64);
    auto product = [&](int threads) {
        const BlasThreadsScope scope(threads);
        return raw::matmul(a, b).to_vector();
    };
    const std::vector<double> one = product(1), again = product(1), two = product(2);
    BOOST_REQUIRE(one.size() == 256u * 256u);
    BOOST_TEST(std::memcmp(one.data(), again.data(), one.size() * sizeof(double)) == 0);
    double worst = 0;
    for (size_t i = 0; i < one.size(); ++i) worst = std::max(worst, std::abs(one[i] - two[i]));
    // Entries are sums of 256 products of N(0, 1) values, |x| ~ 16: rounding
    // only (OpenBLAS 0.3.21's Haswell dgemm even agrees bit for bit; its
    // sgemm does not, which is why training fixes the count).
    BOOST_TEST(worst < 1e-11, "max |1 thread - 2 threads| = " << worst);
}

BOOST_AUTO_TEST_SUITE_END()
