//! The equation registry: which display equation of the book is computed by which function and
//! checked by which tests.
//!
//! Four sources name equations by id (`eq:attention`, `eq:lrate`, ...), each with its own
//! marker, and this module reads all four:
//!
//! | where | marker | meaning |
//! |---|---|---|
//! | `book/src/*.md` | `$$ ... $$` then, on the next non-blank line, `{{#verify eq:ID}}` | the equation and its id |
//! | `src/**/*.rs` | a `///` line containing ``(`eq:ID`)`` | the next `fn` implements eq:ID |
//! | `tests/**/*.rs`, `src/**/*.rs` | `// verifies: eq:ID[, eq:ID2] (KIND)` | the next `fn NAME(` is a test of that kind |
//! | `fixtures/*.json` | top-level `"equation": "eq:ID"` | a golden check; with `"gradients"`, also a gradient check |
//!
//! KIND is one of `property`, `example`, `golden`, `gradient`. The same scan serves the book's
//! preprocessor, which draws a box under each equation, and `tests/book.rs`, which fails when an
//! equation has no id, an id has no implementation or no test, or a name points at nothing.
//! Chapters are parsed with pulldown-cmark, so a `$$` inside a code block is not an equation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// How a test checks an equation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// An invariant checked on many generated inputs.
    Property,
    /// A worked example with known numbers.
    Example,
    /// Agreement with an independent implementation (PyTorch) on stored inputs and outputs.
    Golden,
    /// Gradients checked against finite differences or autograd.
    Gradient,
}

impl Kind {
    /// Every kind, in the order the book lists them.
    pub const ALL: [Kind; 4] = [Kind::Property, Kind::Example, Kind::Golden, Kind::Gradient];

    /// The word used in `// verifies:` comments.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Property => "property",
            Kind::Example => "example",
            Kind::Golden => "golden",
            Kind::Gradient => "gradient",
        }
    }

    fn parse(word: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == word)
    }
}

/// A file (relative to the crate root, with `/` separators) and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A display equation of the book and the id under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equation {
    pub id: String,
    /// The chapter file, relative to `book/src` (for example `scaled-dot-product.md`).
    pub chapter: String,
    /// Where the `$$` starts.
    pub at: Location,
    /// The LaTeX between the dollars.
    pub latex: String,
}

/// A function that computes an equation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Implementation {
    pub id: String,
    /// `name` or `Type::name`.
    pub item: String,
    /// The line of the `fn`.
    pub at: Location,
}

/// A test, or a golden fixture file, that checks an equation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub id: String,
    pub kind: Kind,
    /// The test function's name, or the fixture's file name.
    pub name: String,
    /// True for a file in `fixtures/` rather than a test function.
    pub fixture: bool,
    pub at: Location,
}

/// Something wrong with the registry, with the place to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub at: Location,
    pub id: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}: {id}: {}", self.at, self.message),
            None => write!(f, "{}: {}", self.at, self.message),
        }
    }
}

/// What one chapter says about equations, with byte ranges into the text that was scanned.
#[derive(Clone, Debug, Default)]
pub struct ChapterScan {
    /// Display equations that carry an id, with the range of their `{{#verify ...}}` marker.
    pub labelled: Vec<(Equation, Range<usize>)>,
    /// Display equations with no `{{#verify}}` on the next non-blank line.
    pub unlabelled: Vec<Problem>,
    /// `{{#verify}}` markers that do not follow a display equation, or name a malformed id.
    pub stray: Vec<Problem>,
    /// Byte ranges of every `{{#verification-table}}` outside code.
    pub tables: Vec<Range<usize>>,
}

/// The markdown extensions mdBook's HTML renderer uses, plus math.
pub fn markdown_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_DEFINITION_LIST
        | Options::ENABLE_GFM
        | Options::ENABLE_MATH
}

const VERIFY: &str = "{{#verify";
const TABLE: &str = "{{#verification-table}}";

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// True for `eq:` followed by lowercase letters, digits and single hyphens.
pub fn is_valid_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("eq:") else {
        return false;
    };
    !rest.is_empty()
        && !rest.starts_with('-')
        && !rest.ends_with('-')
        && !rest.contains("--")
        && rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Byte ranges of code (fenced, indented, inline) in a chapter: markers inside them are text.
fn code_ranges(text: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut open: Option<usize> = None;
    for (event, range) in Parser::new_ext(text, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(_)) => open = Some(range.start),
            Event::End(TagEnd::CodeBlock) => {
                if let Some(start) = open.take() {
                    ranges.push(start..range.end);
                }
            }
            Event::Code(_) => ranges.push(range),
            _ => {}
        }
    }
    ranges
}

