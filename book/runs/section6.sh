#!/usr/bin/env bash
# §6 on the book's translate task: greedy against beam search, single checkpoints against the
# average of the last five, and label smoothing 0.1 against 0. Reads the checkpoints of two
# training runs and writes one JSON object per evaluation to book/runs/section6.jsonl.
#
#   cargo run --release -- train translate --out runs/translate --eval-every 500
#   cargo run --release -- train translate --out runs/translate-ls0 --eval-every 500 --label-smoothing 0
#   bash book/runs/section6.sh runs/translate runs/translate-ls0
set -euo pipefail
cd "$(dirname "$0")/../.."
smoothed=${1:?usage: section6.sh RUN_DIR_LS_0.1 RUN_DIR_LS_0}
unsmoothed=${2:?usage: section6.sh RUN_DIR_LS_0.1 RUN_DIR_LS_0}
cargo build --release --quiet
aiayn=target/release/aiayn
out=book/runs/section6.jsonl
: > "$out"
ckpt() { printf '%s/ckpt-%06d.safetensors' "$1" "$2"; }

evaluate() { # label, checkpoint, beam
    echo "evaluating $1 with beam $3" >&2
    "$aiayn" evaluate "$2" --beam "$3" --alpha 0.6 --json \
        | tr -d '\n' | sed "s|^{|{\"run\": \"$1\", |" >> "$out"
    echo >> "$out"
}

for run in smoothed unsmoothed; do
    dir=${!run}
    for step in 1000 1500 2000 3000 6000; do
        for beam in 1 4; do
            evaluate "$run step $step" "$(ckpt "$dir" "$step")" "$beam"
        done
    done
    # the last five checkpoints up to step 3000 and up to step 6000, averaged (§6.1)
    for last in 3000 6000; do
        files=()
        for step in $((last - 2000)) $((last - 1500)) $((last - 1000)) $((last - 500)) "$last"; do
            files+=("$(ckpt "$dir" "$step")")
        done
        avg=$(mktemp --suffix=.safetensors)
        "$aiayn" average "${files[@]}" --out "$avg" >&2
        for beam in 1 4; do
            evaluate "$run average of 5 up to step $last" "$avg" "$beam"
        done
        rm -f "$avg"
    done
done
echo "wrote $out" >&2
