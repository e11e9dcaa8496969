# arenagpt build. Objects go to build/<variant>/, header dependencies tracked (-MMD -MP).
#   make            the arenagpt binary (CUDA backend compiled in when nvcc is found; CUDA=0 leaves it out)
#   make test       set-up check, CPU unit tests (cmocka), CLI tests; also compiles the CUDA sources
#   make test-gpu   CUDA backend against the CPU reference (needs a GPU)
#   make test-sim   the same CUDA sources on the CPU simulator of CUDA (tests/cudasim/), ASan on,
#                   with the fault-injection check (make sim-faults)
#   make kernel-audit  registers, shared memory and spills of every kernel (sm_89, sm_90), fails
#                   on an unexplained spill; docs/results/kernel_audit.md (part of make test)
#   make test-cublas-sim  the CUDA simulator's host cuBLASLt/cuBLAS against a double reference
#   make asan       ASan+UBSan build and run of the CPU tests
#   make test-browser  the memory page in headless Chromium (part of make test; BROWSER=0 skips)
#   make fuzz       libFuzzer targets (tests/fuzz/, clang) for FUZZ_SECONDS each (default 60)
#   make reliability  the fault injection runs (scripts/reliability.sh) and valgrind
#   make gpu-bundle  build/gpu-bundle/: what a GPU machine without Debian's -dev packages needs
#                   (binaries, prepared data, configs, the check script); make gpu-check runs it
#   make bench      CPU step against PyTorch, tokenizer speed; make bench-smoke: each benchmark
#                   script at its smallest size (seconds; part of make test-cli)
#   make format-check, make run, make clean
# Sources are found by wildcard: a new alloc/ data/ model/ train/ .c file or tests/test_*.c
# needs no Makefile change. Built without CUDA, model/device_nocuda.c stands in for the CUDA
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
# cJSON (Debian libcjson-dev): the one JSON reader (encoder.json, safetensors headers,
# config.json, the nanoGPT memory file, the tests); sources include <cjson/cJSON.h>
JSON_LIBS := $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson)

# Test data, fetched by make test's set-up (scripts/setup.sh) when missing. After the set-up
# has run, a test whose data is missing fails (it skips, with the reason, only before).
#   VOCAB_DIR    the GPT-2 vocabulary (encoder.json, vocab.bpe)
#   SHAKESPEARE  the tinyshakespeare text (1,115,394 bytes)
VOCAB_DIR ?= .cache/gpt2
SHAKESPEARE ?= .cache/tinyshakespeare.txt
TEST_DATA_ENV = ARENAGPT_VOCAB_DIR=$(abspath $(VOCAB_DIR)) ARENAGPT_SHAKESPEARE=$(abspath $(SHAKESPEARE)) \
  ARENAGPT_REQUIRE_DATA=$$(test -e build/.setup-ok && echo 1 || echo 0)

# prepare's corpus reading: cJSON (JSON Lines, with JSON_LIBS above), zlib (.gz), libzstd (.zst)
CORPUS_CFLAGS := $(shell pkg-config --cflags libcjson 2>/dev/null || echo -I/usr/include/cjson)
CORPUS_LIBS := $(shell pkg-config --libs zlib libzstd 2>/dev/null || echo -lz -lzstd)

WARN := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2
BASE_CFLAGS := -std=gnu11 $(WARN) -Werror=implicit-function-declaration -fopenmp -g -MMD -MP -I. $(BLAS_CFLAGS) $(CORPUS_CFLAGS)
LDLIBS := $(BLAS_LIBS) -lpcre2-8 $(JSON_LIBS) $(CORPUS_LIBS) -lm -fopenmp
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

