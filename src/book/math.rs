//! Math in the book: `$...$` and `$$...$$` turned into MathML when the book is built.
//!
//! pulldown-cmark (with `ENABLE_MATH`) finds the math, so dollars inside code are left alone;
//! pulldown-latex renders it. The reader's browser needs no script, only the stylesheet and the
//! Latin Modern Math font shipped in `book/theme/`.
//!
//! The MathML goes back into the chapter's markdown, which mdBook parses once more. Inside a
//! paragraph, markdown would read `_`, `*`, `\`, `` ` ``, `[`, `]`, `~`, `$`, `|` (and, with smart
//! punctuation, quotes and dashes) in the MathML's text as markup. So every ASCII punctuation
//! character of the text between tags is written as a numeric character reference, which the
//! HTML parser turns back into the same character.

use std::fmt;
use std::ops::Range;

use pulldown_cmark::{Event, Parser, Tag, TagEnd};
use pulldown_latex::config::DisplayMode;
use pulldown_latex::{ParserError, RenderConfig, Storage};

use super::registry::{line_of, markdown_options};

/// LaTeX that pulldown-latex could not parse, and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MathError {
    /// The file, relative to the crate root.
    pub file: String,
    pub line: usize,
    /// The LaTeX, without the dollars.
    pub latex: String,
    pub message: String,
}

impl fmt::Display for MathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: cannot render the math `{}`: {}",
            self.file,
            self.line,
            self.latex.trim(),
            // pulldown-latex adds a drawing of the expression after the first line; the
            // expression is already shown.
            self.message
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .trim_start_matches("parsing error: ")
        )
    }
}

impl std::error::Error for MathError {}

/// Renders LaTeX to MathML, escaped for use inside markdown.
///
/// The LaTeX goes into the `alttext` attribute of `<math>` (as Wikipedia's MathML does), not
/// into an `<annotation>`: mdBook's search index takes the text of every element, so an
/// annotation would make each formula read twice in search results, once as MathML text and
/// once as LaTeX ("α = 0.3 \alpha = 0.3").
///
/// # Errors
/// The parser's message if the LaTeX does not parse.
pub fn to_mathml(latex: &str, display: bool) -> Result<String, String> {
    let storage = Storage::new();
    let events = pulldown_latex::Parser::new(latex, &storage)
        .collect::<Result<Vec<_>, ParserError>>()
        .map_err(|e| e.to_string())?;
    let config = RenderConfig {
        display_mode: if display {
            DisplayMode::Block
        } else {
            DisplayMode::Inline
        },
        annotation: None,
        ..RenderConfig::default()
    };
    let mut raw = String::new();
    pulldown_latex::push_mathml(
        &mut raw,
        events.into_iter().map(Ok::<_, ParserError>),
        config,
    )
    .map_err(|e| e.to_string())?;
    // pulldown-latex writes `\mu` as the micro sign U+00B5, which browsers do not set in
    // italic beside the other Greek letters; the Greek letter is U+03BC.
    let raw = raw.replace('\u{b5}', "\u{3bc}");
    let mut mathml = unstretch_short_fences(&merge_upright_letters(&raw));
    if let Some(rest) = mathml.strip_prefix("<math") {
        let alt =
            super::preprocess::html_escape(&latex.split_whitespace().collect::<Vec<_>>().join(" "));
        mathml = format!("<math alttext=\"{alt}\"{rest}");
    }
    Ok(escape_for_markdown(&mathml))
}

const UPRIGHT: &str = "<mi mathvariant=\"normal\">";

/// Joins runs of one-letter upright identifiers, as pulldown-latex writes `\mathrm{head}`
/// (`<mi mathvariant="normal">h</mi><mi mathvariant="normal">e</mi>...`), into one
/// `<mi>` holding the word: the browser then sets it as a word, and search finds "head".
pub fn merge_upright_letters(mathml: &str) -> String {
    let mut out = String::with_capacity(mathml.len());
    let mut rest = mathml;
    while let Some(at) = rest.find(UPRIGHT) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let mut word = String::new();
        // Take `<mi mathvariant="normal">X</mi>` while X is plain text (no markup).
        while let Some(after) = rest.strip_prefix(UPRIGHT) {
            match after.find("</mi>") {
                Some(end) if !after[..end].contains('<') => {
                    word.push_str(&after[..end]);
                    rest = &after[end + "</mi>".len()..];
                }
                _ => break,
            }
        }
        if word.is_empty() {
            // Not plain text: copy the tag and go on after it.
            out.push_str(UPRIGHT);
            rest = &rest[UPRIGHT.len()..];
        } else {
            out.push_str(UPRIGHT);
            out.push_str(&word);
            out.push_str("</mi>");
        }
    }
    out.push_str(rest);
    out
}

