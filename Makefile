# Build, test and run. `make help` lists the targets.
#   make            library + CLI into build/
#   make test       install missing packages, build, run the whole test suite
#   make run        install missing packages, build, run the main job
#   make bench      benchmarks (ratios against OpenBLAS and, if present, PyTorch)
#   SANITIZE=1      any of the above with ASan + UBSan, in build/san/
#   make fuzz       libFuzzer harnesses of the file readers (clang), in build/fuzz/

CXX      ?= g++
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
BLAS_INC := /usr/include/x86_64-linux-gnu/openblas-pthread
CPPFLAGS := -I. -I$(BLAS_INC) -MMD -MP -DBOOST_TEST_DYN_LINK

CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Wno-unused-parameter
LDLIBS   := -lopenblas -lpthread -lcrypto

ifeq ($(SANITIZE),1)
BUILD    := build/san
# -O1 -g1 (line tables): what ASan recommends, and it compiles the suite about
# twice as fast as -O2 -g, which is most of CI's time; reports keep file:line.
CXXFLAGS := $(filter-out -O2 -g,$(CXXFLAGS)) -O1 -g1
CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
else
BUILD    := build
endif

PACKAGES := libopenblas-dev libboost-test-dev libtoml11-dev libcli11-dev nlohmann-json3-dev libssl-dev

LIB_SRC   := $(wildcard tensor/*.cpp autograd/*.cpp nn/*.cpp miras/*.cpp) $(filter-out train/main.cpp,$(wildcard train/*.cpp))
TEST_SRC  := $(wildcard tests/*.cpp)
BENCH_SRC := $(wildcard tests/bench/*.cpp)
LIB_OBJ   := $(LIB_SRC:%.cpp=$(BUILD)/obj/%.o)
TEST_OBJ  := $(TEST_SRC:%.cpp=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libmiras.a
CLI       := $(BUILD)/miras
TESTS     := $(BUILD)/run_tests
BENCHES   := $(BENCH_SRC:tests/bench/%.cpp=$(BUILD)/bench/%)

.PHONY: all deps test run bench clean help build-tests fuzz
# Keep the benchmarks' object files, which are only intermediates of a link.
# Only those: a bare .SECONDARY: makes every target secondary, and then a new
# library source older than the archive (e.g. from a patch) is never compiled.
.SECONDARY: $(BENCH_SRC:%.cpp=$(BUILD)/obj/%.o)
.DEFAULT_GOAL := all

all: $(LIB) $(CLI)

help:
	@sed -n '1,8p' Makefile

# Installs the Debian packages that are missing: apt-get as root, sudo
# otherwise, and a clear message when neither is possible.
deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "error: packages missing ($$missing) and neither root nor passwordless sudo is available;"; \
	       echo "       install them with: sudo apt-get install$$missing"; exit 1; fi; \
	fi

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

# The kernel loops (tensor/kernels.h: elementwise, sums, the depthwise
# convolution): -O3 (GCC's -O2 leaves them scalar), and one copy for AVX2 +
# FMA, used only on CPUs that have both. errno is never read, so sqrt and
# friends need not set it, and FP exception flags are never tested, so
# comparisons may be if-converted (both let the loops vectorise).
KERNEL_FLAGS := -O3 -fno-math-errno -fno-trapping-math
$(BUILD)/obj/tensor/kernels_baseline.o: CXXFLAGS += $(KERNEL_FLAGS)
$(BUILD)/obj/tensor/kernels_avx2.o: CXXFLAGS += $(KERNEL_FLAGS) -mavx2 -mfma

# Test code is compiled without optimisation: it is assertion macros around
# calls into the library, which keeps its -O2 (-O1 with SANITIZE). Optimising
# the tests took 185 of the 303 CPU-seconds of a build, more under ASan;
# at -O0 .ci/run from a fresh clone takes 5.2 min instead of 7.6 on 2 cores
# (the ASan test run itself grows from 41 to 49 s).
$(TEST_OBJ): CXXFLAGS += -O0

# Where the presets are found when the program runs outside the repository:
# this folder as a C string literal (\ and " escaped), single-quoted for the
# shell (' escaped), so any folder name works.
c_string    = "$(subst ",\",$(subst \,\\,$(1)))"
shell_quote = '$(subst ','\'',$(1))'
SOURCE_DIR_FLAG := -DMIRAS_SOURCE_DIR=$(call shell_quote,$(call c_string,$(CURDIR)))
$(BUILD)/obj/train/model_config.o: CPPFLAGS += $(SOURCE_DIR_FLAG)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(CLI): $(BUILD)/obj/train/main.o $(LIB)
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(TESTS): $(TEST_OBJ) $(LIB)
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -lboost_unit_test_framework -o $@

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

build-tests: $(TESTS)

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build-tests
	$(TESTS) --report_level=short

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	$(CLI) train

bench: deps
	@$(MAKE) --no-print-directory -j$(JOBS) $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

# Coverage-guided fuzzing of every reader of outside input (tests/fuzz/):
# clang's libFuzzer with ASan + UBSan. The library is compiled a third time,
# with coverage instrumentation, into build/fuzz/; tests/fuzz/run.sh seeds
# the corpora and runs the harnesses (docs/training.md).
FUZZ_CXX      ?= clang++
FUZZ_BUILD    := build/fuzz
FUZZ_CXXFLAGS := -std=c++20 -O1 -g -Wall -Wextra -Wno-unused-parameter -fno-omit-frame-pointer \
                 -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_SRC      := $(wildcard tests/fuzz/fuzz_*.cpp)
FUZZ_LIB_OBJ  := $(LIB_SRC:%.cpp=$(FUZZ_BUILD)/obj/%.o)
FUZZ_BINS     := $(FUZZ_SRC:tests/fuzz/%.cpp=$(FUZZ_BUILD)/%) $(FUZZ_BUILD)/make_seeds
.SECONDARY: $(FUZZ_SRC:%.cpp=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(CPPFLAGS) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/obj/tensor/kernels_baseline.o: FUZZ_CXXFLAGS += $(KERNEL_FLAGS)
$(FUZZ_BUILD)/obj/tensor/kernels_avx2.o: FUZZ_CXXFLAGS += $(KERNEL_FLAGS) -mavx2 -mfma
$(FUZZ_BUILD)/obj/train/model_config.o: CPPFLAGS += $(SOURCE_DIR_FLAG)

$(FUZZ_BUILD)/libmiras.a: $(FUZZ_LIB_OBJ)
	$(AR) rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libmiras.a
	$(FUZZ_CXX) -fsanitize=fuzzer,address,undefined $^ $(LDLIBS) -o $@

# Writes valid files of every format to seed the corpora; no libFuzzer main.
$(FUZZ_BUILD)/make_seeds: $(FUZZ_BUILD)/obj/tests/fuzz/make_seeds.o $(FUZZ_BUILD)/libmiras.a
	$(FUZZ_CXX) -fsanitize=fuzzer-no-link,address,undefined $^ $(LDLIBS) -o $@

fuzz:
	@$(MAKE) --no-print-directory -j$(JOBS) $(FUZZ_BINS)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/obj/train/main.d $(BENCH_SRC:%.cpp=$(BUILD)/obj/%.d)
-include $(wildcard $(FUZZ_BUILD)/obj/*/*.d $(FUZZ_BUILD)/obj/tests/fuzz/*.d)