/// Finds the display equations of one chapter and the `{{#verify eq:ID}}` under each.
///
/// `chapter` is the file name relative to `book/src`, `file` the same relative to the crate
/// root (used in locations).
pub fn scan_chapter(chapter: &str, file: &str, text: &str) -> ChapterScan {
    let mut scan = ChapterScan::default();
    let code = code_ranges(text);
    let in_code = |at: usize| code.iter().any(|r| r.contains(&at));
    let loc = |offset: usize| Location {
        file: file.to_string(),
        line: line_of(text, offset),
    };
    let mut claimed = BTreeSet::new();
    for (event, range) in Parser::new_ext(text, markdown_options()).into_offset_iter() {
        let Event::DisplayMath(latex) = event else {
            continue;
        };
        let after = range.end;
        let rest = &text[after..];
        let marker_start = after + (rest.len() - rest.trim_start().len());
        let rest = &text[marker_start..];
        if !rest.starts_with(VERIFY) {
            scan.unlabelled.push(Problem {
                at: loc(range.start),
                id: None,
                message: format!(
                    "display equation without an id: put `{{{{#verify eq:ID}}}}` on the next \
                     non-blank line after `$${}$$`",
                    abbreviate(&latex)
                ),
            });
            continue;
        }
        let Some(len) = rest.find("}}") else {
            scan.stray.push(Problem {
                at: loc(marker_start),
                id: None,
                message: "`{{#verify` is not closed by `}}`".to_string(),
            });
            continue;
        };
        let marker = marker_start..marker_start + len + 2;
        claimed.insert(marker_start);
        let id = text[marker_start + VERIFY.len()..marker_start + len].trim();
        if !is_valid_id(id) {
            scan.stray.push(Problem {
                at: loc(marker_start),
                id: Some(id.to_string()),
                message: "not a valid equation id (expected `eq:` then lowercase words joined \
                          by hyphens)"
                    .to_string(),
            });
            continue;
        }
        scan.labelled.push((
            Equation {
                id: id.to_string(),
                chapter: chapter.to_string(),
                at: loc(range.start),
                latex: latex.trim().to_string(),
            },
            marker,
        ));
    }
    for (offset, _) in text.match_indices(VERIFY) {
        let escaped = offset > 0 && text.as_bytes()[offset - 1] == b'\\';
        if claimed.contains(&offset) || escaped || in_code(offset) {
            continue;
        }
        scan.stray.push(Problem {
            at: loc(offset),
            id: None,
            message: "`{{#verify}}` must be on the first non-blank line after a `$$ ... $$` \
                      display equation"
                .to_string(),
        });
    }
    for (offset, _) in text.match_indices(TABLE) {
        let escaped = offset > 0 && text.as_bytes()[offset - 1] == b'\\';
        if !escaped && !in_code(offset) {
            scan.tables.push(offset..offset + TABLE.len());
        }
    }
    let mut seen = BTreeMap::new();
    for (eq, _) in &scan.labelled {
        if let Some(first) = seen.insert(eq.id.clone(), eq.at.line) {
            scan.stray.push(Problem {
                at: eq.at.clone(),
                id: Some(eq.id.clone()),
                message: format!(
                    "this id already labels the equation at line {first} of the same chapter"
                ),
            });
        }
    }
    scan
}

fn abbreviate(latex: &str) -> String {
    let one_line: String = latex.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}...", one_line.chars().take(57).collect::<String>())
    } else {
        one_line
    }
}

/// Every id written as an implementation marker on a line, in order.
fn implementation_ids(line: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("(`eq:") {
        let after = &rest[start + 2..];
        match after.find("`)") {
            Some(end) => {
                ids.push(after[..end].to_string());
                rest = &after[end..];
            }
            None => break,
        }
    }
    ids
}

/// The name in a line such as `pub fn name<T>(...)` or `    fn name(`; `None` if no `fn`.
fn fn_name(line: &str) -> Option<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut words = code.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word == "fn" {
            let next = words.peek()?;
            let name: String = next
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            return (!name.is_empty()).then_some(name);
        }
    }
    None
}

