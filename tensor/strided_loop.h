#pragma once
// The one loop that walks N operands of the same (broadcast) shape, each with
// its own strides. Dimensions that are contiguous in every operand are merged
// first, so the innermost loop is as long as possible; the inner loop is
// handed to the kernel as (pointers, length, inner strides) and runs without
// any index arithmetic.
#include <array>
#include <cstdint>
#include <vector>

#include "tensor/shape.h"

namespace miras::detail {

template <int N> struct StridedLoop {
    Shape shape;                       // after merging
    std::array<Shape, N> strides;      // in elements, per operand

    StridedLoop(const Shape& s, const std::array<Shape, N>& st) {
        // Drop size-1 dims, then merge dim i into i+1 when every operand has
        // stride[i] == stride[i+1] * shape[i+1].
        for (size_t d = 0; d < s.size(); ++d) {
            if (s[d] == 1) continue;
            if (!shape.empty()) {
                bool merge = true;
                for (int k = 0; k < N; ++k)
                    if (strides[k].back() != st[k][d] * s[d]) merge = false;
                if (merge) {
                    shape.back() *= s[d];
                    for (int k = 0; k < N; ++k) strides[k].back() = st[k][d];
                    continue;
                }
            }
            shape.push_back(s[d]);
            for (int k = 0; k < N; ++k) strides[k].push_back(st[k][d]);
        }
        if (shape.empty()) {  // scalar or all-ones shape
            shape.push_back(1);
            for (int k = 0; k < N; ++k) strides[k].push_back(0);
        }
    }

    // inner(offsets, n, inner_strides): process n elements starting at
    // offsets[k] with steps inner_strides[k].
    template <class F> void run(std::array<int64_t, N> base, F&& inner) const {
        int64_t nd = (int64_t)shape.size();
        for (int64_t d = 0; d < nd; ++d)
            if (shape[d] == 0) return;
        std::array<int64_t, N> in_st;
        for (int k = 0; k < N; ++k) in_st[k] = strides[k][nd - 1];
        int64_t n_inner = shape[nd - 1];
        if (nd == 1) { inner(base, n_inner, in_st); return; }
        std::vector<int64_t> idx(nd - 1, 0);
        std::array<int64_t, N> off = base;
        while (true) {
            inner(off, n_inner, in_st);
            int64_t d = nd - 2;
            for (; d >= 0; --d) {
                if (++idx[d] < shape[d]) {
                    for (int k = 0; k < N; ++k) off[k] += strides[k][d];
                    break;
                }
                for (int k = 0; k < N; ++k) off[k] -= strides[k][d] * (shape[d] - 1);
                idx[d] = 0;
            }
            if (d < 0) return;
        }
    }
};

// Strides of `st`/`sh` aligned to a broadcast shape `out` (0 where broadcast).
inline Shape broadcast_strides(const Shape& sh, const Shape& st, const Shape& out) {
    Shape r(out.size(), 0);
    size_t lead = out.size() - sh.size();
    for (size_t i = 0; i < sh.size(); ++i) r[lead + i] = sh[i] == 1 ? 0 : st[i];
    return r;
}

}  // namespace miras::detail