const STRETCHY: &str = "<mo stretchy=\"true\">";

/// Elements that make a formula taller than a line of text.
const TALL: [&str; 8] = [
    "<mfrac", "<mtable", "<munder", "<mover", "<msqrt", "<mroot", "largeop", "<mpadded",
];

/// Makes the fences of `\left( ... \right)` plain (not stretchy) when what they enclose is no
/// taller than a line. A stretchy operator is as wide as the widest of its font's size variants
/// (MathML Core: its preferred inline size does not depend on how far it stretches), so Chromium
/// sets a stretchy parenthesis around `x + 1` with the side bearings of a big one: visible space
/// on both sides. Fences around fractions, roots, tables or big operators stay stretchy.
pub fn unstretch_short_fences(mathml: &str) -> String {
    let opening = format!("<mrow>{STRETCHY}");
    let mut plain: Vec<usize> = Vec::new(); // offsets of `<mo stretchy="true">` to make plain
    let mut from = 0;
    while let Some(found) = mathml[from..].find(&opening) {
        let start = from + found;
        from = start + opening.len();
        // The matching `</mrow>`.
        let mut depth = 0usize;
        let mut at = start;
        let mut end = None;
        while at < mathml.len() {
            let r = &mathml[at..];
            if r.starts_with("<mrow") {
                depth += 1;
            } else if r.starts_with("</mrow>") {
                depth -= 1;
                if depth == 0 {
                    end = Some(at);
                    break;
                }
            }
            at += r.chars().next().map_or(1, char::len_utf8);
        }
        let Some(end) = end else { break };
        let inner = &mathml[start..end];
        let Some(close) = inner.rfind(STRETCHY) else {
            continue;
        };
        if close > opening.len() && !TALL.iter().any(|t| inner.contains(t)) {
            plain.push(start + "<mrow>".len());
            plain.push(start + close);
        }
    }
    plain.sort_unstable();
    plain.dedup();
    let mut out = String::with_capacity(mathml.len() + plain.len());
    let mut last = 0;
    for at in plain {
        out.push_str(&mathml[last..at]);
        out.push_str("<mo stretchy=\"false\">");
        last = at + STRETCHY.len();
    }
    out.push_str(&mathml[last..]);
    out
}

/// Writes each ASCII punctuation character of the text between tags as `&#N;`, and removes
/// line breaks, so that markdown sees no markup in it. Tags (`<` followed by a letter or `/`)
/// and complete character references (`&name;`, `&#N;`) are copied unchanged; any other `<` or
/// `&` is text (pulldown-latex writes the operators `<` and `&` raw) and is escaped too.
pub fn escape_for_markdown(html: &str) -> String {
    let mut out = String::with_capacity(html.len() * 5 / 4);
    let mut rest = html;
    let mut in_tag = false;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        if in_tag {
            out.push(if c == '\n' { ' ' } else { c });
            in_tag = c != '>';
        } else if c == '<' && after.starts_with(|d: char| d.is_ascii_alphabetic() || d == '/') {
            in_tag = true;
            out.push(c);
        } else if let Some(len) = (c == '&').then(|| reference_len(after)).flatten() {
            out.push_str(&rest[..1 + len]); // an existing reference such as `&lt;` or `&#x2212;`
            rest = &rest[1 + len..];
            continue;
        } else if c == '\n' || c == '\r' {
            out.push(' ');
        } else if c.is_ascii_punctuation() {
            out.push_str(&format!("&#{};", c as u32));
        } else {
            out.push(c);
        }
        rest = after;
    }
    out
}

/// The length of `name;` or `#123;` at the start of `s` (the rest of a character reference
/// after its `&`), if there is one.
fn reference_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix('#').unwrap_or(s);
    let n = body
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    let prefix = s.len() - body.len();
    (n > 0 && body[n..].starts_with(';')).then_some(prefix + n + 1)
}

