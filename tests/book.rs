//! The book's integrity: every equation is labelled, implemented and tested; every include,
//! SUMMARY entry and figure points at something real; and the built HTML has its math
//! rendered and loads nothing from outside the book; search indexes no LaTeX, and no figure
//! shows text smaller than 11 px in the book's column.
//!
//! Each failure lists `file:line: id: what is wrong`, one per line.

#![cfg(feature = "book")]

use std::fs;
use std::path::PathBuf;

use aiayn::book::registry::{Problem, Registry};
use aiayn::book::{check, figures};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn registry() -> Registry {
    let mut registry = Registry::scan(&root()).expect("the registry scans");
    let order: Vec<String> = check::summary_chapters(&root())
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    registry.order_chapters(&order);
    registry
}

fn assert_none(what: &str, problems: &[Problem]) {
    let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s)\n{}",
        problems.len(),
        list.join("\n")
    );
}

#[test]
fn the_book_has_equations() {
    let registry = registry();
    assert!(
        registry.ids().len() >= 10,
        "only {} labelled equations found in book/src: {:?}",
        registry.ids().len(),
        registry.ids()
    );
}

#[test]
fn every_display_equation_has_an_id() {
    let registry = registry();
    let problems: Vec<Problem> = registry
        .scan_problems
        .iter()
        .filter(|p| p.at.file.starts_with("book/"))
        .cloned()
        .collect();
    assert_none("display equations and {{#verify}} markers", &problems);
}

#[test]
fn implementation_and_test_markers_are_well_formed() {
    let registry = registry();
    let problems: Vec<Problem> = registry
        .scan_problems
        .iter()
        .filter(|p| !p.at.file.starts_with("book/"))
        .cloned()
        .collect();
    assert_none("markers in src/, tests/ and fixtures/", &problems);
}

#[test]
fn every_equation_has_an_implementation() {
    assert_none(
        "equations without an implementation",
        &registry().unimplemented(),
    );
}

#[test]
fn every_equation_has_a_test() {
    assert_none("equations without a test", &registry().untested());
}

#[test]
fn every_id_named_in_code_tests_or_fixtures_is_in_the_book() {
    assert_none(
        "ids that label no equation of the book",
        &registry().dangling(),
    );
}

#[test]
fn every_include_names_an_existing_non_empty_anchor() {
    assert_none("{{#include}} directives", &check::includes(&root()));
}

#[test]
fn summary_and_chapter_files_agree() {
    assert_none("SUMMARY.md", &check::summary(&root()));
}

#[test]
fn every_figure_a_chapter_shows_is_drawn_by_the_figure_module() {
    assert_none("figures", &check::figure_links(&root()));
}

