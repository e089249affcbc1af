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
#   RECHECK_ONLY=1 bash book/runs/mutants.sh attention   # redo only the rechecks of a first
#                                            # pass already under target/mutants/attention
#   RECHECK_MISSED=1 bash book/runs/mutants.sh attention # after adding tests: run again only
#                                            # the mutants the last run left alive
#   ITERATE=1 bash book/runs/mutants.sh training  # go on from an interrupted or earlier first
#                                            # pass: cargo-mutants --iterate skips what it
#                                            # caught or found unviable; the log counts every
#                                            # mutant by its latest outcome over the passes
#
# Writes target/mutants/GROUP/mutants.out (under CARGO_TARGET_DIR if set) (cargo-mutants' own
# output) and one line per group to book/runs/mutants.tsv: group, mutants, caught, missed (after
# the recheck), unviable, timeout, the commit, and, for the groups of the paper's math, how many
# no test but the golden fixtures would catch: what the invariants miss on their own ("-" for
# the other groups; the doc tests are left out of that count too).
# The mutants missed by the whole suite are listed in book/runs/mutants-missed.txt.
set -euo pipefail
# A failing case found against a mutant must not be saved and replayed against the next ones.
export PROPTEST_DISABLE_FAILURE_PERSISTENCE=1
cd "$(dirname "$0")/../.."

# group | files (globs, space-separated) | test targets beside the library's unit tests
# (bin=NAME: the unit tests of that binary) | math?
# For the math groups the first pass leaves out tests/golden.rs (the PyTorch fixtures); its
# misses are run against every other test first, then against the whole suite.
groups=(
    "bleu|src/bleu.rs|bleu cli|no"
    "decode|src/decode.rs|decode worked_example training|no"
    "training|src/train/*.rs src/dropout.rs src/params.rs|training properties_training tasks dropout examples properties_backward|yes"
    "attention|src/softmax.rs src/attention.rs src/mask.rs|properties_attention properties_masks properties_backward examples numerics panics|yes"
    "multi_head|src/multi_head.rs src/matmul.rs|properties_multi_head properties_backward properties_batch examples numerics panics decode|yes"
    "position_wise|src/feed_forward.rs src/layer_norm.rs src/sublayer.rs|properties_layers properties_backward properties_batch examples numerics panics|yes"
    "embeddings|src/embedding.rs src/positional.rs src/init.rs|properties_positional properties_model properties_backward examples panics init|yes"
    "stacks|src/encoder.rs src/decoder.rs src/model.rs|properties_layers properties_model properties_backward properties_batch decode|yes"
    "fast|src/fast/*.rs src/blockwise.rs|properties_fast properties_blockwise numerics panics|no"
    "fixture|src/fixture/*.rs src/fixture/ops/*.rs|golden cli|no"
    "checkpoint|src/checkpoint.rs|checkpoint training cli|no"
    "book|src/book/*.rs|book figures fuzz_book book_text appendix worked_example claims serve bad_input|no"
    "figures|src/book/figures/*.rs|figures book appendix|no"
    "cli|src/cli*.rs src/config.rs src/why_self_attention.rs|bin=aiayn cli bad_input why_self_attention golden examples|no"
)

want=("$@")
commit=$(git rev-parse --short HEAD)
summary=book/runs/mutants.tsv
missed_list=book/runs/mutants-missed.txt
[ -f "$summary" ] || printf 'group\tmutants\tcaught\tmissed\tunviable\ttimeout\tcommit\tmissed_without_golden\n' > "$summary"
touch "$missed_list"

