//! Integrity checks of the book's sources that mdBook itself does not make: it renders a
//! missing `{{#include file:anchor}}` anchor as an empty block, and a missing image as a broken
//! one. Each check returns the problems it found, each naming the file and the line.

use std::fs;
use std::path::Path;

use pulldown_cmark::{Event, Parser, Tag};

use super::figures;
use super::registry::{chapter_files, line_of, markdown_options, relative, Location, Problem};

fn problem(file: &str, line: usize, message: String) -> Problem {
    Problem {
        at: Location {
            file: file.to_string(),
            line,
        },
        id: None,
        message,
    }
}

/// The chapter files listed in `book/src/SUMMARY.md`, in order, relative to `book/src`.
/// Draft entries (`[Title]()`) are skipped.
pub fn summary_chapters(root: &Path) -> Vec<(String, usize)> {
    let path = root.join("book/src/SUMMARY.md");
    let Ok(text) = fs::read_to_string(&path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (event, range) in Parser::new_ext(&text, markdown_options()).into_offset_iter() {
        if let Event::Start(Tag::Link { dest_url, .. }) = event {
            let dest = dest_url.split('#').next().unwrap_or("").to_string();
            if !dest.is_empty() {
                out.push((dest, line_of(&text, range.start)));
            }
        }
    }
    out
}

/// Every SUMMARY entry names an existing file, and every chapter file is in SUMMARY.
pub fn summary(root: &Path) -> Vec<Problem> {
    let book_src = root.join("book/src");
    let summary_file = "book/src/SUMMARY.md";
    if !book_src.join("SUMMARY.md").is_file() {
        return vec![problem(
            summary_file,
            1,
            "the book has no SUMMARY.md".to_string(),
        )];
    }
    let listed = summary_chapters(root);
    let mut problems = Vec::new();
    for (chapter, line) in &listed {
        if !book_src.join(chapter).is_file() {
            problems.push(problem(
                summary_file,
                *line,
                format!("lists `{chapter}`, which does not exist in book/src"),
            ));
        }
    }
    for path in chapter_files(&book_src).unwrap_or_default() {
        let chapter = relative(&book_src, &path);
        if !listed.iter().any(|(c, _)| *c == chapter) {
            problems.push(problem(
                &relative(root, &path),
                1,
                format!("chapter file `{chapter}` is not listed in SUMMARY.md"),
            ));
        }
    }
    problems
}

/// `{{#include path[:anchor]}}` and `{{#rustdoc_include ...}}` directives of a chapter:
/// (line, path, anchor or line range).
pub fn include_directives(text: &str) -> Vec<(usize, String, Option<String>)> {
    let mut out = Vec::new();
    for keyword in ["{{#include ", "{{#rustdoc_include "] {
        for (offset, _) in text.match_indices(keyword) {
            if offset > 0 && text.as_bytes()[offset - 1] == b'\\' {
                continue;
            }
            let rest = &text[offset + keyword.len()..];
            let Some(end) = rest.find("}}") else {
                continue;
            };
            let arg = rest[..end].trim();
            let (path, selector) = match arg.split_once(':') {
                Some((p, s)) => (p.to_string(), Some(s.to_string())),
                None => (arg.to_string(), None),
            };
            out.push((line_of(text, offset), path, selector));
        }
    }
    out.sort();
    out
}

/// The lines strictly between `ANCHOR: name` and `ANCHOR_END: name`, or `None` if the anchor
/// is not opened and closed in that order.
pub fn anchored_lines<'a>(source: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let is_marker = |line: &str, marker: &str| {
        line.split_once(marker)
            .is_some_and(|(_, rest)| rest.split_whitespace().next() == Some(name))
    };
    let mut lines = source.lines();
    lines.by_ref().find(|l| is_marker(l, "ANCHOR:"))?;
    let mut body = Vec::new();
    for line in lines {
        if is_marker(line, "ANCHOR_END:") {
            return Some(body);
        }
        if !line.contains("ANCHOR:") && !line.contains("ANCHOR_END:") {
            body.push(line);
        }
    }
    None
}

