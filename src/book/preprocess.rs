//! The preprocessors the book is built with, run in-process by the mdBook driver after its
//! own `{{#include}}` pass:
//!
//! 1. [`Equations`] replaces each `{{#verify eq:ID}}` under a display equation with a box naming
//!    the function that computes it and the tests that check it, and expands
//!    `{{#verification-table}}` into the table of every equation.
//! 2. [`Listings`] removes the indentation that code included from inside an `impl` block or
//!    a module brings along, so listings start at the left edge of their box.
//! 3. [`WorkedExample`] expands `{{#worked-example}}` into the numbers of [`super::worked`].
//! 4. [`Math`] turns `$...$` and `$$...$$` into MathML; a LaTeX error fails the build and names
//!    the chapter, the line and the expression.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use mdbook_preprocessor::book::{Book, BookItem, Chapter};
use mdbook_preprocessor::errors::{Error, Result};
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use super::math;
use super::registry::{scan_chapter, Equation, Kind, Registry, Verification};

/// Escapes text for HTML content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The chapter's file relative to `book/src`, with `/` separators.
fn chapter_file(ch: &Chapter) -> Option<String> {
    let p = ch.source_path.as_ref().or(ch.path.as_ref())?;
    Some(super::registry::relative(Path::new(""), p))
}

/// The preprocessor that draws the verification boxes and table.
pub struct Equations {
    pub registry: Registry,
}

impl Preprocessor for Equations {
    fn name(&self) -> &str {
        "aiayn-equations"
    }

    fn run(&self, _ctx: &PreprocessorContext, mut book: Book) -> Result<Book> {
        let titles = chapter_titles(&book);
        book.for_each_chapter_mut(|ch| {
            let Some(file) = chapter_file(ch) else {
                return;
            };
            let scan = scan_chapter(&file, &file, &ch.content);
            let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
            for (eq, marker) in &scan.labelled {
                edits.push((marker.clone(), verify_box(&self.registry, &eq.id)));
            }
            for range in &scan.tables {
                edits.push((range.clone(), verification_table(&self.registry, &titles)));
            }
            edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
            for (range, html) in edits {
                ch.content.replace_range(range, &html);
            }
        });
        Ok(book)
    }
}

/// Chapter file (relative to `book/src`) -> title, in book order.
fn chapter_titles(book: &Book) -> Vec<(String, String)> {
    let mut titles = Vec::new();
    for item in book.iter() {
        if let BookItem::Chapter(ch) = item {
            if let Some(file) = chapter_file(ch) {
                titles.push((file, ch.name.clone()));
            }
        }
    }
    titles
}

/// The HTML page of a chapter file: `a/b.md` -> `a/b.html`.
fn page_of(chapter: &str) -> String {
    match chapter.strip_suffix(".md") {
        Some(stem) => format!("{stem}.html"),
        None => chapter.to_string(),
    }
}

/// Tests of one kind, grouped by file: `file -> [names]`.
fn by_file<'a>(tests: impl Iterator<Item = &'a Verification>) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tests {
        let (file, name) = if t.fixture {
            ("fixtures/".to_string(), t.name.clone())
        } else {
            (t.at.file.clone(), t.name.clone())
        };
        let names = groups.entry(file).or_default();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    groups
}

/// Up to this many tests of one kind are listed in the box; more fold into a summary.
const INLINE_TESTS: usize = 4;