# Runs the mutants named in file $2 again, with cargo-mutants' output under $1 and any further
# arguments passed on to it. Writes, of those asked about, the ones still missed
# ($1/missed-of-list.txt), the ones that timed out ($1/timeout-of-list.txt) and the two together
# ($1/open-of-list.txt: what the next recheck starts from); prints the name of the first.
recheck() {
    local dir=$1 list=$2
    shift 2
    mkdir -p "$dir"
    if [ ! -s "$list" ]; then
        : > "$dir/missed-of-list.txt"
        : > "$dir/timeout-of-list.txt"
        : > "$dir/open-of-list.txt"
        echo "$dir/missed-of-list.txt"
        return
    fi
    local re
    re=$(sed -e 's/[][(){}.*+?^$|\\]/\\&/g' "$list" | paste -sd'|')
    cargo mutants --in-place --baseline skip --profile release --timeout 300 -o "$dir" -F "$re" \
        "${file_args[@]}" "$@" >&2 || true
    # -F also picks up a few mutants whose names do not match (struct-field deletions on the
    # same lines): keep only the ones asked about
    grep -Fxf "$list" "$dir/mutants.out/missed.txt" > "$dir/missed-of-list.txt" || true
    # a mutant that runs the tests past the timeout is not caught: it goes to the timeout column
    grep -Fxf "$list" "$dir/mutants.out/timeout.txt" > "$dir/timeout-of-list.txt" || true
    cat "$dir/missed-of-list.txt" "$dir/timeout-of-list.txt" > "$dir/open-of-list.txt"
    echo "$dir/missed-of-list.txt"
}

# The mutants run with --baseline skip (the unmutated tree is not tested once per group), so
# the whole suite must pass here first: with a test that fails anyway, every mutant would look
# caught.
if [ -z "${SKIP_BASELINE:-}" ]; then
    echo "== the whole suite on the unmutated tree" >&2
    if ! cargo test --release -q >&2; then
        echo "mutants.sh: the suite fails without any mutant; fix that first" >&2
        exit 2
    fi
fi

# The log's line for group $2 from the outcomes under $1: every mutant the code has now
# (cargo mutants --list), each by its latest outcome over the passes; fails, naming one, if a
# mutant has no outcome (an interrupted pass).
tally() {
    cargo mutants --list "${file_args[@]}" > "$1/listed.txt"
    python3 - "$@" <<'EOF'
import glob, json, os, sys
out, name, still_missed, commit, without, timed_out = sys.argv[1:7]
# every mutant by its latest outcome: the earlier passes of an ITERATE=1 run, then this one
passes = sorted(glob.glob(os.path.join(out, "passes", "*.json")),
                key=lambda p: int(os.path.basename(p)[:-5]))
latest = {}
for p in passes + [os.path.join(out, "mutants.out", "outcomes.json")]:
    for o in json.load(open(p))["outcomes"]:
        if isinstance(o["scenario"], dict):
            latest[o["scenario"]["Mutant"]["name"]] = o["summary"]
listed = [l for l in open(os.path.join(out, "listed.txt")).read().splitlines() if l]
untested = [m for m in listed if m not in latest]
if untested:
    sys.exit(f"mutants.sh: {name}: {len(untested)} of its {len(listed)} mutants have no outcome "
             f"(an interrupted pass?), the first: {untested[0]}; go on with ITERATE=1")
latest = {m: latest[m] for m in listed}  # outcomes of mutants the code no longer has drop out
# what the rechecks start from: every mutant whose latest outcome is a miss, whichever pass
with open(os.path.join(out, "latest-missed.txt"), "w") as f:
    f.writelines(m + "\n" for m, v in latest.items() if v == "MissedMutant")
count = lambda s: sum(v == s for v in latest.values())
# the first pass's misses, less those the rechecks left missed or saw time out
caught = count("CaughtMutant") + count("MissedMutant") - int(still_missed) - int(timed_out)
timeout = count("Timeout") + int(timed_out)
print(f"{name}\t{len(latest)}\t{caught}\t{still_missed}\t{count('Unviable')}\t{timeout}\t{commit}\t{without}")
EOF
}