# The ranks (train/dist.h): Open MPI where pkg-config finds it (scripts/setup.sh installs
# openmpi-bin and libopenmpi-dev), else the one-rank stand-in train/dist_nompi.c; MPI=0 forces
# the stand-in. The GPU bundle always takes the stand-in (its machines may lack MPI).
MPI ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
DIST_MPI_C := train/dist_mpi.c
DIST_NOMPI_C := train/dist_nompi.c
ifeq ($(MPI),1)
DIST_C := $(DIST_MPI_C)
BASE_CFLAGS += $(shell pkg-config --cflags ompi-c)
LDLIBS += $(shell pkg-config --libs ompi-c)
else
DIST_C := $(DIST_NOMPI_C)
endif
ALL_C := $(filter-out $(DIST_MPI_C) $(DIST_NOMPI_C),$(wildcard alloc/*.c data/*.c model/*.c model/cpu/*.c train/*.c)) $(DIST_C)
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

.PHONY: all test test-unit test-cli test-browser test-gpu test-sim sim sim-faults asan fuzz \
        fuzz-build reliability format format-check bench bench-smoke run setup clean cuda gpu-bundle \
        gpu-bundle-test gpu-check
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

# the memory page's template is built into mem_html.o (.incbin)
build/release/train/mem_html.o build/asan/train/mem_html.o: train/mem_page.html

$(R)/tests/%: $(R)/tests/%.o $(LIB_OBJ) $(NOCUDA_OBJ) $(TEST_HELPER_OBJ)
	$(CC) -o $@ $^ $(LDLIBS) $(TEST_LDLIBS)

# optimizer_offload's CPU AdamW benchmark (scripts/bench_offload.sh; its smoke: tests/cli_bench_offload.sh)
$(R)/bench_offload: $(R)/scripts/bench_offload.o $(LIB_OBJ) $(NOCUDA_OBJ)
	$(CC) -o $@ $^ $(LDLIBS)

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
	$(MAKE) kernel-audit
	$(MAKE) test-sim
	$(MAKE) gpu-bundle-test
endif
	$(MAKE) test-cublas-sim
	bash scripts/check_no_malloc.sh
ifneq ($(BROWSER),0)
	$(MAKE) test-browser
endif

test-unit: $(TEST_BIN)
	@fail=0; for t in $(TEST_BIN); do echo "== $$t"; ARENAGPT_ROOT=$(CURDIR) $(TEST_DATA_ENV) ./$$t || fail=1; done; exit $$fail

test-cli: arenagpt $(BENCH_STEP)
	@fail=0; for t in tests/cli_*.sh; do [ -e "$$t" ] || continue; echo "== $$t"; $(TEST_DATA_ENV) bash $$t ./arenagpt || fail=1; done; exit $$fail

# the memory page in Debian's chromium, driven by playwright-core (scripts/setup.sh --browser)
build/.setup-browser-ok: scripts/setup.sh tests/browser/package-lock.json
	bash scripts/setup.sh --browser
	@mkdir -p build && touch $@

test-browser: build/.setup-browser-ok arenagpt
	node tests/browser/memory_page.mjs ./arenagpt build/browser/memory_page.png

A := build/asan
ASAN_BIN := $(patsubst tests/%.c,$(A)/tests/%,$(TEST_C))
$(A)/tests/%: $(A)/tests/%.o $(call obj,asan,$(LIB_C)) $(call obj,asan,$(NOCUDA_C)) $(call obj,asan,$(TEST_HELPER_C))
	$(CC) $(asan_LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LDLIBS)

asan: build/.setup-ok $(ASAN_BIN)
	@fail=0; for t in $(ASAN_BIN); do echo "== $$t"; ARENAGPT_ROOT=$(CURDIR) ARENAGPT_SLOW_TESTS=0 $(TEST_DATA_ENV) \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$$t || fail=1; done; exit $$fail

# the CLI under ASan+UBSan (the out-of-memory fault runs: LeakSanitizer checks that a refused
# allocation frees everything)
$(A)/arenagpt: $(call obj,asan,$(LIB_C) $(MAIN_C) $(NOCUDA_C))
	$(CC) $(asan_LDFLAGS) -o $@ $^ $(LDLIBS)

# the CLI for valgrind: -O1, no -march=native (valgrind does not decode every extension)
V := build/valgrind
valgrind_CFLAGS := -O1
build/valgrind/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(valgrind_CFLAGS) -c $< -o $@
$(V)/arenagpt: $(call obj,valgrind,$(LIB_C) $(MAIN_C) $(NOCUDA_C))
	$(CC) -o $@ $^ $(LDLIBS)

# fault injection (scripts/reliability.sh): the LD_PRELOAD shim that fails file I/O
build/faults/fail_io.so: tests/faults/fail_io.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O1 -g -shared -fPIC -o $@ $< -ldl

reliability: build/.setup-ok arenagpt $(A)/arenagpt $(V)/arenagpt build/faults/fail_io.so
	$(TEST_DATA_ENV) bash scripts/reliability.sh

GPU_TEST_BIN := $(patsubst tests/gpu/%.c,build/cuda/tests/gpu/%,$(GPU_TEST_C))
build/cuda/tests/gpu/%: build/cuda/tests/gpu/%.o $(LIB_OBJ) $(CUDA_C_OBJ) $(CU_OBJ) $(TEST_HELPER_OBJ)
	$(CC) -o $@ $^ $(LDLIBS) $(TEST_LDLIBS) $(CUDA_LIBS)

test-gpu: $(GPU_TEST_BIN)
	@fail=0; for t in $(GPU_TEST_BIN); do echo "== $$t"; ARENAGPT_ROOT=$(CURDIR) ./$$t || fail=1; done; exit $$fail

# libFuzzer targets: every library object rebuilt by clang with ASan+UBSan and fuzzer
# instrumentation in build/fuzz/; one binary per tests/fuzz/fuzz_*.c (the other .c files
# there are shared helpers). scripts/fuzz.sh runs each on its committed seed corpus.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
fuzz_CFLAGS := -std=gnu11 $(WARN) -Wno-format-nonliteral -Wno-pass-failed -fopenmp -g -O1 -MMD -MP -I. $(BLAS_CFLAGS) $(CORPUS_CFLAGS) -fno-omit-frame-pointer \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
               -fsanitize-coverage-ignorelist=tests/fuzz/coverage_ignore.txt
FUZZ_TARGET_C := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_MAIN_C := $(filter-out tests/fuzz/fuzz_common.c tests/fuzz/fuzz_model.c,$(FUZZ_TARGET_C))
FUZZ_HELPER_OBJ := $(call obj,fuzz,tests/fuzz/fuzz_common.c tests/fuzz/fuzz_model.c)
# the fuzz targets take the one-rank stand-in: their clang flags carry no MPI include path
FUZZ_LIB_OBJ := $(call obj,fuzz,$(filter-out $(DIST_MPI_C),$(LIB_C)) $(DIST_NOMPI_C) $(NOCUDA_C))
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/bin/%,$(FUZZ_MAIN_C))

build/fuzz/%.o: %.c tests/fuzz/coverage_ignore.txt
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(fuzz_CFLAGS) -c $< -o $@

build/fuzz/bin/%: build/fuzz/tests/fuzz/%.o $(FUZZ_HELPER_OBJ) $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -fopenmp -o $@ $^ $(LDLIBS)

fuzz-build: build/.setup-ok $(FUZZ_BIN)

fuzz: fuzz-build
	$(TEST_DATA_ENV) bash scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

# --- the CUDA simulator (tests/cudasim/): build/sim/ -----------------------------------------
# The same .cu sources compiled by the host C++ compiler against the simulator's headers
# (tests/cudasim/include first, then the toolkit's for its types and cuda_fp16.h), linked with
# the simulator's runtime and host cuBLASLt/cuBLAS, ASan+UBSan on. Never part of ./arenagpt.
SIM := build/sim
SIM_CXX ?= g++
SIM_INC := -Itests/cudasim/include -I$(CUDA_HOME)/include
SIM_CFLAGS := $(BASE_CFLAGS) $(asan_CFLAGS) $(SIM_INC)
SIM_CXXFLAGS := -std=c++17 $(WARN) -Wno-unknown-pragmas -g -MMD -MP -I. $(asan_CFLAGS) $(SIM_INC)
SIM_RT_CC := $(filter-out tests/cudasim/test_%.cc,$(wildcard tests/cudasim/*.cc))
SIM_RT_OBJ := $(patsubst %.cc,$(SIM)/%.o,$(SIM_RT_CC))
SIM_CU_OBJ := $(patsubst %.cu,$(SIM)/%.o,$(CU))
SIM_LIB_OBJ := $(call obj,sim,$(LIB_C) $(CUDA_C))
SIM_BACKEND_OBJ := $(SIM_LIB_OBJ) $(SIM_CU_OBJ) $(SIM_RT_OBJ)
SIM_LDLIBS := $(asan_LDFLAGS) $(LDLIBS) -ldl -lstdc++ -Wl,--export-dynamic-symbol=cudasim_device_range \
              -Wl,--export-dynamic-symbol=cudasim_stream_enqueue
SIM_GPU_TEST_BIN := $(patsubst tests/gpu/%.c,$(SIM)/tests/gpu/%,$(GPU_TEST_C))
SIM_SELF_TEST_BIN := $(SIM)/tests/cudasim/test_cudasim
SIM_ENV = ARENAGPT_ROOT=$(CURDIR) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
          UBSAN_OPTIONS=print_stacktrace=1 $(TEST_DATA_ENV)

$(SIM)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(SIM_CFLAGS) -c $< -o $@

$(SIM)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(SIM_CXX) -x c++ $(SIM_CXXFLAGS) -c $< -o $@

$(SIM)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(SIM_CXX) $(SIM_CXXFLAGS) -c $< -o $@

$(SIM)/arenagpt: $(SIM_BACKEND_OBJ) $(call obj,sim,$(MAIN_C))
	$(SIM_CXX) -o $@ $^ $(SIM_LDLIBS)

# the per-kernel-family timer on the simulated CUDA backend (tests/sim_kernel_times.sh: it runs)
$(SIM)/scripts/kernel_times: $(SIM)/scripts/kernel_times.o $(SIM_BACKEND_OBJ)
	$(SIM_CXX) -o $@ $^ $(SIM_LDLIBS)

$(SIM)/tests/gpu/%: $(SIM)/tests/gpu/%.o $(SIM_BACKEND_OBJ) $(call obj,sim,$(TEST_HELPER_C))
	$(SIM_CXX) -o $@ $^ $(SIM_LDLIBS) $(TEST_LDLIBS)

$(SIM_SELF_TEST_BIN): $(SIM)/tests/cudasim/test_cudasim.o $(SIM_RT_OBJ)
	$(SIM_CXX) -o $@ $^ $(SIM_LDLIBS) $(TEST_LDLIBS)

# the simulator's NCCL (tests/cudasim/nccl/): a stand-in libnccl.so.2 over MPI that the
# simulated binaries' dlopen loads from next to them; built only where MPI is (MPI=1)
SIM_NCCL := $(if $(filter 1,$(MPI)),$(SIM)/libnccl.so.2)
$(SIM)/libnccl.so.2: tests/cudasim/nccl/nccl_sim.cc
	@mkdir -p $(dir $@)
	$(SIM_CXX) -std=c++17 $(WARN) -g -fPIC -shared $(asan_CFLAGS) -I$(CUDA_HOME)/include \
	  $(shell pkg-config --cflags ompi-c) -DOMPI_SKIP_MPICXX=1 -Wl,-soname,libnccl.so.2 $< -o $@ \
	  $(shell pkg-config --libs ompi-c)

# the stand-in's own checks, under mpirun -np 2 (tests/sim_nccl.sh runs it), linked with the
# simulator's runtime (device memory, streams; SIM_LDLIBS exports what the stand-in looks up)
$(SIM)/tests/cudasim/nccl/test_nccl_sim: $(SIM)/tests/cudasim/nccl/test_nccl_sim.o $(SIM_RT_OBJ) \
                                         $(SIM_NCCL)
	$(SIM_CXX) -o $@ $< $(SIM_RT_OBJ) -L$(SIM) -l:libnccl.so.2 -Wl,-rpath,'$$ORIGIN/../../..' \
	  $(SIM_LDLIBS) $(TEST_LDLIBS)

# the backend's GEMMs need the simulator's host cuBLASLt/cuBLAS (tests/cudasim/cublas_sim.cc);
# without it only the simulator's own tests build and run (said, not hidden)
SIM_HAVE_BLAS := $(wildcard tests/cudasim/cublas_sim.cc)
ifeq ($(SIM_HAVE_BLAS),)
sim: $(SIM_SELF_TEST_BIN)

test-sim: build/.setup-ok sim
	@echo "== $(SIM_SELF_TEST_BIN)"; $(SIM_ENV) ./$(SIM_SELF_TEST_BIN) || exit 1; \
	echo "test-sim: tests/cudasim/cublas_sim.cc (the host cuBLAS) is absent: the simulated" \
	  "backend test, tests/sim_*.sh and scripts/sim_faults.sh did not run"

sim-faults:
	@echo "sim-faults: needs tests/cudasim/cublas_sim.cc (the host cuBLAS)"; exit 2
else
sim: $(SIM)/arenagpt $(SIM_GPU_TEST_BIN) $(SIM_SELF_TEST_BIN) $(SIM)/scripts/kernel_times \
     $(SIM_NCCL) $(if $(SIM_NCCL),$(SIM)/tests/cudasim/nccl/test_nccl_sim)

test-sim: build/.setup-ok sim
	@fail=0; for t in $(SIM_SELF_TEST_BIN) $(SIM_GPU_TEST_BIN); do echo "== $$t"; \
	  $(SIM_ENV) ./$$t || fail=1; done; \
	for t in tests/sim_*.sh; do [ -e "$$t" ] || continue; echo "== $$t"; \
	  $(SIM_ENV) bash $$t ./$(SIM)/arenagpt || fail=1; done; \
	echo "== scripts/sim_faults.sh"; bash scripts/sim_faults.sh || fail=1; exit $$fail

# deliberate faults in copies of the kernel sources must each fail the simulated tests
sim-faults: build/.setup-ok sim
	bash scripts/sim_faults.sh
endif

# --- GPU bundle ------------------------------------------------------------------------------
# build/gpu-bundle/ is what a GPU machine needs besides its driver and the CUDA runtime
# libraries (libcudart, libcublas, libcublasLt): it may lack Debian's -dev packages. It holds
# arenagpt and the GPU tests built for any x86-64-v3 CPU (AVX2; -march=native would tie them
# to this machine), PCRE2 linked statically, OpenBLAS linked statically into one bundle-private
# library (lib/libarenagpt_openblas.so, shared by every binary instead of ~25 MB copied into
# each), cmocka's and cJSON's shared libraries in lib/, an $ORIGIN rpath to lib/, the prepared
# tinyshakespeare shards (GPT-2 BPE) and tokenizer files, the configs, gpu_check.sh,
# gpu_probe (device, driver and runtime versions; compute-sanitizer's acceptance test) and
# torch_baseline.py. cuDNN and NVML are never linked (only loaded with dlopen at run time).
# docs/GPU.md says what to carry and what to run.
GB := build/gpu-bundle
GBO := build/bundle
BUNDLE_CFLAGS := -O3 -march=x86-64-v3 -mtune=generic
OPENBLAS_A := $(firstword $(wildcard $(shell pkg-config --variable=libdir openblas 2>/dev/null)/libopenblas.a) \
                $(wildcard /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.a /usr/lib/x86_64-linux-gnu/libopenblas.a))
PCRE2_A := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libpcre2-8.a /usr/lib/libpcre2-8.a))
CMOCKA_SO := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libcmocka.so.0 /usr/lib/libcmocka.so.0))
CJSON_SO := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libcjson.so.1 /usr/lib/libcjson.so.1))
ZLIB_A := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libz.a /usr/lib/libz.a))
ZSTD_A := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libzstd.a /usr/lib/libzstd.a))
BUNDLE_LIBS := -L$(GB)/lib -l:libarenagpt_openblas.so $(PCRE2_A) $(GB)/lib/libcjson.so.1 $(ZSTD_A) $(ZLIB_A) \
               -lm -fopenmp \
               -Wl,-rpath,'$$ORIGIN/lib' -Wl,-rpath,'$$ORIGIN/../lib' \
               -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -ldl -lstdc++
GB_LIB_OBJ := $(call obj,bundle,$(filter-out $(DIST_MPI_C),$(LIB_C)) $(DIST_NOMPI_C) $(MAIN_C))
GB_CUDA_C_OBJ := $(call obj,bundle,$(CUDA_C))
GB_TEST_HELPER_OBJ := $(call obj,bundle,$(TEST_HELPER_C))
GB_GPU_TESTS := $(patsubst tests/gpu/%.c,$(GB)/tests/%,$(GPU_TEST_C))
GB_FILES := $(GB)/arenagpt $(GB_GPU_TESTS) $(GB)/kernel_times $(GB)/gpu_probe $(GB)/gpu_check.sh $(GB)/torch_baseline.py \
            $(GB)/lib/libcmocka.so.0 $(GB)/lib/libcjson.so.1 $(GB)/data/shakespeare_gpt2/train.bin \
            $(patsubst configs/%,$(GB)/configs/%,$(wildcard configs/*.conf))

$(GBO)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(BUNDLE_CFLAGS) $(CUDA_CFLAGS) -c $< -o $@

# only cblas_sgemm and the thread setters are asked for: the archive's other routines stay out
$(GB)/lib/libarenagpt_openblas.so: $(OPENBLAS_A)
	@test -n "$(OPENBLAS_A)" || { echo "gpu-bundle: no static OpenBLAS (libopenblas.a): apt-get install libopenblas-pthread-dev" >&2; exit 1; }
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ -Wl,-soname,libarenagpt_openblas.so -Wl,-u,cblas_sgemm \
	  -Wl,-u,openblas_set_num_threads -Wl,-u,openblas_get_num_threads $(OPENBLAS_A) -lm -lpthread
	strip --strip-unneeded $@

# cJSON has no static library in Debian: its shared one travels in lib/ like cmocka's
$(GB)/lib/libcjson.so.1: $(CJSON_SO)
	@test -n "$(CJSON_SO)" || { echo "gpu-bundle: libcjson.so.1 not found: apt-get install libcjson-dev" >&2; exit 1; }
	@mkdir -p $(dir $@)
	cp $(CJSON_SO) $@

$(GB)/lib/libcmocka.so.0: $(CMOCKA_SO)
	@test -n "$(CMOCKA_SO)" || { echo "gpu-bundle: libcmocka.so.0 not found: apt-get install libcmocka-dev" >&2; exit 1; }
	@mkdir -p $(dir $@)
	cp $(CMOCKA_SO) $@

$(GB)/arenagpt: $(GB_LIB_OBJ) $(GB_CUDA_C_OBJ) $(CU_OBJ) $(GB)/lib/libarenagpt_openblas.so $(GB)/lib/libcjson.so.1
	@test -n "$(PCRE2_A)" || { echo "gpu-bundle: no static PCRE2 (libpcre2-8.a): apt-get install libpcre2-dev" >&2; exit 1; }
	$(CC) -o $@ $(filter %.o,$^) $(BUNDLE_LIBS)

$(GB)/tests/%: $(GBO)/tests/gpu/%.o $(filter-out $(GBO)/train/main.o,$(GB_LIB_OBJ)) $(GB_CUDA_C_OBJ) $(CU_OBJ) \
               $(GB_TEST_HELPER_OBJ) $(GB)/lib/libarenagpt_openblas.so $(GB)/lib/libcmocka.so.0 \
               $(GB)/lib/libcjson.so.1
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(filter %.o,$^) $(BUNDLE_LIBS) $(GB)/lib/libcmocka.so.0

# kernel_times with CUDA-event timing (ARENAGPT_KERNEL_TIMES_EVENTS)
$(GBO)/scripts/kernel_times.o: scripts/kernel_times.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(BUNDLE_CFLAGS) $(CUDA_CFLAGS) -DARENAGPT_KERNEL_TIMES_EVENTS -c $< -o $@

$(GB)/kernel_times: $(GBO)/scripts/kernel_times.o $(filter-out $(GBO)/train/main.o,$(GB_LIB_OBJ)) \
                    $(GB_CUDA_C_OBJ) $(CU_OBJ) $(GB)/lib/libarenagpt_openblas.so
	$(CC) -o $@ $(filter %.o,$^) $(BUNDLE_LIBS)

$(GB)/gpu_probe: scripts/gpu_probe.cu
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(GENCODE) -o $@ $< -Xlinker -rpath -Xlinker $(CUDA_HOME)/lib64 -cudart shared

$(GB)/gpu_check.sh: scripts/gpu_check.sh
	@mkdir -p $(dir $@)
	install -m 755 $< $@
$(GB)/torch_baseline.py: scripts/torch_baseline.py
	@mkdir -p $(dir $@)
	install -m 644 $< $@
$(GB)/configs/%.conf: configs/%.conf
	@mkdir -p $(dir $@)
	install -m 644 $< $@

# tinyshakespeare ($(SHAKESPEARE), fetched by the set-up) with the GPT-2 tokenizer
$(GB)/data/shakespeare_gpt2/train.bin: arenagpt scripts/prepare_shakespeare.sh
	SHAKESPEARE=$(SHAKESPEARE) bash scripts/prepare_shakespeare.sh $(GB)/data/shakespeare_gpt2 \
	  --tokenizer=gpt2 --vocab_dir=$(VOCAB_DIR)

ifeq ($(CUDA),1)
gpu-bundle: $(GB_FILES)
	@{ echo "arenagpt GPU bundle"; \
	   echo "commit: $$(git rev-parse HEAD 2>/dev/null || echo unknown)$$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)')"; \
	   echo "built: $$(date -u +%Y-%m-%dT%H:%M:%SZ) on $$(uname -srm), nvcc $$($(NVCC) --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"; \
	   echo "size: $$(du -sk $(GB) | cut -f1) KiB"; } >$(GB)/MANIFEST.txt
	bash tests/gpu_bundle.sh --check-libs $(GB) >>$(GB)/MANIFEST.txt
	@cat $(GB)/MANIFEST.txt
else
gpu-bundle:
	@echo "gpu-bundle: needs nvcc (the CUDA toolkit, /usr/local/cuda): it builds the CUDA binaries" >&2; exit 1
endif

# the bundle's libraries (ldd) and the check script end to end on the CPU, from a copy of the
# bundle outside the repository (what CI can run of it)
gpu-bundle-test: gpu-bundle
	bash tests/gpu_bundle.sh $(GB)

# the same check on this machine's GPU (results in out/gpu-check/: send summary.md)
GPU_CHECK_OUT ?= out/gpu-check
gpu-check: gpu-bundle
	$(GB)/gpu_check.sh $(GPU_CHECK_OUT) $(GPU_CHECK_GROUP)

# --- the CUDA simulator's cuBLASLt/cuBLAS (tests/cudasim/cublas_sim.cc) ---------------------
# build/sim/libcublas_sim.a is the host stand-in for -lcublasLt -lcublas in simulated builds,
# compiled with ASan+UBSan like them and against the simulator's headers (tests/cudasim/include
# first, then the toolkit's for cuda_fp16.h). `make test-cublas-sim` runs its own test.
CUBLAS_SIM_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                    -fno-sanitize-recover=undefined -Itests/cudasim/include -Itests/cudasim
CUBLAS_SIM_OK := $(wildcard $(CUDA_HOME)/include/cuda_fp16.h)

build/sim/cublas/cublas_sim.o: tests/cudasim/cublas_sim.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 $(WARN) -MMD -MP $(CUBLAS_SIM_FLAGS) -I$(CUDA_HOME)/include -c $< -o $@

build/sim/libcublas_sim.a: build/sim/cublas/cublas_sim.o
	ar rcs $@ $^

build/sim/cublas/test_cublas_sim: tests/cudasim/test_cublas_sim.c build/sim/libcublas_sim.a
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -MMD -MP $(CUBLAS_SIM_FLAGS) $< -o $@ build/sim/libcublas_sim.a \
	  -lstdc++ -lcmocka -lm

.PHONY: test-cublas-sim
ifneq ($(CUBLAS_SIM_OK),)
test-cublas-sim: build/sim/cublas/test_cublas_sim
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$<
else
test-cublas-sim:
	@echo "test-cublas-sim: skipped: needs the CUDA toolkit's cuda_fp16.h (CUDA_HOME=$(CUDA_HOME))"
endif

# `make grad-accum-sim`: the error of 16-bit against f32 weight-gradient accumulation over 4 and
# 40 micro-steps, measured on the simulator (docs/results/grad_accumulation.md), in f16
# (GRAD_ACCUM_DTYPE=f16, the default) or bf16 (GRAD_ACCUM_DTYPE=bf16). Needs the simulator's
# build/sim/ objects; GRAD_ACCUM_TEXT is the text whose bytes are the tokens.
GRAD_ACCUM_TEXT ?= $(SHAKESPEARE)
GRAD_ACCUM_DTYPE ?= f16
.PHONY: grad-accum-sim
ifdef SIM_BACKEND_OBJ
build/sim/tests/cudasim/grad_accum_error: build/sim/tests/cudasim/grad_accum_error.o \
                                          $(SIM_BACKEND_OBJ)
	$(SIM_CXX) -o $@ $^ $(SIM_LDLIBS)

grad-accum-sim: build/sim/tests/cudasim/grad_accum_error
	@test -f "$(GRAD_ACCUM_TEXT)" || { echo "grad-accum-sim: text file '$(GRAD_ACCUM_TEXT)' not \
	  found: pass GRAD_ACCUM_TEXT=FILE (the set-up fetches tinyshakespeare there)"; exit 2; }
	$(SIM_ENV) ./$< $(GRAD_ACCUM_TEXT) dtype=$(GRAD_ACCUM_DTYPE) 4 40
else
grad-accum-sim:
	@echo "grad-accum-sim: needs the CUDA simulator's build (its Makefile section, make sim)"; \
	  exit 2
endif

# `make kernel-audit`: every .cu compiled for sm_89 and sm_90 with -Xptxas -v; fails on a spill
# no comment or allow-list entry explains, and on a kernel of scripts/kernel_audit_vector.txt
# without 128-bit loads; writes docs/results/kernel_audit.md (scripts/kernel_audit.py). Its own
# test (tests/kernel_audit.sh) first shows it failing on a deliberately spilling kernel.
.PHONY: kernel-audit
ifeq ($(CUDA),1)
kernel-audit:
	NVCC=$(NVCC) bash tests/kernel_audit.sh
	NVCC=$(NVCC) python3 scripts/kernel_audit.py --out docs/results/kernel_audit.md $(CU)
else
kernel-audit:
	@echo "kernel-audit: needs nvcc (the CUDA toolkit)" >&2; exit 2
endif

FORMAT_SRC = $(shell git ls-files '*.c' '*.h' '*.cc' '*.cu' '*.cuh' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC) && echo "format-check: $(words $(FORMAT_SRC)) files clean"

# the CPU step benchmark's binary, linked from the same objects as arenagpt (so it cannot fall
# behind a new library source); scripts/bench_cpu.sh and bench_flash_cpu.sh build it with make
BENCH_STEP := $(R)/scripts/bench_step
$(BENCH_STEP): $(R)/scripts/bench_step.o $(LIB_OBJ) $(NOCUDA_OBJ)
	$(CC) -o $@ $^ $(LDLIBS)

# the per-kernel-family timer (scripts/kernel_times.c) on the CPU backend; the GPU bundle has
# its CUDA build (CUDA events), which gpu_check.sh's kernels group runs
KERNEL_TIMES := $(R)/scripts/kernel_times
$(KERNEL_TIMES): $(R)/scripts/kernel_times.o $(LIB_OBJ) $(NOCUDA_OBJ)
	$(CC) -o $@ $^ $(LDLIBS)

# sampling with and without the KV cache (scripts/bench_decode.sh)
BENCH_DECODE := $(R)/scripts/bench_decode
$(BENCH_DECODE): $(R)/scripts/bench_decode.o $(LIB_OBJ) $(NOCUDA_OBJ)
	$(CC) -o $@ $^ $(LDLIBS)

bench: arenagpt $(BENCH_STEP) $(BENCH_DECODE)
	bash scripts/bench.sh

# every benchmark script at its smallest size (BENCH_SMOKE=1): seconds, part of make test-cli
# (tests/cli_bench.sh), so a benchmark that no longer builds or runs fails CI
bench-smoke: arenagpt $(BENCH_STEP) $(BENCH_DECODE)
	BENCH_SMOKE=1 bash tests/cli_bench.sh ./arenagpt

run: build/.setup-ok arenagpt
	bash scripts/run.sh

clean:
	rm -rf build arenagpt

-include $(shell find build -name '*.d' 2>/dev/null)
