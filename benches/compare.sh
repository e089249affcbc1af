#!/bin/sh
# aiayn beside PyTorch on the same shapes, f32, 1 and 2 threads, interleaved run by run.
#
#     benches/compare.sh                         # everything: minutes (more the first time)
#     benches/compare.sh --rows multi_head-512   # one workload
#     benches/compare.sh --threads 1 --budget 0.5
#
# Creates a Python virtual environment with PyTorch and numpy (pinned as in
# fixtures/requirements.txt) in benches/.venv the first time; set AIAYN_BENCH_VENV to use
# another one. Prints a table and writes target/compare.json (see benches/compare.py).
set -eu
cd "$(dirname "$0")/.."
venv="${AIAYN_BENCH_VENV:-benches/.venv}"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv with $(grep -E '^(torch|numpy)==' fixtures/requirements.txt | tr '\n' ' ')" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet $(grep -E '^(torch|numpy)==' fixtures/requirements.txt)
fi
cargo build --release --example bench_compare
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$venv/bin/python" benches/compare.py --aiayn "$target_dir/release/examples/bench_compare" \
    --out "$target_dir/compare.json" "$@"
