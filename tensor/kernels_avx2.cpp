// The kernel loops for CPUs with AVX2 and FMA, built -O3 -mavx2 -mfma
// (Makefile); used only when the CPU has both. See tensor/kernels.h.
#define MIRAS_KERNEL_ISA avx2
#include "tensor/kernel_loops.h"
