// Loaded by book/check-rendered.sh into a copy of each chapter (never into the book a reader
// gets). Once the page and its fonts and images have loaded, it measures what a reader would
// see and writes one line per check into <pre id="rendered-report">, which the shell script
// reads back from Chromium's --dump-dom:
//
//   ok NAME
//   FAIL NAME: what was found
//
// The page is laid out at the window size the script gives Chromium (1280 px wide).
(function () {
    "use strict";

    const lines = [];
    function check(name, problems) {
        if (problems.length === 0) {
            lines.push("ok " + name);
        } else {
            const shown = problems.slice(0, 4).join("; ");
            const more = problems.length > 4 ? "; and " + (problems.length - 4) + " more" : "";
            lines.push("FAIL " + name + ": " + problems.length + " found: " + shown + more);
        }
    }

    function short(text, n) {
        const t = text.replace(/\s+/g, " ").trim();
        return t.length > n ? t.slice(0, n - 1) + "…" : t;
    }

    // The first line of a listing, to say which one is meant.
    function firstLine(el) {
        const line = el.textContent.split("\n").find((l) => l.trim() !== "") || "";
        return JSON.stringify(short(line, 60));
    }

    // The text a reader sees: outside math, code, scripts and styles.
    function proseTextNodes(root) {
        const skip = new Set(["MATH", "CODE", "PRE", "SCRIPT", "STYLE", "ANNOTATION", "SVG"]);
        const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
            acceptNode(node) {
                for (let p = node.parentElement; p && p !== root; p = p.parentElement) {
                    if (skip.has(p.tagName.toUpperCase())) {
                        return NodeFilter.FILTER_REJECT;
                    }
                }
                return NodeFilter.FILTER_ACCEPT;
            },
        });
        const nodes = [];
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            nodes.push(n);
        }
        return nodes;
    }

    function run() {
        const main = document.querySelector("main");
        if (!main) {
            lines.push("FAIL page: no <main> element");
            return;
        }
        const style = getComputedStyle(main);
        const column = main.getBoundingClientRect();
        const left = column.left + parseFloat(style.paddingLeft);
        const right = column.right - parseFloat(style.paddingRight);
        lines.push("info viewport " + window.innerWidth + " px, column " + Math.round(right - left) + " px");

        // Raw TeX: dollars or LaTeX commands that did not become MathML. Adjacent text nodes
        // are joined per parent, so a command split across nodes is still seen.
        const tex = /\$\$|\\(?:frac|mathrm|mathbf|text|left|right|sqrt|sum|cdot|begin|end|operatorname|alpha|times)(?![A-Za-z])/;
        const byParent = new Map();
        for (const node of proseTextNodes(main)) {
            const p = node.parentElement;
            byParent.set(p, (byParent.get(p) || "") + node.data);
        }
        const raw = [];
        for (const text of byParent.values()) {
            const m = text.match(tex);
            if (m) {
                const at = Math.max(0, m.index - 20);
                raw.push(JSON.stringify(short(text.slice(at, m.index + 40), 60)));
            }
        }
        check("no raw TeX in the text", raw);

        check(
            "no <merror> in the math",
            Array.from(main.querySelectorAll("merror")).map((e) => JSON.stringify(short(e.textContent, 60))),
        );

        // Code listings: neither the <pre> nor its <code> (mdBook makes the latter scroll)
        // needs a horizontal scroll bar.
        const wide = [];
        for (const pre of main.querySelectorAll("pre")) {
            for (const el of [pre, pre.querySelector("code")]) {
                if (el && el.scrollWidth > el.clientWidth + 1) {
                    wide.push(firstLine(pre) + " is " + el.scrollWidth + " px in " + el.clientWidth);
                    break;
                }
            }
        }
        check("code listings fit their column (" + main.querySelectorAll("pre").length + " listings)", wide);

        const broken = [];
        for (const img of document.querySelectorAll("img")) {
            if (!img.complete || img.naturalWidth === 0) {
                broken.push(img.getAttribute("src"));
            }
        }
        check("images load (" + document.querySelectorAll("img").length + " images)", broken);

        const tables = [];
        for (const table of main.querySelectorAll("table")) {
            const r = table.getBoundingClientRect();
            if (r.right > right + 1 || r.left < left - 1 || table.scrollWidth > table.clientWidth + 1) {
                const head = table.querySelector("th, td");
                tables.push(
                    "table " + JSON.stringify(short(head ? head.textContent : "", 30)) + " is " +
                    Math.round(r.width) + " px in " + Math.round(right - left),
                );
            }
        }
        check("tables fit the column (" + main.querySelectorAll("table").length + " tables)", tables);

        const equations = [];
        for (const eq of main.querySelectorAll(".equation")) {
            if (eq.scrollWidth > eq.clientWidth + 1) {
                const a = eq.querySelector("annotation");
                equations.push(
                    JSON.stringify(short(a ? a.textContent : eq.textContent, 50)) + " is " +
                    eq.scrollWidth + " px in " + eq.clientWidth,
                );
            }
        }
        check("display equations fit the column (" + main.querySelectorAll(".equation").length + " equations)", equations);
    }

    function report() {
        try {
            run();
        } catch (e) {
            lines.push("FAIL the check script: " + e);
        }
        const pre = document.createElement("pre");
        pre.id = "rendered-report";
        pre.textContent = lines.join("\n");
        document.body.appendChild(pre);
    }

    window.addEventListener("load", () => {
        const fonts = document.fonts ? document.fonts.ready : Promise.resolve();
        fonts.then(() => setTimeout(report, 50));
    });
})();
