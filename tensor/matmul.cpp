// Batched matrix multiply through OpenBLAS. Transposed views are handed to
// BLAS as transposes (no copy); only layouts BLAS cannot express (e.g. a
// broadcast row) are copied first.
#include <cblas.h>

#include <atomic>
#include <stdexcept>

#include "tensor/ops.h"

namespace miras::raw {
namespace {

// Floating-point operations handed to BLAS so far (2·M·N·K per GEMM); read by
// the benchmarks to set measured time against the work a step must do.
std::atomic<uint64_t> g_matmul_flops{0};

// How a 2-D view (rows r, cols c, strides s0, s1) can be passed to BLAS.
struct BlasView {
    bool ok = false;
    bool trans = false;
    int64_t ld = 0;
};

BlasView blas_view(int64_t r, int64_t c, int64_t s0, int64_t s1) {
    BlasView v;
    if ((s1 == 1 || c == 1) && s0 >= std::max<int64_t>(1, c)) { v.ok = true; v.ld = s0; return v; }
    if ((s0 == 1 || r == 1) && s1 >= std::max<int64_t>(1, r)) { v.ok = true; v.trans = true; v.ld = s1; return v; }
    return v;
}

template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
          int64_t ldc) {
    g_matmul_flops.fetch_add(2 * (uint64_t)M * (uint64_t)N * (uint64_t)K, std::memory_order_relaxed);
    auto TA = ta ? CblasTrans : CblasNoTrans;
    auto TB = tb ? CblasTrans : CblasNoTrans;
    if constexpr (std::is_same_v<T, float>)
        cblas_sgemm(CblasRowMajor, TA, TB, (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, 0.0f, C, (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, TA, TB, (int)M, (int)N, (int)K, 1.0, A, (int)lda, B, (int)ldb, 0.0, C, (int)ldc);
}

// The (k, m) matrix of a b whose batch dims are all broadcast (stride 0).
Tensor select_first_batch(const Tensor& b, int64_t nb) {
    Tensor r = b;
    for (int64_t i = 0; i < nb; ++i) r = select(r, 0, 0);
    return r;
}

}  // namespace

uint64_t matmul_flops() { return g_matmul_flops.load(std::memory_order_relaxed); }

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
    if (a_in.dim() == 0 || b_in.dim() == 0)
        throw std::invalid_argument("matmul: both operands need at least 1 dim, got " + shape_str(a_in.shape()) +
                                    " and " + shape_str(b_in.shape()));
    if (a_in.dtype() != b_in.dtype())
        throw std::invalid_argument(std::string("matmul: dtype mismatch, ") + dtype_name(a_in.dtype()) + " vs " +
                                    dtype_name(b_in.dtype()));
    // NumPy rules for vectors: promote, multiply, then drop the added dim.
    if (a_in.dim() == 1) return squeeze(matmul(unsqueeze(a_in, 0), b_in), b_in.dim() == 1 ? -1 : -2);
    if (b_in.dim() == 1) return squeeze(matmul(a_in, unsqueeze(b_in, 1)), -1);

    int64_t n = a_in.size(-2), k = a_in.size(-1), k2 = b_in.size(-2), m = b_in.size(-1);
    if (k != k2)
        throw std::invalid_argument("matmul: inner dimensions differ: " + shape_str(a_in.shape()) + " @ " +
                                    shape_str(b_in.shape()));
    Shape ab(a_in.shape().begin(), a_in.shape().end() - 2), bb(b_in.shape().begin(), b_in.shape().end() - 2);
    Shape batch = broadcast_shapes(ab, bb, "matmul (batch dims)");
    Shape out_shape = batch;
    out_shape.push_back(n);
    out_shape.push_back(m);
    if (k == 0) return zeros(out_shape, a_in.dtype());
    Tensor out = Tensor::empty(out_shape, a_in.dtype());
    if (out.numel() == 0) return out;

    Shape ashape = batch, bshape = batch;
    ashape.insert(ashape.end(), {n, k});
    bshape.insert(bshape.end(), {k, m});
    Tensor a = expand(a_in, ashape), b = expand(b_in, bshape);
    int64_t nb = (int64_t)batch.size();
    int64_t nbatch = numel_of(batch);

    dispatch(a.dtype(), [&]<class T>() {
        // Fast path: b shared by every batch and a contiguous -> one big GEMM
        // with the batch folded into the rows (Linear layers on (B, T, d)).
        bool b_shared = true;
        for (int64_t i = 0; i < nb; ++i) if (b.strides()[i] != 0 && batch[i] != 1) b_shared = false;
        if (b_shared && nbatch > 1 && a.is_contiguous()) {
            Tensor b2 = select_first_batch(b, nb);
            BlasView vb = blas_view(k, m, b2.strides()[0], b2.strides()[1]);
            if (!vb.ok) { b2 = contiguous(b2); vb = blas_view(k, m, m, 1); }
            gemm<T>(false, vb.trans, nbatch * n, m, k, a.data<T>(), k, b2.data<T>(), vb.ld, out.data<T>(), m);
            return;
        }
        Tensor ac = a, bc = b;
        BlasView va = blas_view(n, k, a.strides()[nb], a.strides()[nb + 1]);
        if (!va.ok) { ac = contiguous(a); va = blas_view(n, k, k, 1); }
        BlasView vb = blas_view(k, m, b.strides()[nb], b.strides()[nb + 1]);
        if (!vb.ok) { bc = contiguous(b); vb = blas_view(k, m, m, 1); }
        const T* pa = ac.data<T>();
        const T* pb = bc.data<T>();
        T* po = out.data<T>();
        std::vector<int64_t> idx(nb, 0);
        for (int64_t bi = 0; bi < nbatch; ++bi) {
            int64_t oa = 0, ob = 0;
            for (int64_t d = 0; d < nb; ++d) { oa += idx[d] * ac.strides()[d]; ob += idx[d] * bc.strides()[d]; }
            gemm<T>(va.trans, vb.trans, n, m, k, pa + oa, va.ld, pb + ob, vb.ld, po + bi * n * m, m);
            for (int64_t d = nb - 1; d >= 0; --d) {
                if (++idx[d] < batch[d]) break;
                idx[d] = 0;
            }
        }
    });
    return out;
}

}  // namespace miras::raw
