#!/usr/bin/env bash
# Renders every chapter of the book in headless Chromium at 1280 px and checks what a reader
# would see (book/check-rendered.js does the measuring): no raw TeX left in the text, no
# <merror>, no code listing that needs a horizontal scroll bar, no broken image, no table or
# display equation wider than the content column; then that the appendix's attention explorer
# runs and draws. Leaves screenshots for a person to look at.
#
#   bash book/check-rendered.sh            # from anywhere; installs Debian's chromium if missing
#
# Environment: AIAYN_CHECK_PORT (default 3917), AIAYN_CHECK_OUT (default target/check-rendered).
# Prints "rendered: N passed, M failed" and exits non-zero if any check failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${AIAYN_CHECK_PORT:-3917}"
work="${AIAYN_CHECK_OUT:-$root/target/check-rendered}"
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

# Serve the freshly built book; stop the server (only it) on exit. The server binds its port
# before building and says "serving" when the book is ready; if the port is taken (another
# checkout running this script), the next one is tried.
server=""
profile="$(mktemp -d)"
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$profile"
}
trap cleanup EXIT

for attempt in $(seq 0 19); do
    # Emptied here, not by the server's redirect: the loop below must not read an earlier run's
    # "serving" line before the new server has truncated the file.
    : >"$work/serve.log"
    "$aiayn" serve --port "$port" --out "$book" >"$work/serve.log" 2>&1 &
    server=$!
    while kill -0 "$server" 2>/dev/null && ! grep -q '^serving' "$work/serve.log" 2>/dev/null; do
        sleep 0.2
    done
    if grep -q '^serving' "$work/serve.log"; then
        break
    fi
    wait "$server" 2>/dev/null || true
    server=""
    if grep -q 'in use' "$work/serve.log" && [ "$attempt" -lt 19 ]; then
        port=$((port + 1))
        continue
    fi
    echo "check-rendered: the server did not start:" >&2
    cat "$work/serve.log" >&2
    exit 1
done
url="http://127.0.0.1:$port"

browse() {
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --hide-scrollbars --user-data-dir="$profile" "$@" 2>/dev/null
}

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

# Every chapter, laid out at 1280 px: a copy of its page loads check-rendered.js, which
# measures the page once its fonts and images have loaded and writes one line per check into
# <pre id="rendered-report">; --dump-dom hands the page back with it.
cp "$root/book/check-rendered.js" "$book/check-rendered.js"
chapters=$(cd "$book" && ls -- *.html | grep -v -x -e print.html -e toc.html -e 404.html \
    -e index.html -e '.*\.check\.html')
for page in $chapters; do
    probe="${page%.html}.check.html"
    sed 's#</body>#<script src="check-rendered.js"></script></body>#' "$book/$page" >"$book/$probe"
    # A browser failure is reported by the checks below, not by `set -e`.
    # A page the browser did not hand back (it timed out on a busy machine) gets one more try.
    for attempt in 1 2; do
        browse --window-size=1280,2400 --virtual-time-budget=5000 --dump-dom "$url/$probe" \
            >"$work/dom-$page" || true
        report=$(sed -n '/<pre id="rendered-report">/,/<\/pre>/p' "$work/dom-$page" |
            sed 's#<pre id="rendered-report">##; s#</pre>.*##; s/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&amp;/\&/g')
        [ -n "$report" ] && break
        echo "check-rendered: no report from $page (attempt $attempt)" >&2
    done
    if [ -z "$report" ]; then
        check "$page: the page was measured" no "no report from check-rendered.js"
        continue
    fi
    while IFS= read -r line; do
        case "$line" in
        "ok "*) check "$page: ${line#ok }" ok "" ;;
        "FAIL "*)
            name="${line#FAIL }"
            check "$page: ${name%%: *}" no "${name#*: }"
            ;;
        esac
    done <<<"$report"
done

chapter="scaled-dot-product.html"
cp "$work/dom-$chapter" "$work/dom.html"
browse --window-size=1280,2400 --virtual-time-budget=3000 \
    --screenshot="$work/$chapter.png" "$url/$chapter" >/dev/null || true
maths=$(grep -o '<math' "$work/dom.html" | wc -l || true)
check "$chapter: the DOM has <math> elements" "$([ "$maths" -ge 5 ] && echo ok)" "found $maths"
figs=$(grep -o '<img[^>]*src="figures/[^"]*\.svg"' "$work/dom.html" | sort -u | wc -l || true)
check "$chapter: the chapter shows figures (<img src=figures/...svg>)" \
    "$([ "$figs" -ge 1 ] && echo ok)" "found $figs"

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