/// The box under an equation. An HTML block with no blank line inside, followed by a blank
/// line so that markdown resumes after it.
pub fn verify_box(registry: &Registry, id: &str) -> String {
    let e = html_escape(id);
    let impls: Vec<_> = registry.implementations_of(id).collect();
    let tested = registry.verifications.iter().any(|v| v.id == id);
    let status = if impls.is_empty() || !tested {
        " verify-incomplete"
    } else {
        ""
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<div class=\"verify{status}\" id=\"{e}\">\n<div class=\"verify-title\"><a class=\"verify-id\" href=\"#{e}\">{e}</a></div>\n"
    );
    html.push_str("<div class=\"verify-row\"><span class=\"verify-label\">Implemented by</span><span class=\"verify-items\">");
    if impls.is_empty() {
        html.push_str("<span class=\"verify-missing\">no implementation yet</span>");
    }
    for (n, i) in impls.iter().enumerate() {
        if n > 0 {
            html.push_str(", ");
        }
        let _ = write!(
            html,
            "<code>{}</code> <span class=\"verify-loc\">{}</span>",
            html_escape(&i.item),
            html_escape(&i.at.to_string())
        );
    }
    html.push_str("</span></div>\n");
    html.push_str("<div class=\"verify-row\"><span class=\"verify-label\">Verified by</span><span class=\"verify-items\">");
    if !tested {
        html.push_str("<span class=\"verify-missing\">no test yet</span>");
    }
    for kind in Kind::ALL {
        let groups = by_file(registry.verifications_of(id, kind));
        if groups.is_empty() {
            continue;
        }
        let _ = write!(
            html,
            "<span class=\"verify-group\"><span class=\"verify-kind verify-kind-{k}\">{k}</span><span class=\"verify-tests\">",
            k = kind.name()
        );
        let count: usize = groups.values().map(Vec::len).sum();
        let inline: Vec<String> = groups
            .iter()
            .map(|(file, names)| {
                let names: Vec<String> = names
                    .iter()
                    .map(|n| format!("<code>{}</code>", html_escape(n)))
                    .collect();
                format!(
                    "{} <span class=\"verify-loc\">({})</span>",
                    names.join(", "),
                    html_escape(file)
                )
            })
            .collect();
        if count <= INLINE_TESTS {
            html.push_str(&inline.join("; "));
        } else {
            // Many tests: a one-line summary that opens to the full list.
            let noun = if kind == Kind::Golden || kind == Kind::Gradient {
                "checks"
            } else {
                "tests"
            };
            let files: Vec<String> = groups.keys().map(|f| html_escape(f)).collect();
            let _ = write!(
                html,
                "<details class=\"verify-more\"><summary>{count} {noun} <span class=\"verify-loc\">({})</span></summary><ul>",
                files.join(", ")
            );
            for item in &inline {
                let _ = write!(html, "<li>{item}</li>");
            }
            html.push_str("</ul></details>");
        }
        html.push_str("</span></span>");
    }
    html.push_str("</span></div>\n</div>\n\n");
    html
}