/// Removes `<pre>...</pre>`, `<code>...</code>` and `<math>...</math>`, whose text is code or
/// math (with its LaTeX in `alttext`), not prose.
fn without_code(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    loop {
        let next = ["<pre", "<code", "<math"]
            .iter()
            .filter_map(|tag| rest.find(tag).map(|at| (at, *tag)))
            .min();
        let Some((at, tag)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        let close = match tag {
            "<pre" => "</pre>",
            "<code" => "</code>",
            _ => "</math>",
        };
        match rest[at..].find(close) {
            Some(end) => rest = &rest[at + end + close.len()..],
            None => return out,
        }
    }
}

/// The values of `attr` on every `<tag ...>` of a page.
fn attribute_values(html: &str, tag: &str, attr: &str) -> Vec<String> {
    let mut values = Vec::new();
    let open = format!("<{tag}");
    for (at, _) in html.match_indices(&open) {
        let Some(end) = html[at..].find('>') else {
            continue;
        };
        let element = &html[at..at + end];
        let needle = format!(" {attr}=\"");
        if let Some(start) = element.find(&needle) {
            let value = &element[start + needle.len()..];
            values.push(value.split('"').next().unwrap_or("").to_string());
        }
    }
    values
}

/// LaTeX commands (`\frac`, `\mathrm`, ...) in `text`; a backslash doubled by JSON counts
/// as one.
fn latex_commands(text: &str) -> Vec<String> {
    const COMMANDS: [&str; 16] = [
        "frac",
        "mathrm",
        "left",
        "right",
        "sqrt",
        "alpha",
        "epsilon",
        "text",
        "cdot",
        "sum",
        "begin",
        "infty",
        "quad",
        "mathbf",
        "operatorname",
        "times",
    ];
    let mut found = Vec::new();
    for (at, _) in text.match_indices('\\') {
        let word: String = text[at + 1..]
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        if COMMANDS.contains(&word.as_str()) {
            let start = text[..at]
                .char_indices()
                .rev()
                .nth(30)
                .map_or(0, |(i, _)| i);
            let context: String = text[start..].chars().take(60).collect();
            found.push(format!("\\{word} in {context:?}"));
        }
    }
    found
}

fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map_or(0, |at| text[..at].matches('\n').count() + 1)
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aiayn-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_built_book_has_rendered_math_figures_and_nothing_from_outside() {
    let out = fresh_dir("book-test");
    let built = aiayn::book::build(&root(), &out).unwrap_or_else(|e| panic!("{e}"));
    let mut problems = Vec::new();
    let mut pages = 0;
    for entry in fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "html") {
            continue;
        }
        pages += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let html = fs::read_to_string(&path).unwrap();
        let prose = without_code(&html);
        if prose.contains("$$") {
            problems.push(format!("{name}:{}: unrendered `$$`", line_of(&html, "$$")));
        }
        for command in latex_commands(&prose) {
            problems.push(format!("{name}: raw LaTeX in the text: {command}"));
        }
        if html.contains("<merror") {
            problems.push(format!(
                "{name}:{}: math parse error marker <merror>",
                line_of(&html, "<merror")
            ));
        }
        for (tag, attr) in [("script", "src"), ("link", "href"), ("img", "src")] {
            for value in attribute_values(&html, tag, attr) {
                let v = value.to_ascii_lowercase();
                if v.starts_with("http://") || v.starts_with("https://") || v.starts_with("//") {
                    problems.push(format!(
                        "{name}:{}: <{tag} {attr}=\"{value}\"> loads from outside the book",
                        line_of(&html, &value)
                    ));
                }
            }
        }
        for src in attribute_values(&html, "img", "src") {
            if src.contains("figures/") && !out.join(&src).is_file() {
                problems.push(format!("{name}: shows {src}, which was not written"));
            }
        }
    }
    // mdBook indexes the text of every element: the LaTeX of a formula must not be text.
    let mut indexes = 0;
    for entry in fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("searchindex") {
            indexes += 1;
            let index = fs::read_to_string(&path).unwrap();
            for command in latex_commands(&index).into_iter().take(5) {
                problems.push(format!("{name}: LaTeX in the search index: {command}"));
            }
            if !index.contains("α = 0.3") {
                problems.push(format!(
                    "{name}: the formula α = 0.3 is not indexed as text"
                ));
            }
        }
    }
    if indexes == 0 {
        problems.push("no searchindex file was written".to_string());
    }
    let chapter = fs::read_to_string(out.join("scaled-dot-product.html"))
        .expect("the book has a scaled-dot-product chapter");
    if !chapter.contains("<math") {
        problems.push("scaled-dot-product.html: no <math> element".to_string());
    }
    for id in registry().ids() {
        let eq = registry()
            .equations
            .iter()
            .find(|e| e.id == id)
            .cloned()
            .unwrap();
        let page = out.join(eq.chapter.replace(".md", ".html"));
        let html = fs::read_to_string(&page).unwrap_or_default();
        if !html.contains(&format!("id=\"{id}\"")) {
            problems.push(format!(
                "{}: {id}: no verification box with this anchor in {}",
                eq.at,
                page.display()
            ));
        }
    }
    for name in figures::names() {
        if !out.join("figures").join(format!("{name}.svg")).is_file() {
            problems.push(format!("figures/{name}.svg was not written"));
        }
    }
    assert!(pages > 10, "only {pages} pages built");
    assert_eq!(built.figures, figures::ALL.len());
    let _ = fs::remove_dir_all(&out);
    assert!(
        problems.is_empty(),
        "{} problem(s) in the built book:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// The width of the book's content column (`--content-max-width` in `book/theme/aiayn.css`)
/// less a figure's 1 px border on each side: a wider SVG is scaled down to it.
const COLUMN_PX: f64 = 798.0;

/// The `font-size` values (attribute or style) of an SVG.
fn font_sizes(svg: &str) -> Vec<f64> {
    let mut sizes = Vec::new();
    for pattern in ["font-size=\"", "font-size:"] {
        for (at, _) in svg.match_indices(pattern) {
            let number: String = svg[at + pattern.len()..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            if let Ok(size) = number.parse() {
                sizes.push(size);
            }
        }
    }
    sizes
}

#[test]
fn no_figure_text_is_smaller_than_11_px_in_the_column() {
    let mut problems = Vec::new();
    for (name, svg) in figures::draw_all().unwrap() {
        let width: f64 = attribute_values(&svg, "svg", "width")
            .first()
            .and_then(|w| w.trim_end_matches("px").parse().ok())
            .unwrap_or_else(|| panic!("{name}.svg has no width"));
        let scale = (COLUMN_PX / width).min(1.0);
        let sizes = font_sizes(&svg);
        assert!(!sizes.is_empty(), "{name}.svg: no font-size found");
        let smallest = sizes.iter().copied().fold(f64::INFINITY, f64::min);
        if smallest * scale < 11.0 {
            problems.push(format!(
                "{name}.svg: {smallest:.1} px text in a {width} px figure shows at {:.1} px",
                smallest * scale
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A crate root with a one-chapter book, for build failures.
fn tiny_book(name: &str, chapter: &str) -> PathBuf {
    let root = fresh_dir(name);
    fs::create_dir_all(root.join("book/src")).unwrap();
    fs::write(root.join("book/book.toml"), "[book]\ntitle = \"t\"\n").unwrap();
    fs::write(
        root.join("book/src/SUMMARY.md"),
        "# Summary\n\n- [One](one.md)\n",
    )
    .unwrap();
    fs::write(root.join("book/src/one.md"), chapter).unwrap();
    root
}

#[test]
fn a_latex_error_fails_the_build_naming_the_chapter_and_the_expression() {
    let root = tiny_book("bad-math", "# One\n\nFine $x$.\n\n$$\n\\frac{a}\n$$\n");
    let err = aiayn::book::build(&root, &root.join("out"))
        .expect_err("a LaTeX error must fail the build")
        .to_string();
    assert!(err.contains("book/src/one.md:5"), "{err}");
    assert!(err.contains("\\frac{a}"), "{err}");
    // the failed build leaves nothing behind: no output, no half-written sibling
    let names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["book"], "{names:?}");
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn an_unknown_take_this_code_box_fails_the_build_naming_the_chapter_and_the_box() {
    let root = tiny_book(
        "bad-take",
        "# One\n\nText.\n\n{{#take-this-code nothing}}\n",
    );
    let err = aiayn::book::build(&root, &root.join("out"))
        .expect_err("an unknown box must fail the build")
        .to_string();
    assert!(err.contains("chapter \"One\""), "{err}");
    assert!(err.contains("box named \"nothing\""), "{err}");
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn the_build_refuses_to_empty_a_directory_that_is_not_a_book() {
    let root = tiny_book("not-a-book", "# One\n");
    let precious = root.join("precious");
    fs::create_dir_all(&precious).unwrap();
    fs::write(precious.join("keep.txt"), "mine").unwrap();
    let err = aiayn::book::build(&root, &precious)
        .unwrap_err()
        .to_string();
    assert!(err.contains("refusing"), "{err}");
    assert!(precious.join("keep.txt").is_file());
    aiayn::book::build(&root, &root.join("out")).unwrap();
    aiayn::book::build(&root, &root.join("out")).expect("a previous build may be replaced");
    let _ = fs::remove_dir_all(&root);
}