/// The type of an `impl` header line: `impl<T: X> Name<T> {` and `impl Tr for Name {` give `Name`.
fn impl_type(line: &str) -> Option<String> {
    let rest = line.strip_prefix("impl")?;
    if !(rest.starts_with('<') || rest.starts_with(' ')) {
        return None;
    }
    let mut depth = 0usize;
    let mut head = String::new();
    for c in rest.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            '{' if depth == 0 => break,
            _ if depth == 0 => head.push(c),
            _ => {}
        }
    }
    let head = head.split(" where ").next().unwrap_or("");
    let ty = head.rsplit(" for ").next().unwrap_or(head).trim();
    let name: String = ty
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Scans one Rust file for implementation markers and `// verifies:` comments.
pub fn scan_rust(
    file: &str,
    text: &str,
    implementations: &mut Vec<Implementation>,
    verifications: &mut Vec<Verification>,
    problems: &mut Vec<Problem>,
) {
    let lines: Vec<&str> = text.lines().collect();
    let loc = |i: usize| Location {
        file: file.to_string(),
        line: i + 1,
    };
    // The nearest next `fn` at or after line `from`, within a short window.
    let next_fn = |from: usize| {
        (from..lines.len().min(from + 40)).find_map(|j| fn_name(lines[j]).map(|name| (j, name)))
    };
    let mut current_impl: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("impl") {
            current_impl = impl_type(line);
        } else if line.starts_with('}') || line.starts_with("pub ") || line.starts_with("fn ") {
            current_impl = None;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("///") {
            for id in implementation_ids(trimmed) {
                if !is_valid_id(&id) {
                    problems.push(Problem {
                        at: loc(i),
                        id: Some(id),
                        message: "not a valid equation id".to_string(),
                    });
                    continue;
                }
                match next_fn(i + 1) {
                    Some((j, name)) => {
                        let indented = lines[j].starts_with(char::is_whitespace);
                        let item = match (&current_impl, indented) {
                            (Some(ty), true) => format!("{ty}::{name}"),
                            _ => name,
                        };
                        implementations.push(Implementation {
                            id,
                            item,
                            at: loc(j),
                        });
                    }
                    None => problems.push(Problem {
                        at: loc(i),
                        id: Some(id),
                        message: "implementation marker with no `fn` after it".to_string(),
                    }),
                }
            }
        } else if let Some(pos) = trimmed.find("// verifies:") {
            if pos != 0 {
                continue;
            }
            let spec = trimmed["// verifies:".len()..].trim();
            let parsed = parse_verifies(spec);
            let (ids, kind) = match parsed {
                Ok(v) => v,
                Err(message) => {
                    problems.push(Problem {
                        at: loc(i),
                        id: None,
                        message,
                    });
                    continue;
                }
            };
            match next_fn(i + 1) {
                Some((j, name)) => {
                    for id in ids {
                        verifications.push(Verification {
                            id,
                            kind,
                            name: name.clone(),
                            fixture: false,
                            at: loc(j),
                        });
                    }
                }
                None => problems.push(Problem {
                    at: loc(i),
                    id: ids.first().cloned(),
                    message: "`// verifies:` comment with no test `fn` after it".to_string(),
                }),
            }
        }
    }
}

/// `eq:a, eq:b (kind)` -> ([eq:a, eq:b], kind).
fn parse_verifies(spec: &str) -> Result<(Vec<String>, Kind), String> {
    let usage = "expected `// verifies: eq:ID[, eq:ID2] (property|example|golden|gradient)`";
    let (ids, kind) = spec
        .rsplit_once('(')
        .ok_or_else(|| format!("no kind in `{spec}`: {usage}"))?;
    let kind = kind.trim().trim_end_matches(')').trim();
    let kind = Kind::parse(kind).ok_or_else(|| format!("unknown kind `{kind}`: {usage}"))?;
    let ids: Vec<String> = ids
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() {
        return Err(format!("no equation id in `{spec}`: {usage}"));
    }
    if let Some(bad) = ids.iter().find(|id| !is_valid_id(id)) {
        return Err(format!("`{bad}` is not an equation id: {usage}"));
    }
    Ok((ids, kind))
}

/// Everything the book, the library, the tests and the fixtures say about equations.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    /// Labelled display equations, in chapter order (SUMMARY order when available).
    pub equations: Vec<Equation>,
    pub implementations: Vec<Implementation>,
    pub verifications: Vec<Verification>,
    /// Malformed markers, unlabelled equations, stray `{{#verify}}`s: found while scanning.
    pub scan_problems: Vec<Problem>,
}

impl Registry {
    /// Reads `book/src/**/*.md`, `src/**/*.rs`, `tests/**/*.rs` and `fixtures/*.json` under
    /// the crate root.
    ///
    /// # Errors
    /// If a directory or file cannot be read; the message names it.
    pub fn scan(root: &Path) -> io::Result<Registry> {
        let mut registry = Registry::default();
        let book_src = root.join("book").join("src");
        for path in chapter_files(&book_src)? {
            let chapter = relative(&book_src, &path);
            let file = relative(root, &path);
            let text = read(&path)?;
            let scan = scan_chapter(&chapter, &file, &text);
            registry
                .equations
                .extend(scan.labelled.into_iter().map(|(eq, _)| eq));
            registry.scan_problems.extend(scan.unlabelled);
            registry.scan_problems.extend(scan.stray);
        }
        let mut rust_files = Vec::new();
        for dir in ["src", "tests"] {
            collect_files(&root.join(dir), "rs", &mut rust_files)?;
        }
        rust_files.sort();
        for path in rust_files {
            let text = read(&path)?;
            scan_rust(
                &relative(root, &path),
                &text,
                &mut registry.implementations,
                &mut registry.verifications,
                &mut registry.scan_problems,
            );
        }
        registry.scan_fixtures(root)?;
        Ok(registry)
    }

