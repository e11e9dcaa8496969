# lib_sim.sh: what the simulated-CUDA training tests (sim_train.sh, sim_offload.sh,
# sim_nccl.sh, sim_overlap.sh, sim_multi_gpu_check.sh) share: their data and their model. A test sources tests/lib_cli.sh (BIN, ROOT,
# TMP, ok, bad, cli_done) and then this file, which sets TEXT (ARENAGPT_SHAKESPEARE, else the
# set-up's .cache/tinyshakespeare.txt), and calls
#     sim_data_and_conf [KEY=VALUE ...]
# which writes $TMP/text.txt (60000 bytes of TEXT, or a stand-in text when TEXT is absent),
# prepares $TMP/data from it with char tokens (a failure counts as one bad check), and writes
# $TMP/tiny.conf: a model small enough for the simulator (every GPU thread is a fiber: 2
# layers, 32 channels, 16 positions), each KEY=VALUE replacing that key's line or, for a key
# the file lacks, added at its end. The data-parallel tests start with
#     sim_ranks_ready
# which ends the test there (a skip; a failure where ARENAGPT_REQUIRE_DATA=1, after the set-up)
# without mpirun, with a binary built without MPI or without the stand-in NCCL beside BIN, and
# else sets SIM_DIR, MPI_ARGS (mpirun's flags for the tests) and CUDASIM_DEVICE_COUNT=2.
TEXT=${ARENAGPT_SHAKESPEARE:-$ROOT/.cache/tinyshakespeare.txt}
sim_data_and_conf() {
    if [ -f "$TEXT" ]; then
        head -c 60000 "$TEXT" >"$TMP/text.txt"
    else
        for i in $(seq 1 1500); do echo "To be, or not to be, that is the question $((i % 7)):"; done >"$TMP/text.txt"
    fi
    "$BIN" prepare --input="$TMP/text.txt" --out="$TMP/data" --tokenizer=char >"$TMP/prep.log" 2>&1 ||
        bad "prepare: $(tail -3 "$TMP/prep.log")"
    cat >"$TMP/tiny.conf" <<CONF
data_dir = '$TMP/data'
device = 'cuda'
n_layer = 2
n_head = 2
n_embd = 32
block_size = 16
vocab_size = 65
batch_size = 4
gradient_accumulation_steps = 2
learning_rate = 3e-3
warmup_iters = 2
lr_decay_iters = 100
min_lr = 3e-4
eval_interval = 3
eval_iters = 1
log_interval = 1
seed = 7
CONF
    local kv key
    for kv in "$@"; do
        key=${kv%%=*}
        if grep -q "^$key = " "$TMP/tiny.conf"; then
            sed -i "s|^$key = .*|$key = ${kv#*=}|" "$TMP/tiny.conf"
        else
            echo "$key = ${kv#*=}" >>"$TMP/tiny.conf"
        fi
    done
}

sim_ranks_ready() {
    SIM_DIR=$(dirname "$BIN")
    local why=""
    if ! command -v mpirun >/dev/null 2>&1; then
        why="mpirun not found (scripts/setup.sh installs openmpi-bin)"
    elif ! ldd "$BIN" | grep -q libmpi; then
        why="$BIN is built without MPI"
    elif [ ! -f "$SIM_DIR/libnccl.so.2" ]; then
        why="no $SIM_DIR/libnccl.so.2 (make sim builds it where MPI is)"
    fi
    if [ -n "$why" ]; then
        if [ "${ARENAGPT_REQUIRE_DATA:-0}" = 1 ]; then bad "$why"; else echo "$CLI_NAME: skipped: $why"; fi
        cli_done
        exit $?
    fi
    # as root in CI; Open MPI's own allocations at MPI_Finalize read as leaks to
    # LeakSanitizer: the ranks run with the leak check off, every other ASan check on
    MPI_ARGS="--allow-run-as-root --oversubscribe -x ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"
    export CUDASIM_DEVICE_COUNT=2 # a simulated GPU per rank
}
