# arenagpt build. Objects go to build/<variant>/, header dependencies tracked (-MMD -MP).
#   make            the arenagpt binary (CUDA backend compiled in when nvcc is found; CUDA=0 leaves it out)
#   make test       set-up check, CPU unit tests (cmocka), CLI tests; also compiles the CUDA sources
#   make test-gpu   CUDA backend against the CPU reference (needs a GPU)
#   make asan       ASan+UBSan build and run of the CPU tests
#   make format-check, make bench, make run, make clean
# Sources are found by wildcard: a new alloc/ data/ model/ train/ .c file or tests/test_*.c
# needs no Makefile change. Built without CUDA, files named *_nocuda.c stand in for the CUDA
# units (the one mechanism: no weak symbols); the CPU tests always link them. model/cuda/*.c
# and *.cu are compiled only with CUDA. cuDNN is not linked: code that uses it loads it with
# dlopen, so a machine with CUDA but without cuDNN builds and runs.

SHELL := /bin/bash
CC ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif

NVCC ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
ifeq ($(strip $(NVCC)),)
CUDA ?= 0
else
CUDA ?= 1
endif
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))

BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)

# Test data, fetched by make test's set-up (scripts/setup.sh) when missing. After the set-up
# has run, a test whose data is missing fails (it skips, with the reason, only before).
#   VOCAB_DIR    the GPT-2 vocabulary (encoder.json, vocab.bpe)
#   SHAKESPEARE  the tinyshakespeare text (1,115,394 bytes)
VOCAB_DIR ?= .cache/gpt2
SHAKESPEARE ?= .cache/tinyshakespeare.txt
TEST_DATA_ENV = ARENAGPT_VOCAB_DIR=$(abspath $(VOCAB_DIR)) ARENAGPT_SHAKESPEARE=$(abspath $(SHAKESPEARE)) \
  ARENAGPT_REQUIRE_DATA=$$(test -e build/.setup-ok && echo 1 || echo 0)

WARN := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2
BASE_CFLAGS := -std=gnu11 $(WARN) -fopenmp -g -MMD -MP -I. $(BLAS_CFLAGS)
LDLIBS := $(BLAS_LIBS) -lpcre2-8 -lm -fopenmp
TEST_LDLIBS := -lcmocka

# variant flags (never -Ofast / -ffast-math: the tests rely on NaN comparisons)
release_CFLAGS := -O3 -march=native
asan_CFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
asan_LDFLAGS := -fsanitize=address,undefined

GENCODE := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
           -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 \
           -gencode arch=compute_90,code=compute_90
NVCC_FLAGS := -O3 -std=c++17 $(GENCODE) -I. -MMD -MP -lineinfo -Xcompiler -Wall,-Wno-unused-parameter
CUDA_CFLAGS := -I$(CUDA_HOME)/include
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -ldl -lstdc++