    fn scan_fixtures(&mut self, root: &Path) -> io::Result<()> {
        let dir = root.join("fixtures");
        if !dir.is_dir() {
            return Ok(());
        }
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| with_path(e, &dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        files.sort();
        for path in files {
            let file = relative(root, &path);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let at = Location {
                file: file.clone(),
                line: 1,
            };
            let value: serde_json::Value = match serde_json::from_str(&read(&path)?) {
                Ok(v) => v,
                Err(e) => {
                    self.scan_problems.push(Problem {
                        at,
                        id: None,
                        message: format!("not valid JSON: {e}"),
                    });
                    continue;
                }
            };
            let ids: Vec<String> = match value.get("equation") {
                // An empty id: the fixture checks something that is not a display equation
                // (a parameter count, say).
                Some(serde_json::Value::String(id)) if id.is_empty() => continue,
                Some(serde_json::Value::Null) => continue,
                Some(serde_json::Value::String(id)) => vec![id.clone()],
                Some(serde_json::Value::Array(ids)) => ids
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => {
                    self.scan_problems.push(Problem {
                        at,
                        id: None,
                        message: "golden fixture without a top-level \"equation\" id".to_string(),
                    });
                    continue;
                }
            };
            let has_gradients = value.get("gradients").is_some();
            for id in ids {
                if !is_valid_id(&id) {
                    self.scan_problems.push(Problem {
                        at: at.clone(),
                        id: Some(id),
                        message: "\"equation\" is not a valid equation id".to_string(),
                    });
                    continue;
                }
                let kinds: &[Kind] = if has_gradients {
                    &[Kind::Golden, Kind::Gradient]
                } else {
                    &[Kind::Golden]
                };
                for &kind in kinds {
                    self.verifications.push(Verification {
                        id: id.clone(),
                        kind,
                        name: name.clone(),
                        fixture: true,
                        at: at.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Puts the equations in the order the chapters appear in (chapters not listed go last).
    pub fn order_chapters(&mut self, chapters_in_order: &[String]) {
        let rank = |c: &str| {
            chapters_in_order
                .iter()
                .position(|x| x == c)
                .unwrap_or(usize::MAX)
        };
        self.equations
            .sort_by_key(|e| (rank(&e.chapter), e.at.line));
    }

    /// The distinct equation ids of the book, in order of first appearance.
    pub fn ids(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.equations
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| seen.insert(*id))
            .collect()
    }

    /// The functions that implement `id`.
    pub fn implementations_of<'a>(
        &'a self,
        id: &'a str,
    ) -> impl Iterator<Item = &'a Implementation> {
        self.implementations.iter().filter(move |i| i.id == id)
    }

    /// The tests and fixtures that verify `id` with the given kind.
    pub fn verifications_of<'a>(
        &'a self,
        id: &'a str,
        kind: Kind,
    ) -> impl Iterator<Item = &'a Verification> {
        self.verifications
            .iter()
            .filter(move |v| v.id == id && v.kind == kind)
    }

    /// Every display equation of the book that has no id (file, line).
    pub fn unlabelled_equations(&self) -> Vec<&Problem> {
        self.scan_problems
            .iter()
            .filter(|p| p.message.starts_with("display equation without an id"))
            .collect()
    }

    /// Ids in the book with no implementation.
    pub fn unimplemented(&self) -> Vec<Problem> {
        self.book_ids_without(
            |id| self.implementations_of(id).next().is_none(),
            "no implementation: mark the function's doc comment with (`ID`)",
        )
    }

    /// Ids in the book with no test of any kind.
    pub fn untested(&self) -> Vec<Problem> {
        self.book_ids_without(
            |id| !self.verifications.iter().any(|v| v.id == id),
            "no test: add `// verifies: ID (property|example|golden|gradient)` above a test, \
             or a fixture whose \"equation\" is ID",
        )
    }

    fn book_ids_without(&self, missing: impl Fn(&str) -> bool, message: &str) -> Vec<Problem> {
        let mut seen = BTreeSet::new();
        self.equations
            .iter()
            .filter(|e| seen.insert(e.id.clone()) && missing(&e.id))
            .map(|e| Problem {
                at: e.at.clone(),
                id: Some(e.id.clone()),
                message: message.replace("ID", &e.id),
            })
            .collect()
    }

    /// Ids named in `src/`, `tests/` or `fixtures/` that label no equation of the book.
    pub fn dangling(&self) -> Vec<Problem> {
        let book: BTreeSet<&str> = self.equations.iter().map(|e| e.id.as_str()).collect();
        let from_impls = self
            .implementations
            .iter()
            .map(|i| (&i.id, &i.at, "implemented"));
        let from_tests = self
            .verifications
            .iter()
            .map(|v| (&v.id, &v.at, "verified"));
        let mut seen = BTreeSet::new();
        from_impls
            .chain(from_tests)
            .filter(|(id, at, _)| !book.contains(id.as_str()) && seen.insert((*id, *at)))
            .map(|(id, at, what)| Problem {
                at: at.clone(),
                id: Some(id.clone()),
                message: format!(
                    "{what} here, but no display equation of the book has this id \
                     (`{{{{#verify {id}}}}}`)"
                ),
            })
            .collect()
    }

    /// Every problem: scanning problems, unimplemented, untested and dangling ids.
    pub fn problems(&self) -> Vec<Problem> {
        let mut all = self.scan_problems.clone();
        all.extend(self.unimplemented());
        all.extend(self.untested());
        all.extend(self.dangling());
        all
    }
}

/// The markdown files of the book's source directory, sorted, `SUMMARY.md` excluded.
pub fn chapter_files(book_src: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if book_src.is_dir() {
        collect_files(book_src, "md", &mut files)?;
    }
    files.retain(|p| p.file_name().is_none_or(|n| n != "SUMMARY.md"));
    files.sort();
    Ok(files)
}

/// Every file with extension `ext` under `dir`, recursively (hidden directories skipped).
pub fn collect_files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir).map_err(|e| with_path(e, dir))? {
        let path = entry.map_err(|e| with_path(e, dir))?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, ext, out)?;
        } else if path.extension().is_some_and(|x| x == ext) {
            out.push(path);
        }
    }
    Ok(())
}

