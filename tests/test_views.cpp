// View ops: geometry and values, aliasing (writes through a view reach the
// base), reshape of a non-contiguous tensor copies, view() of a non-viewable
// layout throws, and errors name the op and the shapes.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

BOOST_AUTO_TEST_SUITE(views)

BOOST_AUTO_TEST_CASE(view_values_and_geometry) {
    for (DType dt : kDtypes) {
        Tensor x = T({0, 1, 2, 3, 4, 5}, {2, 3}, dt);
        check_values(transpose(x, 0, 1), {3, 2}, {0, 3, 1, 4, 2, 5}, 0);
        check_values(transpose(x, -1, -2), {3, 2}, {0, 3, 1, 4, 2, 5}, 0);
        check_values(permute(T({0, 1, 2, 3, 4, 5}, {1, 2, 3}, dt), {2, 0, 1}), {3, 1, 2}, {0, 3, 1, 4, 2, 5}, 0);
        check_values(narrow(x, 1, 1, 2), {2, 2}, {1, 2, 4, 5}, 0);
        check_values(narrow(x, 1, -2, 2), {2, 2}, {1, 2, 4, 5}, 0);  // negative start counts from the end
        check_values(narrow(x, 0, 1, 0), {0, 3}, {}, 0);
        check_values(select(x, 0, 1), {3}, {3, 4, 5}, 0);
        check_values(select(x, 1, -1), {2}, {2, 5}, 0);
        check_values(expand(T({1, 2}, {2, 1}, dt), {2, 2, 3}), {2, 2, 3}, {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2}, 0);
        check_values(expand(scalar_tensor(3, dt), {2}), {2}, {3, 3}, 0);
        check_values(squeeze(T({1, 2}, {1, 2}, dt), 0), {2}, {1, 2}, 0);
        check_values(squeeze(T({1, 2}, {1, 2}, dt), 1), {1, 2}, {1, 2}, 0);  // not size 1: unchanged
        check_values(unsqueeze(x, 1), {2, 1, 3}, {0, 1, 2, 3, 4, 5}, 0);
        check_values(unsqueeze(x, -1), {2, 3, 1}, {0, 1, 2, 3, 4, 5}, 0);
        check_values(unsqueeze(scalar_tensor(5, dt), 0), {1}, {5}, 0);
        check_values(reshape(x, {3, -1}), {3, 2}, {0, 1, 2, 3, 4, 5}, 0);
        check_values(view(x, {6}), {6}, {0, 1, 2, 3, 4, 5}, 0);
        check_values(view(x, {1, 2, 1, 3}), {1, 2, 1, 3}, {0, 1, 2, 3, 4, 5}, 0);
        check_values(view(T({7}, {1, 1}, dt), {}), {}, {7}, 0);
        check_values(reshape(scalar_tensor(7, dt), {1, 1}), {1, 1}, {7}, 0);
        check_values(flatten(T({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2}, dt), 1), {2, 4}, {0, 1, 2, 3, 4, 5, 6, 7}, 0);
        check_values(flatten(T({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2}, dt), 0, 1), {4, 2}, {0, 1, 2, 3, 4, 5, 6, 7}, 0);
        check_values(flatten(scalar_tensor(2, dt)), {1}, {2}, 0);
        // a transposed tensor of a transposed tensor is the original layout
        Tensor tt = transpose(transpose(x, 0, 1), 0, 1);
        BOOST_TEST(tt.is_contiguous());
        BOOST_TEST(tt.same_storage(x));
        BOOST_TEST(!transpose(x, 0, 1).is_contiguous());
        BOOST_TEST(expand(T({1, 2}, {2, 1}, dt), {2, 3}).strides() == (Shape{1, 0}));
        // contiguous() copies only when needed; clone() always copies
        BOOST_TEST(contiguous(x).same_storage(x));
        Tensor c = contiguous(transpose(x, 0, 1));
        BOOST_TEST(!c.same_storage(x));
        BOOST_TEST(c.is_contiguous());
        check_values(c, {3, 2}, {0, 3, 1, 4, 2, 5}, 0);
        BOOST_TEST(!clone(x).same_storage(x));
        check_same(clone(x), x);
    }
}