# Every test target but the golden fixtures (tests/golden.rs), and the unit tests.
without_golden=(-C --lib)
for t in tests/*.rs; do
    t=$(basename "$t" .rs)
    [ "$t" = golden ] || without_golden+=(-C "--test=$t")
done

for g in "${groups[@]}"; do
    IFS='|' read -r name files tests math <<< "$g"
    if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then
        continue
    fi
    out=${CARGO_TARGET_DIR:-target}/mutants/$name
    mkdir -p "$out"
    file_args=()
    for f in $files; do file_args+=(-f "$f"); done
    # the rechecks start from every mutant whose latest outcome over the passes is a miss
    # (written by tally below), after an ITERATE=1 pass too, not only this pass's misses
    first_missed=$out/latest-missed.txt
    if [ -n "${RECHECK_MISSED:-}" ] && [ -f "$out/mutants.out/outcomes.json" ]; then
        # RECHECK_MISSED=1, after new tests: only the mutants the last run of this group left
        # alive at its first recheck are run again. Tests are only ever added, so what was
        # caught stays caught.
        echo "== $name: the mutants the last run left alive, rechecked" >&2
        for prior in "$out"/recheck-without-golden/{open-of-list.txt,missed-of-list.txt} \
            "$out"/recheck-without-golden/mutants.out/missed.txt \
            "$out"/recheck/{open-of-list.txt,missed-of-list.txt,mutants.out/missed.txt} \
            "$out"/mutants.out/missed.txt; do
            [ -f "$prior" ] && break
        done
        cp "$prior" "$out/prior-missed.txt"
        first_missed=$out/prior-missed.txt
        rm -rf "$out/recheck" "$out/recheck-without-golden"
    elif [ -n "${RECHECK_ONLY:-}" ] && [ -f "$out/mutants.out/outcomes.json" ]; then
        # RECHECK_ONLY=1: keep the first pass already in $out, redo the rechecks
        echo "== $name: the first pass in $out, rechecked" >&2
        rm -rf "$out/recheck" "$out/recheck-without-golden"
    else
        if [ -n "${ITERATE:-}" ] && [ ! -f "$out/mutants.out/outcomes.json" ] \
            && [ -d "$out/passes" ]; then
            # a pass stopped before it wrote its outcomes: starting over would drop the
            # earlier passes; put their last outcomes back in mutants.out first
            echo "mutants.sh: $name: ITERATE=1, but $out/mutants.out holds no outcomes" >&2
            exit 2
        fi
        if [ -n "${ITERATE:-}" ] && [ -f "$out/mutants.out/outcomes.json" ]; then
            # keep the earlier pass's outcomes: this one runs only what that left open
            mkdir -p "$out/passes"
            cp "$out/mutants.out/outcomes.json" \
                "$out/passes/$(find "$out/passes" -name '*.json' | wc -l).json"
            iterate=(--iterate)
        else
            rm -rf "$out/passes"
            iterate=()
        fi
        # A group's own tests take seconds; a mutant that makes them run for minutes has made
        # something loop (it counts as timed out, not caught).
        args=(--in-place --baseline skip --profile release --timeout "${FIRST_TIMEOUT:-90}" -o "$out"
            "${iterate[@]}")
        args+=("${file_args[@]}" -C --lib)
        for t in $tests; do
            case $t in
                bin=*) args+=(-C "--bin=${t#bin=}") ;; # the unit tests of a binary
                *) args+=(-C "--test=$t") ;;
            esac
        done
        echo "== $name: $files (tests: $tests)" >&2
        cargo mutants "${args[@]}" || true # exit status 2 means "some missed"; read the outcomes
    fi
    # no recheck of a first pass that did not finish
    tally "$out" "$name" 0 "$commit" - 0 > /dev/null

    # What the group's tests missed is run again: for the math groups first against every test
    # but the golden fixtures (what the invariants catch on their own), then, whatever is still
    # missed, against the whole suite. Only a mutant the whole suite misses counts as missed.
    missed=$first_missed
    without=-
    if [ "$math" = yes ]; then
        missed=$(recheck "$out/recheck-without-golden" "$missed" "${without_golden[@]}")
        without=$(wc -l < "$missed")
        # what timed out without the golden tests goes on to the whole suite too
        missed=$out/recheck-without-golden/open-of-list.txt
    fi
    missed=$(recheck "$out/recheck" "$missed")
    still_missed=$(wc -l < "$missed")
    timed_out=$(wc -l < "$out/recheck/timeout-of-list.txt")
    row=$(tally "$out" "$name" "$still_missed" "$commit" "$without" "$timed_out")
    # a group run again replaces its earlier line and survivors
    sed -i "/^$name\t/d" "$summary"
    sed -i "/^$name: /d" "$missed_list"
    sed "s/^/$name: /" "$missed" >> "$missed_list"
    echo "$row" >> "$summary"
    tail -1 "$summary" >&2
done