/// Replaces every math span of a chapter with MathML.
///
/// `file` names the chapter in errors; `original`, when given, is the chapter as written, used
/// to give the line of a failing expression there (the text may have grown by includes).
///
/// # Errors
/// The first expression that does not parse, with its file and line.
pub fn render_chapter(text: &str, file: &str, original: Option<&str>) -> Result<String, MathError> {
    let mut spans: Vec<(Range<usize>, String, bool)> = Vec::new();
    for (event, range) in Parser::new_ext(text, markdown_options()).into_offset_iter() {
        match event {
            Event::InlineMath(latex) => spans.push((range, latex.into_string(), false)),
            Event::DisplayMath(latex) => spans.push((range, latex.into_string(), true)),
            _ => {}
        }
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut last = 0;
    for (range, latex, display) in spans {
        let mathml = to_mathml(&latex, display).map_err(|message| MathError {
            file: file.to_string(),
            line: original
                .and_then(|o| o.find(latex.as_str()).map(|at| line_of(o, at)))
                .unwrap_or_else(|| line_of(text, range.start)),
            latex: latex.clone(),
            message,
        })?;
        out.push_str(&text[last..range.start]);
        if display {
            out.push_str("<span class=\"equation\">");
            out.push_str(&mathml);
            out.push_str("</span>");
        } else {
            out.push_str(&mathml);
        }
        last = range.end;
    }
    out.push_str(&text[last..]);
    // pulldown-cmark leaves `$$` as text when it cannot close the math (for example around
    // unbalanced braces); that would reach the reader as raw LaTeX.
    let mut in_code = false;
    let mut run = String::new(); // adjacent text events: the parser may split `$$` in two
    let mut run_start = 0;
    for (event, range) in Parser::new_ext(&out, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code = true,
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Text(t) if !in_code => {
                if run.is_empty() {
                    run_start = range.start;
                }
                run.push_str(&t);
                continue;
            }
            _ => {}
        }
        if let Some(at) = run.find("$$") {
            let snippet: String = run[at..].chars().take(60).collect();
            return Err(MathError {
                file: file.to_string(),
                line: original
                    .and_then(|o| o.find(snippet.trim()).map(|i| line_of(o, i)))
                    .unwrap_or_else(|| line_of(&out, run_start)),
                latex: snippet,
                message: "`$$` that does not start a math span (unbalanced braces, or a \
                          missing closing `$$`?)"
                    .to_string(),
            });
        }
        run.clear();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attention_equation_renders_to_mathml_without_markdown_characters() {
        let m = to_mathml(
            r"\mathrm{Attention}(Q,K,V)=\mathrm{softmax}\left(\frac{QK^T}{\sqrt{d_k}}\right)V",
            true,
        )
        .unwrap();
        assert!(m.starts_with("<math"), "{m}");
        assert!(m.contains("display=\"block\""), "{m}");
        assert!(m.contains("<mfrac"), "{m}");
        let text: String = m
            .split('<')
            .map(|s| s.split_once('>').map_or(s, |(_, t)| t))
            .collect();
        for bad in ['_', '*', '\\', '`', '[', ']', '~', '$', '|', '\n'] {
            assert!(!text.contains(bad), "{bad:?} left in the text of {m}");
        }
    }

    #[test]
    fn math_in_code_is_left_alone_and_math_in_prose_is_replaced() {
        let text = "Cost $x_1$ and\n\n```\n$$not math$$\n```\n\n$$\na*b\n$$\n";
        let out = render_chapter(text, "c.md", None).unwrap();
        assert!(out.contains("$$not math$$"));
        assert_eq!(out.matches("<math").count(), 2, "{out}");
        assert!(!out.contains("$x_1$"));
    }

    #[test]
    fn a_parse_error_names_the_file_the_line_and_the_expression() {
        let err = render_chapter("ok\n\n$$\n\\frac{a}\n$$\n", "book/src/c.md", None).unwrap_err();
        assert_eq!((err.file.as_str(), err.line), ("book/src/c.md", 3));
        assert!(err.to_string().contains("\\frac{a}"), "{err}");
        let err = render_chapter("ok\n\n$$\n\\notacommand x\n$$\n", "c.md", None).unwrap_err();
        assert!(err.to_string().contains("notacommand"), "{err}");
    }

    #[test]
    fn dollars_that_do_not_become_math_fail_the_chapter() {
        let err = render_chapter("ok\n\n$$\n\\frac{a}{b\n$$\n", "c.md", None).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(render_chapter("It costs $5 and $6.\n", "c.md", None).is_ok());
        // `$$` in a listing is code; after the listing ends, a stray one fails again
        let listing = "```\n$$ in code\n```\n\nok\n";
        assert!(render_chapter(listing, "c.md", None).is_ok());
        let err = render_chapter(
            &format!("{listing}\n$$\n\\frac{{a}}{{b\n$$\n"),
            "c.md",
            None,
        )
        .unwrap_err();
        assert_eq!(err.line, 7, "{err}");
    }

    #[test]
    fn upright_words_are_one_identifier() {
        let m = to_mathml(r"\mathrm{head}_i = x", false).unwrap();
        assert!(m.contains("<mi mathvariant=\"normal\">head</mi>"), "{m}");
        assert_eq!(
            merge_upright_letters("<mi mathvariant=\"normal\">a</mi><mi>b</mi>"),
            "<mi mathvariant=\"normal\">a</mi><mi>b</mi>"
        );
        // an upright identifier that holds markup ends the word and is copied as it is
        let u = "<mi mathvariant=\"normal\">";
        let marked = format!("A{u}h{}{u}i<mspace/></mi>{u}<x/></mi>B", "</mi>");
        assert_eq!(merge_upright_letters(&marked), marked);
    }

    #[test]
    fn fences_stretch_only_around_tall_content() {
        let short = to_mathml(r"\max\left(0, x W_1 + b_1\right)", false).unwrap();
        assert!(!short.contains("stretchy=\"true\""), "{short}");
        assert_eq!(short.matches("stretchy=\"false\"").count(), 2, "{short}");
        let tall = to_mathml(r"\left(\frac{a}{b}\right) + \left(x\right)", false).unwrap();
        assert_eq!(tall.matches("stretchy=\"true\"").count(), 2, "{tall}");
        assert_eq!(tall.matches("stretchy=\"false\"").count(), 2, "{tall}");
    }

    #[test]
    fn mu_is_the_greek_letter() {
        let m = to_mathml(r"x - \mu", false).unwrap();
        assert!(
            m.contains("<mi>\u{3bc}</mi>") && !m.contains('\u{b5}'),
            "{m}"
        );
    }

    #[test]
    fn the_latex_is_kept_in_alttext_and_not_in_the_text() {
        let m = to_mathml(r"\alpha = 0.3", false).unwrap();
        assert!(m.starts_with("<math alttext=\"\\alpha = 0.3\""), "{m}");
        assert!(!m.contains("<annotation"), "{m}");
    }

    #[test]
    fn existing_references_survive_escaping() {
        assert_eq!(escape_for_markdown("<mo>&lt;</mo>"), "<mo>&lt;</mo>");
        assert_eq!(escape_for_markdown("<mi>a_b</mi>"), "<mi>a&#95;b</mi>");
        assert_eq!(
            escape_for_markdown("<mn>&#8722;1</mn>"),
            "<mn>&#8722;1</mn>"
        );
        // an `&` that does not open a complete reference is text
        assert_eq!(escape_for_markdown("a &; b"), "a &#38;&#59; b");
        assert_eq!(escape_for_markdown("&#;"), "&#38;&#35;&#59;");
        assert_eq!(escape_for_markdown("&x y"), "&#38;x y");
        // either line break becomes a space between tags; a newline in a tag does too
        assert_eq!(escape_for_markdown("a\r\nb"), "a  b");
        assert_eq!(escape_for_markdown("<mi\nx>"), "<mi x>");
    }

    #[test]
    fn only_the_two_fences_of_a_short_group_are_made_plain() {
        let (t, f) = ("<mo stretchy=\"true\">", "<mo stretchy=\"false\">");
        let short = format!("<math><mi>a</mi><mrow>{t}(</mo><mi>x</mi>{t})</mo></mrow></math>");
        assert_eq!(
            unstretch_short_fences(&short),
            format!("<math><mi>a</mi><mrow>{f}(</mo><mi>x</mi>{f})</mo></mrow></math>")
        );
        let tall = format!("<mrow>{t}(</mo><mfrac><mi>a</mi><mi>b</mi></mfrac>{t})</mo></mrow>");
        assert_eq!(unstretch_short_fences(&tall), tall);
        // an inner group is judged on its own: plain inside, stretchy around the fraction
        let nested = format!(
            "<mrow>{t}[</mo><mfrac><mi>a</mi><mi>b</mi></mfrac><mrow>{t}(</mo><mi>x</mi>{t})</mo></mrow>{t}]</mo></mrow>"
        );
        assert_eq!(
            unstretch_short_fences(&nested),
            format!(
                "<mrow>{t}[</mo><mfrac><mi>a</mi><mi>b</mi></mfrac><mrow>{f}(</mo><mi>x</mi>{f})</mo></mrow>{t}]</mo></mrow>"
            )
        );
        // a group that is never closed is left as it is
        let open = format!("<mrow>{t}(</mo><mi>x</mi>");
        assert_eq!(unstretch_short_fences(&open), open);
    }
}