BOOST_AUTO_TEST_CASE(writes_through_views_reach_the_base) {
    for (DType dt : kDtypes) {
        Tensor base = T({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4}, dt);
        raw::copy_(raw::narrow(base, 1, 1, 2), T({-1, -2}, {2}, dt));
        check_values(base, {3, 4}, {0, -1, -2, 3, 4, -1, -2, 7, 8, -1, -2, 11}, 0);
        raw::copy_(raw::select(base, 0, 2), T({20, 21, 22, 23}, {4}, dt));
        check_values(base, {3, 4}, {0, -1, -2, 3, 4, -1, -2, 7, 20, 21, 22, 23}, 0);
        raw::copy_(raw::select(raw::transpose(base, 0, 1), 0, 3), T({30, 31, 32}, {3}, dt));  // column 3
        check_values(base, {3, 4}, {0, -1, -2, 30, 4, -1, -2, 31, 20, 21, 22, 32}, 0);
        // through the differentiable views as well, and through a view of a view
        Tensor v = narrow(transpose(base, 0, 1), 0, 0, 1);  // (1, 3): column 0
        raw::copy_(v, T({100, 101, 102}, {1, 3}, dt));
        check_values(select(base, 1, 0), {3}, {100, 101, 102}, 0);
        Tensor r = view(base, {2, 6});
        raw::fill_(raw::select(r, 0, 1), 0);
        check_values(select(base, 0, 2), {4}, {0, 0, 0, 0}, 0);
        // a view shares the version counter: a write through it bumps the base's
        uint64_t v0 = base.version();
        raw::fill_(unsqueeze(base, 0), 1);
        BOOST_TEST(base.version() > v0);
    }
}

