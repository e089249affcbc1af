#!/usr/bin/env bash
# Mutation testing, module group by module group: cargo-mutants injects one bug at a time into
# the library and runs the tests that exercise that group; a mutant no test notices is "missed".
# The whole library in one go is `cargo mutants` (see .cargo/mutants.toml), but with every test
# target rebuilt for every mutant that takes days on two cores; a group runs only the test
# targets that use its modules (the lists below), and every mutant those miss is run again
# against the whole suite before it counts as missed.
#
#   cargo install cargo-mutants --locked     # once, about 4 minutes
#   bash book/runs/mutants.sh                # every group (many hours)
#   bash book/runs/mutants.sh bleu decode    # some groups
#
# Writes target/mutants/GROUP/mutants.out (under CARGO_TARGET_DIR if set) (cargo-mutants' own
# output) and one line per group to book/runs/mutants.tsv: group, mutants, caught, missed (after
# the recheck), unviable, timeout, the commit, and, for the groups of the paper's math, how many
# the first pass missed: that pass runs only the property and example tests, never the golden
# fixtures, so it measures what the invariants catch on their own ("-" for the other groups).
# The mutants missed by the whole suite are listed in book/runs/mutants-missed.txt.
set -euo pipefail
# A failing case found against a mutant must not be saved and replayed against the next ones.
export PROPTEST_DISABLE_FAILURE_PERSISTENCE=1
cd "$(dirname "$0")/../.."

# group | files (globs, space-separated) | test targets beside the unit tests | math?
# For the math groups the first pass leaves out tests/golden.rs (the PyTorch fixtures); the
# recheck of its misses runs the whole suite, golden fixtures included.
groups=(
    "bleu|src/bleu.rs|bleu cli|no"
    "decode|src/decode.rs|decode worked_example training|no"
    "training|src/train/*.rs src/dropout.rs src/params.rs|training properties_training tasks dropout examples properties_backward|yes"
    "attention|src/softmax.rs src/attention.rs src/mask.rs|properties_attention properties_masks properties_backward examples numerics panics|yes"
    "multi_head|src/multi_head.rs src/matmul.rs|properties_multi_head properties_backward examples numerics panics decode|yes"
    "position_wise|src/feed_forward.rs src/layer_norm.rs src/sublayer.rs|properties_layers properties_backward examples numerics panics|yes"
    "embeddings|src/embedding.rs src/positional.rs src/init.rs|properties_positional properties_model properties_backward examples panics init|yes"
    "stacks|src/encoder.rs src/decoder.rs src/model.rs|properties_layers properties_model properties_backward decode|yes"
    "fast|src/fast/*.rs src/blockwise.rs|properties_fast properties_blockwise numerics|no"
    "fixture|src/fixture/*.rs src/fixture/ops/*.rs|golden cli|no"
    "checkpoint|src/checkpoint.rs|checkpoint training cli|no"
    "book|src/book/*.rs src/book/figures/*.rs|book fuzz_book book_text appendix worked_example claims|no"
    "cli|src/cli*.rs src/config.rs src/why_self_attention.rs|cli bad_input why_self_attention golden|no"
)

want=("$@")
commit=$(git rev-parse --short HEAD)
summary=book/runs/mutants.tsv
missed_list=book/runs/mutants-missed.txt
[ -f "$summary" ] || printf 'group\tmutants\tcaught\tmissed\tunviable\ttimeout\tcommit\tmissed_without_golden\n' > "$summary"
touch "$missed_list"

for g in "${groups[@]}"; do
    IFS='|' read -r name files tests math <<< "$g"
    if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then
        continue
    fi
    out=${CARGO_TARGET_DIR:-target}/mutants/$name
    mkdir -p "$out"
    args=(--in-place --baseline skip --profile release --timeout 300 -o "$out")
    for f in $files; do args+=(-f "$f"); done
    args+=(-C --lib)
    for t in $tests; do args+=(-C "--test=$t"); done
    echo "== $name: $files (tests: $tests)" >&2
    cargo mutants "${args[@]}" || true # exit status 2 means "some missed"; read the outcomes

    # Every mutant the group's tests missed, run again against the whole suite.
    missed=$(cat "$out/mutants.out/missed.txt")
    still_missed=0
    if [ -n "$missed" ]; then
        re=$(sed -e 's/[][(){}.*+?^$|\\]/\\&/g' "$out/mutants.out/missed.txt" | paste -sd'|')
        cargo mutants --in-place --baseline skip --profile release --timeout 300 \
            -o "$out/recheck" -F "$re" $(for f in $files; do printf -- '-f %s ' "$f"; done) || true
        still_missed=$(wc -l < "$out/recheck/mutants.out/missed.txt")
        sed "s/^/$name: /" "$out/recheck/mutants.out/missed.txt" >> "$missed_list"
    fi
    python3 - "$out/mutants.out/outcomes.json" "$name" "$still_missed" "$commit" "$math" >> "$summary" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
name, still_missed, commit, math = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
caught = d["caught"] + d["missed"] - still_missed
first_pass = str(d["missed"]) if math == "yes" else "-"
print(f"{name}\t{d['total_mutants']}\t{caught}\t{still_missed}\t{d['unviable']}\t{d['timeout']}\t{commit}\t{first_pass}")
EOF
    tail -1 "$summary" >&2
done
