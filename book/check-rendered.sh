#!/usr/bin/env bash
# Renders a chapter of the book in headless Chromium and checks what a reader would see:
# MathML elements in the page's DOM, the chapter's figures, and SVG files the browser can load;
# then that the appendix's attention explorer runs and draws. Leaves screenshots for a person to
# look at.
#
#   bash book/check-rendered.sh            # from anywhere; installs Debian's chromium if missing
#
# Environment: AIAYN_CHECK_PORT (default 3917), AIAYN_CHECK_OUT (default target/check-rendered).
# Prints "rendered: N passed, M failed" and exits non-zero if any check failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${AIAYN_CHECK_PORT:-3917}"
work="${AIAYN_CHECK_OUT:-$root/target/check-rendered}"
chapter="scaled-dot-product.html"

if ! command -v chromium >/dev/null 2>&1; then
    echo "check-rendered: installing chromium (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
echo "check-rendered: $(chromium --version 2>/dev/null || echo 'chromium (version unknown)')"

mkdir -p "$work"
book="$work/book"
(cd "$root" && cargo build --release --quiet --bin aiayn)
aiayn="${CARGO_TARGET_DIR:-$root/target}/release/aiayn"

# Serve the freshly built book; stop the server (only it) on exit.
"$aiayn" serve --port "$port" --out "$book" >"$work/serve.log" 2>&1 &
server=$!
profile="$(mktemp -d)"
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$profile"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
        echo "check-rendered: the server did not start:" >&2
        cat "$work/serve.log" >&2
        exit 1
    fi
    sleep 0.2
done
url="http://127.0.0.1:$port"

browse() {
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --hide-scrollbars --user-data-dir="$profile" "$@" 2>/dev/null
}

# A browser failure is reported by the checks below, not by `set -e`.
browse --virtual-time-budget=3000 --dump-dom "$url/$chapter" >"$work/dom.html" || true
browse --window-size=1280,2400 --virtual-time-budget=3000 \
    --screenshot="$work/$chapter.png" "$url/$chapter" >/dev/null || true

passed=0
failed=0
check() { # check NAME CONDITION-RESULT DETAIL
    if [ "$2" = ok ]; then
        passed=$((passed + 1))
        echo "ok      $1"
    else
        failed=$((failed + 1))
        echo "FAILED  $1: $3"
    fi
}

maths=$(grep -o '<math' "$work/dom.html" | wc -l || true)
check "the DOM has <math> elements" "$([ "$maths" -ge 5 ] && echo ok)" "found $maths"
merrors=$(grep -o '<merror' "$work/dom.html" | wc -l || true)
check "no <merror> in the DOM" "$([ "$merrors" -eq 0 ] && echo ok)" "found $merrors"
figs=$(grep -o '<img[^>]*src="figures/[^"]*\.svg"' "$work/dom.html" | sed 's/.*src="//; s/"$//' | sort -u || true)
nfigs=$(printf '%s\n' "$figs" | grep -c . || true)
check "the chapter shows figures (<img src=figures/...svg>)" "$([ "$nfigs" -ge 1 ] && echo ok)" "found $nfigs"
for fig in $figs; do
    browse --dump-dom "$url/$fig" >"$work/fig.html" || true
    check "the browser loads $fig as SVG" "$(grep -q '<svg' "$work/fig.html" && echo ok)" \
        "no <svg> in what it loaded"
done
# The appendix's attention explorer: its script runs without errors and draws a heatmap.
explorer="appendix-attention.html"
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --user-data-dir="$profile" --enable-logging=stderr --v=0 \
    --virtual-time-budget=3000 --dump-dom "$url/$explorer" \
    >"$work/explorer.html" 2>"$work/explorer.log" || true
check "the explorer reports it is ready ($explorer)" \
    "$(grep -q 'id="attention-explorer-widget"[^>]*data-state="ready"' "$work/explorer.html" && echo ok)" \
    "state: $(grep -o 'data-state="[^"]*"' "$work/explorer.html" || echo none)"
cells=$(sed -n '/id="attention-explorer-widget"/,$p' "$work/explorer.html" | grep -o '<rect' | wc -l || true)
check "the explorer drew its heatmap (<svg> with cells)" "$([ "$cells" -ge 20 ] && echo ok)" \
    "found $cells <rect> after the explorer"
jserrors=$(grep -c 'Uncaught\|CONSOLE.*Error' "$work/explorer.log" || true)
check "no JavaScript errors on $explorer" "$([ "$jserrors" -eq 0 ] && echo ok)" \
    "$(grep -m 3 'Uncaught\|CONSOLE.*Error' "$work/explorer.log")"
browse --window-size=1280,2400 --virtual-time-budget=3000 \
    --screenshot="$work/$explorer.png" "$url/$explorer" >/dev/null || true

png_size=$(stat -c %s "$work/$chapter.png" 2>/dev/null || echo 0)
check "a screenshot was written ($work/$chapter.png)" "$([ "$png_size" -gt 20000 ] && echo ok)" \
    "$png_size bytes"

echo "rendered: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