/// The table of every equation, for the Verification chapter.
pub fn verification_table(registry: &Registry, titles: &[(String, String)]) -> String {
    let title_of = |chapter: &str| {
        titles
            .iter()
            .find(|(f, _)| f == chapter)
            .map_or(chapter.to_string(), |(_, t)| t.clone())
    };
    let rank = |chapter: &str| {
        titles
            .iter()
            .position(|(f, _)| f == chapter)
            .unwrap_or(usize::MAX)
    };
    let mut equations: Vec<&Equation> = Vec::new();
    for eq in &registry.equations {
        if !equations.iter().any(|e| e.id == eq.id) {
            equations.push(eq);
        }
    }
    equations.sort_by_key(|e| (rank(&e.chapter), e.chapter.clone(), e.at.line));
    let (mut complete, total) = (0, equations.len());
    let mut rows = String::new();
    for eq in &equations {
        let id = html_escape(&eq.id);
        let page = html_escape(&page_of(&eq.chapter));
        let impls: Vec<String> = registry
            .implementations_of(&eq.id)
            .map(|i| {
                format!(
                    "<code>{}</code><br><span class=\"verify-loc\">{}</span>",
                    html_escape(&i.item),
                    html_escape(&i.at.to_string())
                )
            })
            .collect();
        let _ = write!(
            rows,
            "<tr><td><a href=\"{page}#{id}\"><code>{id}</code></a><div class=\"verify-chapter\"><a href=\"{page}\">{}</a></div></td><td>{}</td>",
            html_escape(&title_of(&eq.chapter)),
            if impls.is_empty() {
                "<span class=\"verify-missing\">none</span>".to_string()
            } else {
                impls.join("<br>")
            }
        );
        let mut any = false;
        for kind in Kind::ALL {
            let tests: Vec<&Verification> = registry.verifications_of(&eq.id, kind).collect();
            any |= !tests.is_empty();
            if tests.is_empty() {
                rows.push_str("<td class=\"verify-count\">&#8212;</td>");
                continue;
            }
            let names: Vec<String> = by_file(tests.iter().copied())
                .into_iter()
                .flat_map(|(file, names)| names.into_iter().map(move |n| format!("{file}: {n}")))
                .collect();
            let _ = write!(
                rows,
                "<td class=\"verify-count\" title=\"{}\">{}</td>",
                html_escape(&names.join("\n")),
                names.len()
            );
        }
        if any && registry.implementations_of(&eq.id).next().is_some() {
            complete += 1;
        }
        rows.push_str("</tr>\n");
    }
    let mut html = String::new();
    let _ = write!(
        html,
        "<p class=\"verify-summary\">{complete} of {total} equations have an implementation and at least one test.</p>\n\n"
    );
    html.push_str("<div class=\"table-wrapper\"><table class=\"verification-table\">\n<thead><tr><th>Equation and chapter</th><th>Implemented by</th>");
    for kind in Kind::ALL {
        let _ = write!(html, "<th>{}</th>", kind.name());
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    html.push_str(&rows);
    html.push_str("</tbody>\n</table></div>\n\n");
    html
}

/// The preprocessor that renders LaTeX to MathML.
pub struct Math {
    /// The book's source directory, to read chapters as written for error lines.
    pub src_dir: std::path::PathBuf,
    /// Prefix of chapter paths in error messages (`book/src/`).
    pub display_prefix: String,
}

impl Preprocessor for Math {
    fn name(&self) -> &str {
        "aiayn-math"
    }

    fn run(&self, _ctx: &PreprocessorContext, mut book: Book) -> Result<Book> {
        let mut first_error: Option<math::MathError> = None;
        book.for_each_chapter_mut(|ch| {
            if first_error.is_some() {
                return;
            }
            let Some(file) = chapter_file(ch) else {
                return;
            };
            let original = std::fs::read_to_string(self.src_dir.join(&file)).ok();
            let shown = format!("{}{file}", self.display_prefix);
            match math::render_chapter(&ch.content, &shown, original.as_deref()) {
                Ok(content) => ch.content = content,
                Err(e) => first_error = Some(e),
            }
        });
        match first_error {
            Some(e) => Err(Error::msg(e.to_string())),
            None => Ok(book),
        }
    }
}

/// Runs `expand` on the text of every chapter that contains `directive` and puts the result in
/// its place. The first error stops the build, naming the chapter.
pub fn expand_chapters(
    mut book: Book,
    directive: &str,
    expand: impl Fn(&str) -> std::result::Result<String, String>,
) -> Result<Book> {
    let mut error = None;
    book.for_each_chapter_mut(|ch| {
        if error.is_none() && ch.content.contains(directive) {
            match expand(&ch.content) {
                Ok(content) => ch.content = content,
                Err(e) => error = Some(format!("chapter {:?}: {e}", ch.name)),
            }
        }
    });
    match error {
        Some(e) => Err(Error::msg(e)),
        None => Ok(book),
    }
}

/// Expands `{{#worked-example}}` into the worked example's tables, computed from the committed
/// model when the book is built.
pub struct WorkedExample;

/// The directive [`WorkedExample`] replaces.
pub const WORKED_EXAMPLE: &str = "{{#worked-example}}";

impl Preprocessor for WorkedExample {
    fn name(&self) -> &str {
        "aiayn-worked-example"
    }

    fn run(&self, _ctx: &PreprocessorContext, mut book: Book) -> Result<Book> {
        let mut error = None;
        book.for_each_chapter_mut(|ch| {
            if error.is_none() && ch.content.contains(WORKED_EXAMPLE) {
                match super::worked::markdown() {
                    Ok(md) => ch.content = ch.content.replace(WORKED_EXAMPLE, &md),
                    Err(e) => error = Some(format!("the worked example: {e}")),
                }
            }
        });
        match error {
            Some(e) => Err(Error::msg(e)),
            None => Ok(book),
        }
    }
}

/// The preprocessor that dedents code listings.
pub struct Listings;

impl Preprocessor for Listings {
    fn name(&self) -> &str {
        "aiayn-listings"
    }

    fn run(&self, _ctx: &PreprocessorContext, mut book: Book) -> Result<Book> {
        book.for_each_chapter_mut(|ch| ch.content = dedent_listings(&ch.content));
        Ok(book)
    }
}

/// Removes from each fenced code block (fence at the start of a line) the indentation common to
/// its non-blank lines, as `{{#include file:anchor}}` of a method brings its `impl`'s four
/// spaces. A block indented with tabs, or not at all, is left as it is.
pub fn dedent_listings(text: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let fence_char = match line.chars().next() {
            Some(c @ ('`' | '~')) => c,
            _ => {
                out.push_str(line);
                i += 1;
                continue;
            }
        };
        let fence_len = line.chars().take_while(|&c| c == fence_char).count();
        let closes = |l: &str| {
            let run = l.chars().take_while(|&c| c == fence_char).count();
            run >= fence_len && l[run..].trim().is_empty()
        };
        let Some(end) = (i + 1..lines.len()).find(|&j| closes(lines[j])) else {
            out.push_str(line);
            i += 1;
            continue;
        };
        if fence_len < 3 {
            out.push_str(line);
            i += 1;
            continue;
        }
        let body = &lines[i + 1..end];
        let indent = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start_matches(' ').len())
            .min()
            .unwrap_or(0);
        out.push_str(line);
        for l in body {
            let spaces = l.len() - l.trim_start_matches(' ').len();
            out.push_str(&l[spaces.min(indent)..]);
        }
        out.push_str(lines[end]);
        i = end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::registry::{Implementation, Location};

    fn at(file: &str, line: usize) -> Location {
        Location {
            file: file.to_string(),
            line,
        }
    }

    fn test(id: &str, kind: Kind, name: &str, file: &str, fixture: bool) -> Verification {
        Verification {
            id: id.to_string(),
            kind,
            name: name.to_string(),
            fixture,
            at: at(file, 1),
        }
    }

    fn eq(id: &str, chapter: &str, line: usize) -> Equation {
        Equation {
            id: id.to_string(),
            chapter: chapter.to_string(),
            at: at(&format!("book/src/{chapter}"), line),
            latex: "x".to_string(),
        }
    }

    fn imp(id: &str, item: &str, file: &str, line: usize) -> Implementation {
        Implementation {
            id: id.to_string(),
            item: item.to_string(),
            at: at(file, line),
        }
    }

    /// eq:b (chapter a.md) has one implementation and four examples, as many as a box lists
    /// inline; eq:a (b.md, labelled twice) has two implementations, six property tests in two
    /// files (one named twice) and five golden fixtures; eq:c has nothing. eq:d has only an
    /// implementation and eq:e only a test, and neither is in a chapter.
    fn registry() -> Registry {
        let mut verifications = Vec::new();
        for name in ["b1", "b2", "b3", "b4"] {
            verifications.push(test("eq:b", Kind::Example, name, "tests/e.rs", false));
        }
        for name in ["p1", "p2", "p3", "p2"] {
            verifications.push(test("eq:a", Kind::Property, name, "tests/p.rs", false));
        }
        for name in ["q1", "q2"] {
            verifications.push(test("eq:a", Kind::Property, name, "tests/q.rs", false));
        }
        for name in ["a-1.json", "a-2.json", "a-3.json", "a-4.json", "a-5.json"] {
            verifications.push(test("eq:a", Kind::Golden, name, "fixtures/x", true));
        }
        verifications.push(test("eq:e", Kind::Gradient, "e_grad", "tests/g.rs", false));
        Registry {
            equations: vec![
                eq("eq:a", "b.md", 9),
                eq("eq:b", "a.md", 3),
                eq("eq:a", "b.md", 20),
                eq("eq:c", "z.md", 1),
            ],
            implementations: vec![
                imp("eq:a", "attention", "src/a.rs", 10),
                imp("eq:b", "Thing::b<T>", "src/b.rs", 4),
                imp("eq:a", "attention_f32", "src/a.rs", 40),
                imp("eq:d", "d", "src/d.rs", 1),
            ],
            verifications,
            scan_problems: Vec::new(),
        }
    }

    #[test]
    fn a_verify_box_names_implementations_and_tests_by_file() {
        let r = registry();
        assert_eq!(
            verify_box(&r, "eq:b"),
            r##"<div class="verify" id="eq:b">
<div class="verify-title"><a class="verify-id" href="#eq:b">eq:b</a></div>
<div class="verify-row"><span class="verify-label">Implemented by</span><span class="verify-items"><code>Thing::b&lt;T&gt;</code> <span class="verify-loc">src/b.rs:4</span></span></div>
<div class="verify-row"><span class="verify-label">Verified by</span><span class="verify-items"><span class="verify-group"><span class="verify-kind verify-kind-example">example</span><span class="verify-tests"><code>b1</code>, <code>b2</code>, <code>b3</code>, <code>b4</code> <span class="verify-loc">(tests/e.rs)</span></span></span></span></div>
</div>

"##
        );
        assert_eq!(
            verify_box(&r, "eq:a"),
            r##"<div class="verify" id="eq:a">
<div class="verify-title"><a class="verify-id" href="#eq:a">eq:a</a></div>
<div class="verify-row"><span class="verify-label">Implemented by</span><span class="verify-items"><code>attention</code> <span class="verify-loc">src/a.rs:10</span>, <code>attention_f32</code> <span class="verify-loc">src/a.rs:40</span></span></div>
<div class="verify-row"><span class="verify-label">Verified by</span><span class="verify-items"><span class="verify-group"><span class="verify-kind verify-kind-property">property</span><span class="verify-tests"><details class="verify-more"><summary>5 tests <span class="verify-loc">(tests/p.rs, tests/q.rs)</span></summary><ul><li><code>p1</code>, <code>p2</code>, <code>p3</code> <span class="verify-loc">(tests/p.rs)</span></li><li><code>q1</code>, <code>q2</code> <span class="verify-loc">(tests/q.rs)</span></li></ul></details></span></span><span class="verify-group"><span class="verify-kind verify-kind-golden">golden</span><span class="verify-tests"><details class="verify-more"><summary>5 checks <span class="verify-loc">(fixtures/)</span></summary><ul><li><code>a-1.json</code>, <code>a-2.json</code>, <code>a-3.json</code>, <code>a-4.json</code>, <code>a-5.json</code> <span class="verify-loc">(fixtures/)</span></li></ul></details></span></span></span></div>
</div>

"##
        );
        assert_eq!(
            verify_box(&r, "eq:c"),
            r##"<div class="verify verify-incomplete" id="eq:c">
<div class="verify-title"><a class="verify-id" href="#eq:c">eq:c</a></div>
<div class="verify-row"><span class="verify-label">Implemented by</span><span class="verify-items"><span class="verify-missing">no implementation yet</span></span></div>
<div class="verify-row"><span class="verify-label">Verified by</span><span class="verify-items"><span class="verify-missing">no test yet</span></span></div>
</div>

"##
        );
        // either half missing marks the box incomplete
        for (id, missing) in [("eq:d", "no test yet"), ("eq:e", "no implementation yet")] {
            let b = verify_box(&r, id);
            assert!(
                b.starts_with("<div class=\"verify verify-incomplete\""),
                "{b}"
            );
            assert_eq!(b.matches("verify-missing").count(), 1, "{b}");
            assert!(b.contains(missing), "{b}");
        }
    }

    #[test]
    fn an_equation_is_complete_with_an_implementation_and_a_test_of_any_kind() {
        // eq:e has a test but no implementation, eq:f every kind, eq:g one kind
        let mut verifications = vec![test("eq:e", Kind::Gradient, "e", "tests/e.rs", false)];
        for kind in Kind::ALL {
            verifications.push(test("eq:f", kind, "f", "tests/f.rs", false));
        }
        verifications.push(test("eq:g", Kind::Example, "g", "tests/g.rs", false));
        let registry = Registry {
            equations: vec![
                eq("eq:e", "a.md", 1),
                eq("eq:f", "a.md", 2),
                eq("eq:g", "a.md", 3),
            ],
            implementations: vec![
                imp("eq:f", "f", "src/f.rs", 1),
                imp("eq:g", "f", "src/f.rs", 1),
            ],
            verifications,
            scan_problems: Vec::new(),
        };
        let html = verification_table(&registry, &[]);
        assert!(
            html.starts_with("<p class=\"verify-summary\">2 of 3 equations have an implementation and at least one test.</p>"),
            "{html}"
        );
    }

    #[test]
    fn the_verification_table_lists_each_equation_once_in_chapter_order() {
        let titles = vec![
            ("a.md".to_string(), "Alpha".to_string()),
            ("b.md".to_string(), "Beta & Co".to_string()),
        ];
        assert_eq!(
            verification_table(&registry(), &titles),
            r##"<p class="verify-summary">2 of 3 equations have an implementation and at least one test.</p>

<div class="table-wrapper"><table class="verification-table">
<thead><tr><th>Equation and chapter</th><th>Implemented by</th><th>property</th><th>example</th><th>golden</th><th>gradient</th></tr></thead>
<tbody>
<tr><td><a href="a.html#eq:b"><code>eq:b</code></a><div class="verify-chapter"><a href="a.html">Alpha</a></div></td><td><code>Thing::b&lt;T&gt;</code><br><span class="verify-loc">src/b.rs:4</span></td><td class="verify-count">&#8212;</td><td class="verify-count" title="tests/e.rs: b1
tests/e.rs: b2
tests/e.rs: b3
tests/e.rs: b4">4</td><td class="verify-count">&#8212;</td><td class="verify-count">&#8212;</td></tr>
<tr><td><a href="b.html#eq:a"><code>eq:a</code></a><div class="verify-chapter"><a href="b.html">Beta &amp; Co</a></div></td><td><code>attention</code><br><span class="verify-loc">src/a.rs:10</span><br><code>attention_f32</code><br><span class="verify-loc">src/a.rs:40</span></td><td class="verify-count" title="tests/p.rs: p1
tests/p.rs: p2
tests/p.rs: p3
tests/q.rs: q1
tests/q.rs: q2">5</td><td class="verify-count">&#8212;</td><td class="verify-count" title="fixtures/: a-1.json
fixtures/: a-2.json
fixtures/: a-3.json
fixtures/: a-4.json
fixtures/: a-5.json">5</td><td class="verify-count">&#8212;</td></tr>
<tr><td><a href="z.html#eq:c"><code>eq:c</code></a><div class="verify-chapter"><a href="z.html">z.md</a></div></td><td><span class="verify-missing">none</span></td><td class="verify-count">&#8212;</td><td class="verify-count">&#8212;</td><td class="verify-count">&#8212;</td><td class="verify-count">&#8212;</td></tr>
</tbody>
</table></div>

"##
        );
    }

    #[test]
    fn chapters_are_named_in_book_order_and_pages_are_html() {
        let mut book = Book::new();
        let mut first = Chapter::new("One", String::new(), "one.md", Vec::new());
        first.sub_items.push(BookItem::Chapter(Chapter::new(
            "One, part",
            String::new(),
            "one/part.md",
            vec!["One".to_string()],
        )));
        book.push_item(first);
        book.push_item(Chapter::new_draft("Later", Vec::new()));
        book.push_item(Chapter::new("Two", String::new(), "two.md", Vec::new()));
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            chapter_titles(&book),
            pairs(&[
                ("one.md", "One"),
                ("one/part.md", "One, part"),
                ("two.md", "Two")
            ])
        );
        assert_eq!(page_of("one/part.md"), "one/part.html");
        assert_eq!(page_of("README"), "README");
    }

    #[test]
    fn listings_lose_their_common_indentation_and_nothing_else_changes() {
        let text = "Text\n    indented prose\n\n```rust\n    /// Doc.\n    fn f() {\n\n        1\n    }\n```\n\n~~~\nx\n  y\n~~~\n";
        let out = dedent_listings(text);
        assert_eq!(
            out,
            "Text\n    indented prose\n\n```rust\n/// Doc.\nfn f() {\n\n    1\n}\n```\n\n~~~\nx\n  y\n~~~\n"
        );
        assert_eq!(dedent_listings("```\n  open\n"), "```\n  open\n");
        // a longer fence is a listing too; two backticks are not a fence
        assert_eq!(
            dedent_listings("````md\n  ```\n  x\n  ```\n````\n"),
            "````md\n```\nx\n```\n````\n"
        );
        assert_eq!(dedent_listings("``\n  x\n``\n"), "``\n  x\n``\n");
    }
}
