// The block cache of tensor/allocator.h: size classes, reuse of freed
// blocks, the limit, alignment, and emptying.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/ops.h"

using namespace miras;

namespace {

// Restores the default limit when a test ends, whatever it set.
struct LimitGuard {
    size_t saved = alloc::cache_stats().limit_bytes;
    ~LimitGuard() { alloc::set_cache_limit(saved); }
};

bool cache_enabled() {
    alloc::set_cache_limit(64 << 20);
    return alloc::cache_stats().limit_bytes > 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(allocator)

BOOST_AUTO_TEST_CASE(size_classes_round_up_by_at_most_a_quarter) {
    BOOST_TEST(alloc::size_class(0) == 0u);
    BOOST_TEST(alloc::size_class(1000) == 1000u);  // small: malloc, no rounding
    BOOST_TEST(alloc::size_class(1024) == 1024u);
    BOOST_TEST(alloc::size_class(1025) == 1280u);
    BOOST_TEST(alloc::size_class(5000) == 5120u);
    BOOST_TEST(alloc::size_class(size_t(1) << 20) == size_t(1) << 20);
    size_t prev = 0;
    for (size_t n = 1024; n < (size_t(1) << 22); n = n * 9 / 8 + 7) {
        size_t c = alloc::size_class(n);
        BOOST_TEST(c >= n);
        BOOST_TEST(c * 4 <= n * 5 + 4, "class " << c << " for " << n);
        BOOST_TEST(c % 64 == 0u);
        BOOST_TEST(c >= prev);
        prev = c;
    }
}

BOOST_AUTO_TEST_CASE(freed_blocks_are_reused_within_the_limit) {
    LimitGuard guard;
    if (!cache_enabled()) {
        BOOST_TEST_MESSAGE("block cache disabled in this build (sanitizers): nothing to reuse");
        return;
    }
    alloc::empty_cache();
    BOOST_TEST(alloc::cache_stats().cached_bytes == 0u);
    void* p = alloc::allocate(1 << 20);
    BOOST_TEST((reinterpret_cast<uintptr_t>(p) % 64) == 0u);
    std::memset(p, 1, 1 << 20);
    alloc::release(p, 1 << 20);
    BOOST_TEST(alloc::cache_stats().cached_bytes == size_t(1) << 20);
    uint64_t hits = alloc::cache_stats().hits;
    void* q = alloc::allocate((1 << 20) - 100);  // same size class
    BOOST_TEST(q == p);
    BOOST_TEST(alloc::cache_stats().hits == hits + 1);
    BOOST_TEST(alloc::cache_stats().cached_bytes == 0u);
    alloc::release(q, (1 << 20) - 100);

    // The limit: of three freed 1 MiB blocks a 2 MiB cache keeps two.
    alloc::empty_cache();
    alloc::set_cache_limit(2 << 20);
    void* b[3];
    for (void*& x : b) x = alloc::allocate(1 << 20);
    for (void* x : b) alloc::release(x, 1 << 20);
    BOOST_TEST(alloc::cache_stats().cached_bytes == size_t(2) << 20);
    alloc::set_cache_limit(1 << 20);  // lowering the limit trims at once
    BOOST_TEST(alloc::cache_stats().cached_bytes == size_t(1) << 20);
    alloc::empty_cache();
    BOOST_TEST(alloc::cache_stats().cached_bytes == 0u);
    alloc::set_cache_limit(0);  // disabled: a freed block is not kept
    void* z = alloc::allocate(4096);
    alloc::release(z, 4096);
    BOOST_TEST(alloc::cache_stats().cached_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(tensors_on_reused_memory_hold_their_own_values) {
    LimitGuard guard;
    cache_enabled();
    const void* first;
    {
        Tensor a = full({64, 64}, 3.0);  // 16 KiB
        first = a.data<float>();
    }
    Tensor b = zeros({64, 64});  // the same class: the freed block, now zeroed
    if (alloc::cache_stats().limit_bytes > 0) BOOST_TEST(b.data<float>() == first);
    for (int64_t i = 0; i < b.numel(); ++i) BOOST_REQUIRE(b.data<float>()[i] == 0.0f);
    Tensor c = Tensor::empty({3}, DType::f64);  // small blocks: malloc, any size works
    c.data<double>()[2] = 1.5;
    BOOST_TEST(c.data<double>()[2] == 1.5);
}

BOOST_AUTO_TEST_CASE(cache_limit_from_the_environment) {
    std::string problem;
    BOOST_TEST(alloc::cache_limit_from(nullptr, &problem) == size_t(1024) << 20);
    BOOST_TEST(alloc::cache_limit_from("", &problem) == size_t(1024) << 20);
    BOOST_TEST(alloc::cache_limit_from("0", &problem) == 0u);
    BOOST_TEST(alloc::cache_limit_from("256", &problem) == size_t(256) << 20);
    BOOST_TEST(problem.empty());
    for (const char* bad : {"12MB", "-1", "lots", "99999999999999999999999"}) {
        problem.clear();
        BOOST_TEST(alloc::cache_limit_from(bad, &problem) == size_t(1024) << 20, bad);
        BOOST_TEST(problem.find(std::string("MIRAS_ALLOC_CACHE_MB='") + bad + "'") != std::string::npos, problem);
    }
}

BOOST_AUTO_TEST_CASE(a_failed_allocation_names_the_shape_and_size) {
    // 2^56 f32 elements = 256 PiB: more than any 64-bit machine can map
    // (57-bit addresses at most), so the allocation fails whatever the
    // kernel's overcommit policy. The shape itself is valid (its strides fit).
    const Shape huge = {int64_t(1) << 28, int64_t(1) << 28};
    bool thrown = false;
    try {
        Tensor::empty(huge, DType::f32);
    } catch (const std::bad_alloc& e) {  // still a bad_alloc for code that catches that
        thrown = true;
        const std::string what = e.what();
        BOOST_TEST(what.find("out of memory") != std::string::npos, what);
        BOOST_TEST(what.find("(268435456, 268435456) f32") != std::string::npos, what);
        BOOST_TEST(what.find("256 PiB (288230376151711744 bytes)") != std::string::npos, what);
    }
    BOOST_TEST(thrown);
    // The failure left nothing behind: ordinary tensors still work.
    BOOST_TEST(zeros({3}, DType::f64).to_vector() == std::vector<double>({0, 0, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