/// Every include names an existing file and, if it names an anchor, an anchor that exists and
/// is not empty.
pub fn includes(root: &Path) -> Vec<Problem> {
    let book_src = root.join("book/src");
    let mut problems = Vec::new();
    for path in chapter_files(&book_src).unwrap_or_default() {
        let file = relative(root, &path);
        let Ok(text) = fs::read_to_string(&path) else {
            problems.push(problem(&file, 1, "cannot read the chapter".to_string()));
            continue;
        };
        let dir = path.parent().unwrap_or(&book_src);
        for (line, target, selector) in include_directives(&text) {
            let target_path = dir.join(&target);
            let Ok(source) = fs::read_to_string(&target_path) else {
                problems.push(problem(
                    &file,
                    line,
                    format!("includes `{target}`, which does not exist"),
                ));
                continue;
            };
            let Some(anchor) = selector else {
                continue;
            };
            let is_range = anchor
                .split(':')
                .all(|p| p.is_empty() || p.chars().all(|c| c.is_ascii_digit()));
            if is_range {
                continue;
            }
            match anchored_lines(&source, &anchor) {
                None => problems.push(problem(
                    &file,
                    line,
                    format!(
                        "includes `{target}:{anchor}`, but `{target}` has no `ANCHOR: {anchor}` \
                         ... `ANCHOR_END: {anchor}`"
                    ),
                )),
                Some(body) if body.iter().all(|l| l.trim().is_empty()) => problems.push(problem(
                    &file,
                    line,
                    format!("includes `{target}:{anchor}`, but the anchor is empty"),
                )),
                Some(_) => {}
            }
        }
    }
    problems
}

/// The figure names a chapter refers to as `figures/NAME.svg`, with their lines.
pub fn figure_references(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (event, range) in Parser::new_ext(text, markdown_options()).into_offset_iter() {
        let url = match &event {
            Event::Start(Tag::Image { dest_url, .. }) => dest_url.to_string(),
            Event::Html(html) | Event::InlineHtml(html) => {
                let Some(at) = html.find("figures/") else {
                    continue;
                };
                html[at..]
                    .split(['"', '\'', ' ', ')', '>'])
                    .next()
                    .unwrap_or("")
                    .to_string()
            }
            _ => continue,
        };
        if let Some(at) = url.find("figures/") {
            let name = url[at + "figures/".len()..]
                .trim_end_matches(".svg")
                .to_string();
            out.push((line_of(text, range.start), name));
        }
    }
    out
}