BOOST_AUTO_TEST_CASE(reshape_copies_only_non_viewable_layouts) {
    Tensor x = T({0, 1, 2, 3, 4, 5}, {2, 3});
    // contiguous: a view, writes go through
    Tensor r = reshape(x, {3, 2});
    BOOST_TEST(r.same_storage(x));
    // transposed: reshape to 1-D must copy, and the copy is independent
    Tensor t = transpose(x, 0, 1);
    Tensor f = reshape(t, {6});
    BOOST_TEST(!f.same_storage(x));
    check_values(f, {6}, {0, 3, 1, 4, 2, 5});
    raw::fill_(f, -1);
    check_values(x, {2, 3}, {0, 1, 2, 3, 4, 5});
    // but splitting/merging dims that stay adjacent in memory is a view
    Tensor n = narrow(T({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {2, 2, 3}), 0, 1, 1);  // (1, 2, 3), offset 6
    Tensor nv = view(n, {3, 2});
    BOOST_TEST(nv.same_storage(n));
    check_values(nv, {3, 2}, {6, 7, 8, 9, 10, 11});
    Tensor wide = narrow(T({0, 1, 2, 3, 4, 5, 6, 7}, {2, 4}), 1, 0, 2);  // (2, 2) rows with a gap
    Tensor w1 = view(wide, {2, 1, 2});
    BOOST_TEST(w1.same_storage(wide));
    check_values(w1, {2, 1, 2}, {0, 1, 4, 5});
    Tensor w2 = reshape(wide, {4});
    BOOST_TEST(!w2.same_storage(wide));
    check_values(w2, {4}, {0, 1, 4, 5});
    // an expanded tensor reshaped keeps its values
    check_values(reshape(expand(T({1, 2}, {2, 1}), {2, 2}), {4}), {4}, {1, 1, 2, 2});
}

BOOST_AUTO_TEST_CASE(view_errors_name_op_and_shapes) {
    Tensor x = zeros({2, 3});
    Tensor t = transpose(x, 0, 1);
    BOOST_CHECK_EXCEPTION(view(t, {6}), std::invalid_argument,
                          has({"view: cannot view", "(3, 2)", "strides (1, 3)", "as (6,)", "reshape"}));
    BOOST_CHECK_EXCEPTION(view(narrow(zeros({2, 4}), 1, 0, 2), {4}), std::invalid_argument, has({"view", "(2, 2)"}));
    BOOST_CHECK_EXCEPTION(reshape(x, {4}), std::invalid_argument, has({"reshape", "(4,)", "6 elements"}));
    BOOST_CHECK_EXCEPTION(reshape(x, {-1, -1}), std::invalid_argument, has({"reshape", "only one", "-1"}));
    BOOST_CHECK_EXCEPTION(view(x, {4, -1}), std::invalid_argument, has({"view", "infer", "(4, -1)", "6 elements"}));
    BOOST_CHECK_EXCEPTION(reshape(x, {-2, 3}), std::invalid_argument, has({"reshape", "(-2, 3)"}));
    BOOST_CHECK_EXCEPTION(narrow(x, 1, 2, 2), std::out_of_range, has({"narrow", "[2, 4)", "dim 1", "(2, 3)"}));
    BOOST_CHECK_EXCEPTION(narrow(x, 2, 0, 1), std::out_of_range, has({"narrow", "dim 2"}));
    BOOST_CHECK_EXCEPTION(select(x, 0, 2), std::out_of_range, has({"select", "index 2", "(2, 3)"}));
    BOOST_CHECK_EXCEPTION(select(x, 1, -4), std::out_of_range, has({"select", "index -4"}));
    BOOST_CHECK_EXCEPTION(expand(x, {3}), std::invalid_argument, has({"expand", "(2, 3)", "(3,)"}));
    BOOST_CHECK_EXCEPTION(expand(x, {4, 3}), std::invalid_argument, has({"expand", "(2, 3)", "(4, 3)"}));
    BOOST_CHECK_EXCEPTION(permute(x, {0}), std::invalid_argument, has({"permute", "(2, 3)"}));
    BOOST_CHECK_EXCEPTION(permute(x, {1, 1}), std::invalid_argument, has({"permute", "repeated"}));
    BOOST_CHECK_EXCEPTION(transpose(x, 0, 2), std::out_of_range, has({"transpose", "dim 2"}));
    BOOST_CHECK_EXCEPTION(unsqueeze(x, 3), std::out_of_range, has({"unsqueeze", "dim 3"}));
    BOOST_CHECK_EXCEPTION(squeeze(x, -3), std::out_of_range, has({"squeeze", "dim -3"}));
    BOOST_CHECK_EXCEPTION(flatten(x, 2), std::out_of_range, has({"flatten", "dim 2"}));
    BOOST_CHECK_EXCEPTION(flatten(zeros({2, 3, 4}), 2, 1), std::invalid_argument,
                          has({"flatten", "start_dim 2", "end_dim 1", "(2, 3, 4)"}));
    // 0-d tensors have no dim to index (wrap_dim alone would accept dim 0)
    Tensor s = scalar_tensor(1);
    BOOST_CHECK_EXCEPTION(narrow(s, 0, 0, 1), std::invalid_argument, has({"narrow", "0-d"}));
    BOOST_CHECK_EXCEPTION(select(s, 0, 0), std::invalid_argument, has({"select", "0-d"}));
    BOOST_CHECK_EXCEPTION(raw::select(s, -1, 0), std::invalid_argument, has({"select", "0-d"}));
    BOOST_CHECK_EXCEPTION(split(s, {1}, 0), std::invalid_argument, has({"split", "zero-dimensional"}));
    BOOST_CHECK_EXCEPTION(raw::as_strided(x, {2, 3}, {1}, 0), std::invalid_argument, has({"as_strided", "(2, 3)", "(1,)"}));
}

BOOST_AUTO_TEST_SUITE_END()
