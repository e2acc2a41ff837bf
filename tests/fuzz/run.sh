#!/bin/sh
# Runs one libFuzzer harness of tests/fuzz/ (build them first: make fuzz).
#
#   tests/fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags...]
#
# TARGET is safetensors, checkpoint, tensor_file, config or byte_corpus;
# SECONDS defaults to 300. The corpus grows in build/fuzz/corpus/TARGET,
# seeded with valid files written by build/fuzz/make_seeds; a crash, leak,
# sanitizer report, hang (> 10 s on one input) or allocation above 2 GB
# stops the run and leaves the input as build/fuzz/crash-* (or leak-,
# timeout-, oom-). Replay one with: build/fuzz/fuzz_TARGET FILE
set -eu
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { sed -n '2,12p' "$0"; exit 2; }
target=$1
seconds=${2:-300}
[ $# -ge 2 ] && shift 2 || shift 1
bin=build/fuzz/fuzz_$target
[ -x "$bin" ] || { echo "error: $bin missing; run make fuzz" >&2; exit 1; }
corpus=build/fuzz/corpus/$target
seeds=build/fuzz/seeds
[ -d "$seeds/$target" ] || build/fuzz/make_seeds "$seeds"
mkdir -p "$corpus"
# The harnesses' dictionaries, where one exists, hold the format's tokens.
dict=""
[ -f "tests/fuzz/$target.dict" ] && dict="-dict=tests/fuzz/$target.dict"
# nice: a background job. One BLAS thread: the models are tiny, and a second
# thread only competes with the fuzzer for the core.
export OPENBLAS_NUM_THREADS=1
exec nice -n 10 "$bin" "$corpus" "$seeds/$target" $dict -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=65536 -artifact_prefix=build/fuzz/ -print_final_stats=1 "$@"
