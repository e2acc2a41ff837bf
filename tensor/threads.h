#pragma once
// The number of threads of the BLAS (OpenBLAS) behind raw::matmul: the only
// multi-threaded part of the framework (the elementwise and reduction kernels
// run on the calling thread).
//
// Why the framework sets it instead of leaving OpenBLAS's default (one thread
// per core, or OPENBLAS_NUM_THREADS): the matrices of the models here are
// small, e.g. (B·T, d) @ (d, d) = (1024, 64) @ (64, 64), where a second
// thread mostly spins waiting for work. And OpenBLAS does not round a GEMM
// split over threads as it does with one: with its Haswell kernels about one
// f32 element in six of that product changes in the last bits between 1 and
// 2 threads (f64 agreed). Results (losses, the accuracy a training run ends
// at) would depend on the core count of the machine.
//
//   set_blas_threads(1);           // every later GEMM of the process, 1 thread
//   int n = blas_threads();        // 1
//   {
//       BlasThreadsScope two(2);   // 2 threads inside this scope ...
//   }                              // ... and the previous count again after it
//
// The setting is process-wide (OpenBLAS keeps one pool), not per thread, and
// it overrides OPENBLAS_NUM_THREADS, which OpenBLAS reads once at start-up.
// Not for use while another thread of the process runs a matmul.

namespace miras {

// Sets the BLAS thread count of every later matmul; n must be >= 1, else
// std::invalid_argument naming n. OpenBLAS caps n at the count it was built
// for (64 in Debian's package); returns the count in effect afterwards.
int set_blas_threads(int n);

// The BLAS thread count in effect.
int blas_threads();

// Sets the count for the lifetime of the scope and restores the previous one
// at its end (also when an exception leaves the scope).
class BlasThreadsScope {
public:
    explicit BlasThreadsScope(int n);
    ~BlasThreadsScope();
    BlasThreadsScope(const BlasThreadsScope&) = delete;
    BlasThreadsScope& operator=(const BlasThreadsScope&) = delete;

private:
    int previous_;
};

}  // namespace miras
