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
/// # Errors
/// The parser's message if the LaTeX does not parse.
pub fn to_mathml(latex: &str, display: bool) -> Result<String, String> {
    let storage = Storage::new();
    let events = pulldown_latex::Parser::new(latex, &storage)
        .collect::<Result<Vec<_>, ParserError>>()
        .map_err(|e| e.to_string())?;
    // pulldown-latex copies the annotation as it is given: escape it here
    let annotation = latex
        .trim()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let config = RenderConfig {
        display_mode: if display {
            DisplayMode::Block
        } else {
            DisplayMode::Inline
        },
        annotation: Some(&annotation),
        ..RenderConfig::default()
    };
    let mut mathml = String::new();
    pulldown_latex::push_mathml(
        &mut mathml,
        events.into_iter().map(Ok::<_, ParserError>),
        config,
    )
    .map_err(|e| e.to_string())?;
    Ok(escape_for_markdown(&mathml))
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
    }

    #[test]
    fn existing_references_survive_escaping() {
        assert_eq!(escape_for_markdown("<mo>&lt;</mo>"), "<mo>&lt;</mo>");
        assert_eq!(escape_for_markdown("<mi>a_b</mi>"), "<mi>a&#95;b</mi>");
    }
}
