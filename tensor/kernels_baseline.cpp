// The kernel loops for baseline x86-64, built -O3 (Makefile). See tensor/kernels.h.
#define MIRAS_KERNEL_ISA baseline
#include "tensor/kernel_loops.h"
