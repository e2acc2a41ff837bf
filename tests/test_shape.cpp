// Shape, the small vector behind every shape and stride list: the std::vector
// operations the library uses, across the switch from inline storage
// (kInline dims) to the heap, copies and moves of both kinds, and the
// conversions to and from std::vector<int64_t>.
#include <boost/test/unit_test.hpp>

#include <utility>
#include <vector>

#include "tensor/index.h"
#include "tensor/shape.h"
#include "tensor/tensor.h"

using namespace miras;

namespace {

std::vector<int64_t> vec(const Shape& s) { return std::vector<int64_t>(s.begin(), s.end()); }

}  // namespace

BOOST_AUTO_TEST_SUITE(shape_vector)

BOOST_AUTO_TEST_CASE(behaves_like_a_vector_inline_and_on_the_heap) {
    for (size_t n : {size_t(0), size_t(3), Shape::kInline, Shape::kInline + 1, size_t(20)}) {
        BOOST_TEST_CONTEXT("n = " << n) {
            std::vector<int64_t> ref;
            Shape s;
            for (size_t i = 0; i < n; ++i) {
                ref.push_back((int64_t)i * 7 - 3);
                s.push_back((int64_t)i * 7 - 3);
            }
            BOOST_TEST(vec(s) == ref);
            BOOST_TEST(s.size() == n);
            Shape copy = s;              // copy
            Shape moved = std::move(copy);  // move (steals a heap buffer, copies an inline one)
            BOOST_TEST(vec(moved) == ref);
            BOOST_TEST(copy.empty());
            Shape assigned{1, 2};
            assigned = moved;  // copy-assign over a smaller one
            BOOST_TEST(vec(assigned) == ref);
            assigned = Shape(40, 5);  // move-assign a heap one in
            BOOST_TEST(assigned.size() == 40u);
            BOOST_TEST(assigned.back() == 5);
            // insert / erase at the front, middle and end, as std::vector does
            std::vector<int64_t> r2 = ref;
            Shape s2 = s;
            r2.insert(r2.begin(), 100);
            s2.insert(s2.begin(), 100);
            r2.insert(r2.begin() + (std::ptrdiff_t)(r2.size() / 2), {7, 8, 9});
            s2.insert(s2.begin() + (std::ptrdiff_t)(s2.size() / 2), {7, 8, 9});
            r2.insert(r2.end(), 3, -1);
            s2.insert(s2.end(), 3, -1);
            BOOST_TEST(vec(s2) == r2);
            r2.erase(r2.begin() + 1, r2.begin() + 3);
            s2.erase(s2.begin() + 1, s2.begin() + 3);
            r2.erase(r2.begin());
            s2.erase(s2.begin());
            BOOST_TEST(vec(s2) == r2);
            s2.insert(s2.begin(), s2.begin(), s2.end());  // a range of itself
            const std::vector<int64_t> r2_copy = r2;
            r2.insert(r2.begin(), r2_copy.begin(), r2_copy.end());
            BOOST_TEST(vec(s2) == r2);
            s2.resize(2);
            BOOST_TEST(s2.size() == 2u);
            s2.resize(9, 4);
            BOOST_TEST(s2[8] == 4);
        }
    }
}

// Up to kInline dims the elements stay inside the object, whatever the edits.
BOOST_AUTO_TEST_CASE(small_shapes_stay_inline) {
    Shape s{1, 2, 3};
    const int64_t* inside = s.data();
    s.insert(s.begin() + 1, 9);
    s.insert(s.end(), {7, 8});
    s.erase(s.begin());
    s.push_back(5);
    s.resize(Shape::kInline);
    BOOST_TEST(s.data() == inside);
    BOOST_TEST(s.size() == Shape::kInline);
    s.push_back(6);  // one more: now on the heap
    BOOST_TEST(s.data() != inside);
    BOOST_TEST((s == Shape{9, 2, 3, 7, 8, 5, 6}));
}

BOOST_AUTO_TEST_CASE(converts_compares_and_reverses) {
    std::vector<int64_t> v = {2, 3, 4};
    Shape s = v;
    std::vector<int64_t> back = s;
    BOOST_TEST(back == v);
    BOOST_TEST((s == Shape{2, 3, 4}));
    BOOST_TEST((s != Shape{2, 3}));
    BOOST_TEST((Shape{2, 3} < s));
    BOOST_TEST(Shape(3).size() == 3u);  // a count, as std::vector's
    BOOST_TEST(Shape{3}.size() == 1u);  // a list of one
    BOOST_TEST(std::vector<int64_t>(s.rbegin(), s.rend()) == (std::vector<int64_t>{4, 3, 2}));
    BOOST_TEST(shape_str(s) == "(2, 3, 4)");
    BOOST_TEST(shape_str(Shape{5}) == "(5,)");
    BOOST_TEST(numel_of(s) == 24);
    BOOST_TEST(vec(contiguous_strides(s)) == (std::vector<int64_t>{12, 4, 1}));
}

// A tensor's element count and strides are int64 products of its dims; a
// shape whose non-zero dims multiply past 2^63 - 1 has neither, even with a
// zero dim (a safetensors entry of shape [0, 2^62, 2^62] overflowed in
// contiguous_strides, one of [2^62, 2, 0] in numel_of).
BOOST_AUTO_TEST_CASE(shapes_without_int64_strides_are_refused) {
    const int64_t big = int64_t(1) << 62;
    BOOST_TEST(shape_fits(Shape{}));
    BOOST_TEST(shape_fits(Shape{0, big, 1}));
    BOOST_TEST(shape_fits(Shape{big, 1, 0, 1}));
    BOOST_TEST(!shape_fits(Shape{0, big, big}));
    BOOST_TEST(!shape_fits(Shape{big, 2, 0}));
    BOOST_TEST(!shape_fits(Shape{2, -1}));
    BOOST_CHECK_THROW(Tensor::empty({0, big, big}, DType::f64), std::invalid_argument);
    BOOST_CHECK_THROW(Tensor::empty({big, 2, 0}, DType::f32), std::invalid_argument);
    BOOST_CHECK_THROW(Tensor::empty({big, 1}, DType::f64), std::invalid_argument);  // 2^65 bytes
    BOOST_TEST(Tensor::empty({0, big, 1}, DType::f32).numel() == 0);
    BOOST_CHECK_THROW(IndexTensor({big, 2, 0}, {}), std::invalid_argument);
    BOOST_CHECK_THROW(IndexTensor({0, big, big}, {}), std::invalid_argument);
    BOOST_TEST(IndexTensor({0, big}, {}).numel() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