ALL_C := $(wildcard alloc/*.c data/*.c model/*.c model/cpu/*.c train/*.c)
NOCUDA_C := $(filter %_nocuda.c,$(ALL_C))
MAIN_C := train/main.c
LIB_C := $(filter-out $(NOCUDA_C) $(MAIN_C),$(ALL_C))
CUDA_C := $(wildcard model/cuda/*.c)
CU := $(wildcard alloc/*.cu model/cuda/*.cu)
TEST_C := $(filter-out tests/test_util.c,$(wildcard tests/test_*.c))
TEST_HELPER_C := $(filter-out $(TEST_C),$(wildcard tests/*.c))
GPU_TEST_C := $(wildcard tests/gpu/test_*.c)

obj = $(patsubst %.c,build/$(1)/%.o,$(2))
cuobj = $(patsubst %.cu,build/cuda/%.o,$(1))

R := build/release
LIB_OBJ := $(call obj,release,$(LIB_C))
NOCUDA_OBJ := $(call obj,release,$(NOCUDA_C))
MAIN_OBJ := $(call obj,release,$(MAIN_C))
CUDA_C_OBJ := $(patsubst %.c,build/cuda/%.o,$(CUDA_C))
CU_OBJ := $(call cuobj,$(CU))
TEST_HELPER_OBJ := $(call obj,release,$(TEST_HELPER_C))
TEST_BIN := $(patsubst tests/%.c,$(R)/tests/%,$(TEST_C))

ifeq ($(CUDA),1)
BACKEND_OBJ := $(CUDA_C_OBJ) $(CU_OBJ)
BACKEND_LIBS := $(CUDA_LIBS)
else
BACKEND_OBJ := $(NOCUDA_OBJ)
BACKEND_LIBS :=
endif

.PHONY: all test test-unit test-cli test-gpu asan format format-check bench run setup clean cuda
.DEFAULT_GOAL := all
.SECONDARY:

all: arenagpt

arenagpt: $(LIB_OBJ) $(MAIN_OBJ) $(BACKEND_OBJ)
	$(CC) -o $@ $^ $(LDLIBS) $(BACKEND_LIBS)

# CUDA objects alone (what CI compiles to catch a broken CUDA build)
cuda: $(CUDA_C_OBJ) $(CU_OBJ)

build/release/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(release_CFLAGS) -c $< -o $@

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(asan_CFLAGS) -c $< -o $@

build/cuda/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(release_CFLAGS) $(CUDA_CFLAGS) -c $< -o $@

build/cuda/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

$(R)/tests/%: $(R)/tests/%.o $(LIB_OBJ) $(NOCUDA_OBJ) $(TEST_HELPER_OBJ)
	$(CC) -o $@ $^ $(LDLIBS) $(TEST_LDLIBS)

build/.setup-ok: scripts/setup.sh scripts/fetch_vocab.sh scripts/fetch_shakespeare.sh
	VOCAB_DIR=$(VOCAB_DIR) SHAKESPEARE=$(SHAKESPEARE) bash scripts/setup.sh
	@mkdir -p build && touch $@

setup: build/.setup-ok

test: build/.setup-ok
	$(MAKE) test-unit
	$(MAKE) test-cli
ifeq ($(CUDA),1)
	$(MAKE) cuda
	@echo "CUDA sources compiled ($(words $(CU_OBJ) $(CUDA_C_OBJ)) objects, sm_80/86/89/90)"
endif
	bash scripts/check_no_malloc.sh

test-unit: $(TEST_BIN)
	@fail=0; for t in $(TEST_BIN); do echo "== $$t"; ARENAGPT_ROOT=$(CURDIR) $(TEST_DATA_ENV) ./$$t || fail=1; done; exit $$fail

test-cli: arenagpt
	@fail=0; for t in tests/cli_*.sh; do [ -e "$$t" ] || continue; echo "== $$t"; $(TEST_DATA_ENV) bash $$t ./arenagpt || fail=1; done; exit $$fail

A := build/asan
ASAN_BIN := $(patsubst tests/%.c,$(A)/tests/%,$(TEST_C))
$(A)/tests/%: $(A)/tests/%.o $(call obj,asan,$(LIB_C)) $(call obj,asan,$(NOCUDA_C)) $(call obj,asan,$(TEST_HELPER_C))
	$(CC) $(asan_LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LDLIBS)

asan: build/.setup-ok $(ASAN_BIN)
	@fail=0; for t in $(ASAN_BIN); do echo "== $$t"; ARENAGPT_ROOT=$(CURDIR) ARENAGPT_SLOW_TESTS=0 $(TEST_DATA_ENV) \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$$t || fail=1; done; exit $$fail

GPU_TEST_BIN := $(patsubst tests/gpu/%.c,build/cuda/tests/gpu/%,$(GPU_TEST_C))
build/cuda/tests/gpu/%: build/cuda/tests/gpu/%.o $(LIB_OBJ) $(CUDA_C_OBJ) $(CU_OBJ) $(TEST_HELPER_OBJ)
	$(CC) -o $@ $^ $(LDLIBS) $(TEST_LDLIBS) $(CUDA_LIBS)

test-gpu: $(GPU_TEST_BIN)
	@fail=0; for t in $(GPU_TEST_BIN); do echo "== $$t"; ARENAGPT_ROOT=$(CURDIR) ./$$t || fail=1; done; exit $$fail

FORMAT_SRC = $(shell git ls-files '*.c' '*.h' '*.cu' '*.cuh' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC) && echo "format-check: $(words $(FORMAT_SRC)) files clean"

bench: arenagpt
	bash scripts/bench.sh

run: build/.setup-ok arenagpt
	bash scripts/run.sh

clean:
	rm -rf build arenagpt

-include $(shell find build -name '*.d' 2>/dev/null)
