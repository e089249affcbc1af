//! The book tooling on arbitrary input: the LaTeX converter, the chapter renderer and the
//! equation registry's scanners never panic, and text from LaTeX never reaches the page as
//! markup. Cases per test: proptest's default (256), or `PROPTEST_CASES`.

use aiayn::book::math::{render_chapter, to_mathml};
use aiayn::book::registry::{scan_chapter, scan_rust};
use proptest::prelude::*;

/// Strings made of LaTeX's and HTML's special characters, commands and words.
fn latexish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\\frac",
        "\\sqrt",
        "{",
        "}",
        "^",
        "_",
        "\\left(",
        "\\right)",
        "\\mathrm",
        "x",
        "12",
        "<",
        ">",
        "&",
        "\"",
        "'",
        "<script>",
        "</annotation>",
        "\\text{",
        "\\\\",
        "$",
        "%",
        "\\begin{aligned}",
        "\\end{aligned}",
        "&=",
        " ",
        "\n",
        "\\alpha",
        "é",
        "\u{0}",
    ]);
    prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
}

/// Chapter-like text: markdown, math spans, markers and directives.
fn chapterish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "# Title\n",
        "text ",
        "$x$",
        "$$\n\\sqrt{d_k}\n$$\n",
        "{{#verify eq:attention}}\n",
        "{{#verify eq:}}\n",
        "{{#verification-table}}\n",
        "```rust\n",
        "```\n",
        "$",
        "\\",
        "`",
        "| a | b |\n|---|---|\n",
        "<div>",
        "\n\n",
        "{{#include x.rs:a}}",
        "$$",
        "é",
    ]);
    prop::collection::vec(pieces, 0..30).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn latex_never_panics_and_never_becomes_markup(latex in latexish(), display in any::<bool>()) {
        if let Ok(html) = to_mathml(&latex, display) {
            let lower = html.to_lowercase();
            prop_assert!(!lower.contains("<script"), "{html}");
            prop_assert!(lower.matches("</annotation>").count() <= 1, "the annotation is closed once: {html}");
            // every tag the converter writes is MathML's
            for tag in html.split('<').skip(1) {
                let name: String = tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
                prop_assert!(
                    name == "math" || name.starts_with('m') || name == "semantics" || name == "annotation" || name == "none",
                    "unexpected tag <{name}> in {html}"
                );
            }
        }
    }

    #[test]
    fn rendering_a_chapter_never_panics(text in chapterish()) {
        let _ = render_chapter(&text, "fuzz.md", Some(&text));
    }

    #[test]
    fn scanning_chapters_and_code_never_panics(text in chapterish(), code in latexish()) {
        let _ = scan_chapter("fuzz.md", "fuzz.md", &text);
        let (mut implementations, mut verifications, mut problems) = (Vec::new(), Vec::new(), Vec::new());
        let rust = format!("/// (`eq:x`)\n{code}\n// verifies: eq:x (property)\nfn t() {{}}\n// verifies: {code}\n");
        scan_rust("src/fuzz.rs", &rust, &mut implementations, &mut verifications, &mut problems);
    }
}

#[test]
fn operators_and_annotations_from_latex_are_escaped() {
    let html = to_mathml("a < b \\& c > d", false).unwrap();
    assert!(!html.contains("<mo><"), "{html}");
    assert!(html.contains("&#60;") && html.contains("&#62;"), "{html}");
    let html = to_mathml("x </annotation><script>alert(1)</script>", true).unwrap_or_default();
    assert!(!html.to_lowercase().contains("<script"), "{html}");
}