/// Every figure a chapter shows is one that [`figures`] draws (or the attention explorer's data
/// file, which the build writes next to them).
pub fn figure_links(root: &Path) -> Vec<Problem> {
    let book_src = root.join("book/src");
    let known: Vec<&str> = figures::names()
        .chain(std::iter::once(super::appendix::DATA_FILE))
        .collect();
    let mut problems = Vec::new();
    for path in chapter_files(&book_src).unwrap_or_default() {
        let file = relative(root, &path);
        let text = fs::read_to_string(&path).unwrap_or_default();
        for (line, name) in figure_references(&text) {
            if !known.contains(&name.as_str()) {
                problems.push(problem(
                    &file,
                    line,
                    format!(
                        "shows `figures/{name}.svg`, but no figure has that name (known: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_must_be_opened_closed_and_non_empty() {
        let src = "a\n// ANCHOR: f\nfn f() {}\n// ANCHOR_END: f\n// ANCHOR: empty\n\n// ANCHOR_END: empty\n// ANCHOR: open\n";
        assert_eq!(anchored_lines(src, "f"), Some(vec!["fn f() {}"]));
        assert_eq!(anchored_lines(src, "empty"), Some(vec![""]));
        assert_eq!(anchored_lines(src, "open"), None);
        assert_eq!(anchored_lines(src, "missing"), None);
        assert_eq!(
            anchored_lines("// ANCHOR: ff\nx\n// ANCHOR_END: ff\n", "f"),
            None
        );
        // markers of other anchors inside are left out, as mdBook leaves them out
        let nested = "// ANCHOR: outer\n// ANCHOR: inner\nx\n// ANCHOR_END: inner\ny\n// ANCHOR_END: outer\n";
        assert_eq!(anchored_lines(nested, "outer"), Some(vec!["x", "y"]));
        assert_eq!(anchored_lines(nested, "inner"), Some(vec!["x"]));
    }

    #[test]
    fn include_directives_are_found_with_their_lines() {
        let text = "x\n```rust\n{{#include ../../src/a.rs:attention}}\n```\n\\{{#include nope.rs}}\n{{#include b.rs:3:9}}\n";
        assert_eq!(
            include_directives(text),
            vec![
                (
                    3,
                    "../../src/a.rs".to_string(),
                    Some("attention".to_string())
                ),
                (6, "b.rs".to_string(), Some("3:9".to_string()))
            ]
        );
        // a directive may open the text
        assert_eq!(
            include_directives("{{#include a.rs}}"),
            vec![(1, "a.rs".to_string(), None)]
        );
    }

    /// A small book with one problem of each kind, in a fresh directory.
    fn broken_book(name: &str) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("aiayn-check-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (file, text) in [
            (
                "book/src/SUMMARY.md",
                "# Summary\n\n- [A](a.md)\n- [Gone](gone.md#part)\n- [Draft]()\n",
            ),
            (
                "book/src/a.md",
                "# A\n{{#include ../../src/x.rs:good}}\n{{#include ../../src/x.rs:empty}}\n\
                 {{#include ../../src/x.rs:nothere}}\n{{#include ../../src/x.rs:3:4}}\n\
                 {{#include ../../src/missing.rs}}\n{{#include ../../src/x.rs}}\n\n\
                 ![a](figures/pe-curves.svg)\n\n![b](figures/no-such.svg)\n\n\
                 <script src=\"figures/attention-explorer-data.js\"></script>\n",
            ),
            ("book/src/sub/orphan.md", "# Orphan\n"),
            (
                "src/x.rs",
                "// ANCHOR: good\nfn f() {}\n// ANCHOR_END: good\n// ANCHOR: empty\n\n// ANCHOR_END: empty\n",
            ),
        ] {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        root
    }

    fn shown(problems: Vec<Problem>) -> Vec<String> {
        problems.iter().map(Problem::to_string).collect()
    }

    #[test]
    fn each_whole_book_check_names_its_problems_by_file_and_line() {
        let root = broken_book("all");
        assert_eq!(
            shown(summary(&root)),
            [
                "book/src/SUMMARY.md:4: lists `gone.md`, which does not exist in book/src",
                "book/src/sub/orphan.md:1: chapter file `sub/orphan.md` is not listed in SUMMARY.md",
            ]
        );
        assert_eq!(
            shown(includes(&root)),
            [
                "book/src/a.md:3: includes `../../src/x.rs:empty`, but the anchor is empty",
                "book/src/a.md:4: includes `../../src/x.rs:nothere`, but `../../src/x.rs` has no \
                 `ANCHOR: nothere` ... `ANCHOR_END: nothere`",
                "book/src/a.md:6: includes `../../src/missing.rs`, which does not exist",
            ]
        );
        let figures = shown(figure_links(&root));
        assert_eq!(figures.len(), 1, "{figures:?}");
        assert!(
            figures[0].starts_with(
                "book/src/a.md:11: shows `figures/no-such.svg`, but no figure has that name \
                 (known: "
            ) && figures[0].contains("pe-curves, "),
            "{figures:?}"
        );
        fs::remove_file(root.join("book/src/SUMMARY.md")).unwrap();
        assert_eq!(
            shown(summary(&root)),
            ["book/src/SUMMARY.md:1: the book has no SUMMARY.md"]
        );
        assert!(summary_chapters(&root).is_empty());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn figure_references_come_from_images() {
        let text = "![PE](figures/pe-curves.svg)\n\n<img src=\"figures/lrate.svg\" alt=\"x\">\n\n`figures/not-this.svg`\n";
        assert_eq!(
            figure_references(text),
            vec![(1, "pe-curves".to_string()), (3, "lrate".to_string())]
        );
    }
}