/// `path` relative to `base`, with `/` separators.
pub fn relative(base: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(base).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn read(path: &Path) -> io::Result<String> {
    fs::read_to_string(path).map_err(|e| with_path(e, path))
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapters_are_parsed_with_mdbooks_extensions_and_math() {
        // one snippet per extension, and what the parser makes of it only with that extension
        type Seen = fn(&Event) -> bool;
        let cases: [(&str, Seen); 8] = [
            ("| a |\n|---|\n| b |\n", |e| {
                matches!(e, Event::Start(Tag::Table(_)))
            }),
            ("x[^1]\n\n[^1]: y\n", |e| {
                matches!(e, Event::Start(Tag::FootnoteDefinition(_)))
            }),
            ("~~x~~\n", |e| matches!(e, Event::Start(Tag::Strikethrough))),
            ("- [x] done\n", |e| matches!(e, Event::TaskListMarker(true))),
            (
                "# T {#here}\n",
                |e| matches!(e, Event::Start(Tag::Heading { id: Some(id), .. }) if &**id == "here"),
            ),
            ("term\n: meaning\n", |e| {
                matches!(e, Event::Start(Tag::DefinitionList))
            }),
            ("> [!NOTE]\n> x\n", |e| {
                matches!(e, Event::Start(Tag::BlockQuote(Some(_))))
            }),
            ("$x$\n", |e| matches!(e, Event::InlineMath(_))),
        ];
        for (text, found) in cases {
            assert!(
                Parser::new_ext(text, markdown_options()).any(|e| found(&e)),
                "{text:?}"
            );
            assert!(
                !Parser::new(text).any(|e| found(&e)),
                "{text:?} needs no extension"
            );
        }
        // mdBook leaves smart punctuation to the renderer's text: the scans see plain quotes
        assert!(!markdown_options().contains(Options::ENABLE_SMART_PUNCTUATION));
    }

    #[test]
    fn verification_tables_are_found_outside_code_and_escapes() {
        let text =
            format!("{TABLE}\nA\n\n{TABLE}\n\n`{TABLE}`\n\n\\{TABLE}\n\n```\n{TABLE}\n```\n");
        let second = TABLE.len() + 4;
        assert_eq!(
            scan_chapter("c.md", "book/src/c.md", &text).tables,
            vec![0..TABLE.len(), second..second + TABLE.len()]
        );
    }

    #[test]
    fn long_latex_is_shortened_to_60_characters_on_one_line() {
        assert_eq!(abbreviate("a  +\n b"), "a + b");
        let sixty = "x".repeat(60);
        assert_eq!(abbreviate(&sixty), sixty);
        let long = format!("{sixty}y");
        assert_eq!(abbreviate(&long), format!("{}...", "x".repeat(57)));
        // characters, not bytes
        let greek = "α".repeat(61);
        assert_eq!(abbreviate(&greek), format!("{}...", "α".repeat(57)));
    }

    #[test]
    fn an_impl_header_names_its_type_past_braces_in_generics() {
        assert_eq!(
            impl_type("impl Tr<{ 1 }> for Name {").as_deref(),
            Some("Name")
        );
        assert_eq!(
            impl_type("impl<const N: usize> S<{ N + 1 }> {").as_deref(),
            Some("S")
        );
        // the header ends at the body's brace, whatever the line holds after it
        assert_eq!(
            impl_type("impl Snake_case { fn f() { for x in y {} } }").as_deref(),
            Some("Snake_case")
        );
    }

    #[test]
    fn a_problem_names_its_place_then_its_equation() {
        let at = Location {
            file: "book/src/a.md".to_string(),
            line: 7,
        };
        let with = Problem {
            at: at.clone(),
            id: Some("eq:x".to_string()),
            message: "no test".to_string(),
        };
        assert_eq!(with.to_string(), "book/src/a.md:7: eq:x: no test");
        let without = Problem { id: None, ..with };
        assert_eq!(without.to_string(), "book/src/a.md:7: no test");
        assert_eq!(at.to_string(), "book/src/a.md:7");
    }

    #[test]
    fn an_equation_takes_the_id_on_the_next_non_blank_line() {
        let text = "Intro.\n\n$$\nx = 1\n$$\n\n{{#verify eq:one}}\n\n$$y$$\n";
        let scan = scan_chapter("c.md", "book/src/c.md", text);
        assert_eq!(scan.labelled.len(), 1);
        let (eq, marker) = &scan.labelled[0];
        assert_eq!(
            (eq.id.as_str(), eq.at.line, eq.latex.as_str()),
            ("eq:one", 3, "x = 1")
        );
        assert_eq!(&text[marker.clone()], "{{#verify eq:one}}");
        assert_eq!(scan.unlabelled.len(), 1);
        assert_eq!(scan.unlabelled[0].at.line, 9);
    }

    #[test]
    fn markers_in_code_and_escaped_markers_are_not_stray() {
        let text = "```\n$$x$$\n{{#verify eq:a}}\n```\n\n`{{#verify eq:b}}` and \\{{#verify eq:c}}\n\nloose {{#verify eq:d}}\n";
        let scan = scan_chapter("c.md", "book/src/c.md", text);
        assert!(scan.labelled.is_empty() && scan.unlabelled.is_empty());
        assert_eq!(scan.stray.len(), 1);
        assert_eq!(scan.stray[0].at.line, 8);
    }

    /// Each implementation as (id, item, line).
    fn items_of(impls: &[Implementation]) -> Vec<(&str, &str, usize)> {
        impls
            .iter()
            .map(|i| (i.id.as_str(), i.item.as_str(), i.at.line))
            .collect()
    }

    #[test]
    fn rust_markers_name_the_next_fn_and_its_type() {
        let src = "impl<T: RealField> Thing<T> {\n    /// Does it (`eq:a`), also (`eq:b`).\n    ///\n    pub fn forward(&self) {}\n}\n\n/// Free (`eq:c`).\npub fn free<T>() {}\n";
        let tests = "proptest! {\n    #[test]\n    // verifies: eq:a, eq:c (property)\n    fn holds(x in 0..1) {}\n}\n// verifies: eq:b (gradient)\n#[test]\nfn grad() {}\n// verifies: eq:b (guess)\nfn bad() {}\n";
        let (mut impls, mut verifs, mut problems) = (vec![], vec![], vec![]);
        scan_rust("src/x.rs", src, &mut impls, &mut verifs, &mut problems);
        scan_rust("tests/t.rs", tests, &mut impls, &mut verifs, &mut problems);
        let items = items_of(&impls);
        assert_eq!(
            items,
            [
                ("eq:a", "Thing::forward", 4),
                ("eq:b", "Thing::forward", 4),
                ("eq:c", "free", 8)
            ]
        );
        let tests: Vec<_> = verifs
            .iter()
            .map(|v| (v.id.as_str(), v.kind, v.name.as_str()))
            .collect();
        assert_eq!(
            tests,
            [
                ("eq:a", Kind::Property, "holds"),
                ("eq:c", Kind::Property, "holds"),
                ("eq:b", Kind::Gradient, "grad")
            ]
        );
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("unknown kind `guess`"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn ids_are_lowercase_words_joined_by_hyphens() {
        assert!(is_valid_id("eq:label-smoothing"));
        assert!(is_valid_id("eq:ffn2"));
        for bad in [
            "eq:",
            "attention",
            "eq:Attention",
            "eq:a--b",
            "eq:-a",
            "eq:a b",
        ] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_marker_names_the_first_fn_after_it_within_40_lines() {
        // a `}` at column 0 ends an impl (nothing else does here); a fn just before a marker is
        // not the one it names
        let mut src = String::from(
            "impl Kept {\n}\n/// After (`eq:a`).\nmod m {\n    pub fn after() {}\n}\n\
             fn before() {}\n/// Again (`eq:d`).\nfn again() {}\n\
             fn before_test() {}\n// verifies: eq:a (example)\nfn after_test() {}\n",
        );
        // lines 13 and 54: markers whose fn is 40 lines on (found); lines 95 and 137: markers
        // whose fn is 41 lines on (too far: a problem each)
        src.push_str("/// Near (`eq:b`).\n");
        src.push_str(&"\n".repeat(39));
        src.push_str("fn near() {}\n// verifies: eq:b (property)\n");
        src.push_str(&"\n".repeat(39));
        src.push_str("fn near_test() {}\n/// Far (`eq:c`).\n");
        src.push_str(&"\n".repeat(40));
        src.push_str("fn far() {}\n// verifies: eq:c (property)\n");
        src.push_str(&"\n".repeat(40));
        src.push_str("fn far_test() {}\n");
        // a line at column 0 that starts with `pub ` ends an impl too (here one on one line)
        src.push_str("impl Oneline { fn x() {} }\npub mod n {\n    /// In (`eq:e`).\n    pub fn inner() {}\n}\n");
        let (mut impls, mut verifs, mut problems) = (vec![], vec![], vec![]);
        scan_rust("src/y.rs", &src, &mut impls, &mut verifs, &mut problems);
        let items = items_of(&impls);
        assert_eq!(
            items,
            [
                ("eq:a", "after", 5),
                ("eq:d", "again", 9),
                ("eq:b", "near", 53),
                ("eq:e", "inner", 182)
            ]
        );
        let tests: Vec<_> = verifs
            .iter()
            .map(|v| (v.id.as_str(), v.name.as_str(), v.at.to_string()))
            .collect();
        assert_eq!(
            tests,
            [
                ("eq:a", "after_test", "src/y.rs:12".to_string()),
                ("eq:b", "near_test", "src/y.rs:94".to_string())
            ]
        );
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "src/y.rs:95: eq:c: implementation marker with no `fn` after it",
                "src/y.rs:137: eq:c: `// verifies:` comment with no test `fn` after it"
            ]
        );
    }

    /// Writes `files` (path, text) under a fresh directory and returns it.
    fn tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("aiayn-registry-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (file, text) in files {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        root
    }

    #[test]
    fn a_scan_reads_chapters_code_tests_and_fixtures_and_reports_each_gap() {
        let root = tree(
            "scan",
            &[
                ("book/src/SUMMARY.md", "$$\ns\n$$\n"),
                (
                    "book/src/b.md",
                    "# B\n\n$$\nb\n$$\n\n{{#verify eq:b}}\n\n$$\nnone\n$$\n",
                ),
                (
                    "book/src/a.md",
                    "$$\na\n$$\n{{#verify eq:a}}\n\n$$\nc\n$$\n{{#verify eq:c}}\n",
                ),
                (
                    "src/lib.rs",
                    // (one line: a line of this file that starts with `///` is a marker)
                    "/// A (`eq:a`).\npub fn a() {}\n/// B (`eq:b`).\npub fn b() {}\n/// Z (`eq:z`).\npub fn z() {}\n",
                ),
                (
                    "tests/t.rs",
                    "// verifies: eq:a (example)\n#[test]\nfn a_works() {}\n",
                ),
                (
                    "fixtures/f1.json",
                    r#"{"equation": "eq:b", "gradients": {}}"#,
                ),
                ("fixtures/f2.json", r#"{"equation": ["eq:a", 3, "eq:y"]}"#),
                ("fixtures/empty.json", r#"{"equation": ""}"#),
                ("fixtures/null.json", r#"{"equation": null}"#),
                ("fixtures/none.json", r#"{"op": "x"}"#),
                ("fixtures/bad.json", "not json"),
                ("fixtures/badid.json", r#"{"equation": "Eq A"}"#),
                ("fixtures/notes.txt", "{}"),
                ("fixtures/dir.json/inner.json", r#"{"equation": "eq:q"}"#),
            ],
        );
        let mut registry = Registry::scan(&root).unwrap();
        fs::remove_dir_all(&root).unwrap();
        let equations: Vec<_> = registry
            .equations
            .iter()
            .map(|e| {
                (
                    e.id.as_str(),
                    e.chapter.as_str(),
                    e.at.line,
                    e.latex.as_str(),
                )
            })
            .collect();
        assert_eq!(
            equations,
            [
                ("eq:a", "a.md", 1, "a"),
                ("eq:c", "a.md", 6, "c"),
                ("eq:b", "b.md", 3, "b")
            ]
        );
        let items: Vec<_> = registry
            .implementations
            .iter()
            .map(|i| (i.id.as_str(), i.item.as_str(), i.at.to_string()))
            .collect();
        assert_eq!(
            items,
            [
                ("eq:a", "a", "src/lib.rs:2".to_string()),
                ("eq:b", "b", "src/lib.rs:4".to_string()),
                ("eq:z", "z", "src/lib.rs:6".to_string())
            ]
        );
        let tests: Vec<_> = registry
            .verifications
            .iter()
            .map(|v| {
                (
                    v.id.as_str(),
                    v.kind,
                    v.name.as_str(),
                    v.fixture,
                    v.at.to_string(),
                )
            })
            .collect();
        assert_eq!(
            tests,
            [
                (
                    "eq:a",
                    Kind::Example,
                    "a_works",
                    false,
                    "tests/t.rs:3".to_string()
                ),
                (
                    "eq:b",
                    Kind::Golden,
                    "f1.json",
                    true,
                    "fixtures/f1.json:1".to_string()
                ),
                (
                    "eq:b",
                    Kind::Gradient,
                    "f1.json",
                    true,
                    "fixtures/f1.json:1".to_string()
                ),
                (
                    "eq:a",
                    Kind::Golden,
                    "f2.json",
                    true,
                    "fixtures/f2.json:1".to_string()
                ),
                (
                    "eq:y",
                    Kind::Golden,
                    "f2.json",
                    true,
                    "fixtures/f2.json:1".to_string()
                )
            ]
        );
        let shown = |p: &[Problem]| p.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            shown(
                &registry
                    .unlabelled_equations()
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>()
            ),
            [
                "book/src/b.md:9: display equation without an id: put `{{#verify eq:ID}}` on the \
              next non-blank line after `$$none$$`"
            ]
        );
        assert_eq!(
            shown(&registry.problems()),
            [
                "book/src/b.md:9: display equation without an id: put `{{#verify eq:ID}}` on \
                 the next non-blank line after `$$none$$`",
                "fixtures/bad.json:1: not valid JSON: expected ident at line 1 column 2",
                "fixtures/badid.json:1: Eq A: \"equation\" is not a valid equation id",
                "fixtures/none.json:1: golden fixture without a top-level \"equation\" id",
                "book/src/a.md:6: eq:c: no implementation: mark the function's doc comment \
                 with (`eq:c`)",
                "book/src/a.md:6: eq:c: no test: add `// verifies: eq:c \
                 (property|example|golden|gradient)` above a test, or a fixture whose \
                 \"equation\" is eq:c",
                "src/lib.rs:6: eq:z: implemented here, but no display equation of the book has \
                 this id (`{{#verify eq:z}}`)",
                "fixtures/f2.json:1: eq:y: verified here, but no display equation of the book \
                 has this id (`{{#verify eq:y}}`)"
            ]
        );
        // SUMMARY order; a chapter it does not list goes last, its equations in line order
        registry.order_chapters(&["b.md".to_string(), "a.md".to_string()]);
        assert_eq!(registry.ids(), ["eq:b", "eq:a", "eq:c"]);
        registry.order_chapters(&["b.md".to_string()]);
        assert_eq!(registry.ids(), ["eq:b", "eq:a", "eq:c"]);
        registry.order_chapters(&["x.md".to_string(), "a.md".to_string()]);
        assert_eq!(registry.ids(), ["eq:a", "eq:c", "eq:b"]);
    }

    #[test]
    fn a_book_id_without_an_implementation_or_test_is_reported_once() {
        let at = |line| Location {
            file: "book/src/a.md".to_string(),
            line,
        };
        let equation = |id: &str, line| Equation {
            id: id.to_string(),
            chapter: "a.md".to_string(),
            at: at(line),
            latex: String::new(),
        };
        let registry = Registry {
            equations: vec![
                equation("eq:d", 1),
                equation("eq:d", 5),
                equation("eq:e", 9),
            ],
            ..Registry::default()
        };
        let lines = |p: Vec<Problem>| p.into_iter().map(|p| p.at.line).collect::<Vec<_>>();
        assert_eq!(lines(registry.unimplemented()), [1, 9]);
        assert_eq!(lines(registry.untested()), [1, 9]);
    }
}
