//! "Take this code": the boxes at the end of chapters that say how to lift one idea out of the
//! library. Each box names the `src/` files to copy, the crates they need (the lines of this
//! crate's own `Cargo.toml`) and a short program that uses them, `book/take/<name>.rs`, with
//! what it prints.
//!
//! [`TAKES`] is the one list the boxes are drawn from ([`TakeThisCode`] expands
//! `{{#take-this-code NAME}}`), the unit tests check against the `use crate::` lines of the
//! files ([`closure`]), and `book/check-take-this-code.sh` builds in a fresh crate
//! ([`write_crate`], [`run_in_fresh_crate`]). A new import in a listed file fails the tests until
//! the box names the file it needs.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mdbook_preprocessor::book::Book;
use mdbook_preprocessor::errors::{Error, Result as BookResult};
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use super::preprocess::html_escape;

/// One box: a name (the directive's argument and the example's file name), what it is, the
/// files relative to `src/`, and the crates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Take {
    pub name: &'static str,
    pub title: &'static str,
    pub files: &'static [&'static str],
    pub crates: &'static [&'static str],
}

/// The package name of the fresh crate, as the examples spell it.
pub const CRATE_NAME: &str = "my_crate";

const NALGEBRA: &[&str] = &["nalgebra"];
const BOTH: &[&str] = &["nalgebra", "rand"];

/// The files of the whole model, `Transformer` (§3), then those a box adds to them. A box's
/// files are compared as a set and shown sorted ([`sorted_files`]).
macro_rules! model_files {
    ($($more:literal),*) => {
        &[
            "attention.rs", "config.rs", "decoder.rs", "dropout.rs", "embedding.rs",
            "encoder.rs", "feed_forward.rs", "init.rs", "layer_norm.rs", "mask.rs", "matmul.rs",
            "model.rs", "multi_head.rs", "params.rs", "positional.rs", "softmax.rs",
            "sublayer.rs", $($more),*
        ]
    };
}

/// Every box, in book order.
pub const TAKES: &[Take] = &[
    Take {
        name: "model",
        title: "the whole Transformer",
        files: model_files!(),
        crates: BOTH,
    },
    Take {
        name: "sublayer",
        title: "layer normalisation and the residual sub-layer connection",
        files: &[
            "dropout.rs",
            "init.rs",
            "layer_norm.rs",
            "params.rs",
            "sublayer.rs",
        ],
        crates: BOTH,
    },
    Take {
        name: "stacks",
        title: "the encoder and decoder stacks",
        files: &[
            "attention.rs",
            "decoder.rs",
            "dropout.rs",
            "encoder.rs",
            "feed_forward.rs",
            "init.rs",
            "layer_norm.rs",
            "mask.rs",
            "matmul.rs",
            "multi_head.rs",
            "params.rs",
            "softmax.rs",
            "sublayer.rs",
        ],
        crates: BOTH,
    },
    Take {
        name: "attention",
        title: "scaled dot-product attention",
        files: &["attention.rs", "mask.rs", "softmax.rs"],
        crates: BOTH,
    },
    Take {
        name: "multi-head",
        title: "multi-head attention",
        files: &[
            "attention.rs",
            "init.rs",
            "mask.rs",
            "matmul.rs",
            "multi_head.rs",
            "params.rs",
            "softmax.rs",
        ],
        crates: BOTH,
    },
    Take {
        name: "masks",
        title: "the causal and padding masks",
        files: &["mask.rs"],
        crates: NALGEBRA,
    },
    Take {
        name: "feed-forward",
        title: "the position-wise feed-forward network",
        files: &["feed_forward.rs", "init.rs", "matmul.rs", "params.rs"],
        crates: BOTH,
    },
    Take {
        name: "embeddings",
        title: "the shared embedding and the generator",
        files: &["embedding.rs", "softmax.rs"],
        crates: BOTH,
    },
    Take {
        name: "positional",
        title: "the positional encodings",
        files: &["positional.rs"],
        crates: NALGEBRA,
    },
    Take {
        name: "optimiser",
        title: "Adam, the Eq. 3 schedule and label smoothing",
        files: &[
            "params.rs",
            "train/adam.rs",
            "train/label_smoothing.rs",
            "train/schedule.rs",
        ],
        crates: NALGEBRA,
    },
    Take {
        name: "training-loop",
        title: "the training loop",
        files: model_files!(
            "train/adam.rs",
            "train/batch.rs",
            "train/label_smoothing.rs",
            "train/schedule.rs",
            "train/tasks.rs",
            "train/trainer.rs"
        ),
        crates: BOTH,
    },
    Take {
        name: "tasks",
        title: "the synthetic tasks and batches by length",
        files: &["train/batch.rs", "train/tasks.rs"],
        crates: &["rand"],
    },
    Take {
        name: "backward",
        title: "the whole model's backward pass and loss",
        files: model_files!("train/label_smoothing.rs"),
        crates: BOTH,
    },
    Take {
        name: "decode",
        title: "greedy decoding and beam search",
        files: model_files!("decode.rs"),
        crates: BOTH,
    },
    Take {
        name: "bleu",
        title: "corpus BLEU",
        files: &["bleu.rs"],
        crates: &[],
    },
];

/// A box's name that is not in [`TAKES`], a file that cannot be read, or a path that cannot be
/// resolved, with the file named.
#[derive(Clone, Debug, PartialEq)]
pub struct TakeError(pub String);

impl fmt::Display for TakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TakeError {}

/// The box called `name`.
pub fn find(name: &str) -> Result<&'static Take, TakeError> {
    TAKES.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = TAKES.iter().map(|t| t.name).collect();
        TakeError(format!(
            "no \"take this code\" box named {name:?}; the boxes are {}",
            names.join(", ")
        ))
    })
}

fn read(path: &Path) -> Result<String, TakeError> {
    fs::read_to_string(path).map_err(|e| TakeError(format!("cannot read {}: {e}", path.display())))
}

/// The example of a box: the program (without its output comment) and what it prints.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// `book/take/<name>.rs`, relative to the crate root.
    pub file: String,
    pub code: String,
    pub output: String,
}

/// The line that starts the output comment at the end of an example file.
const OUTPUT_MARKER: &str = "// Output:";

/// Reads `book/take/<name>.rs`: a program, then `// Output:` and the lines it prints, each
/// after `// `.
pub fn example(root: &Path, take: &Take) -> Result<Example, TakeError> {
    let file = format!("book/take/{}.rs", take.name);
    let text = read(&root.join(&file))?;
    let Some(at) = text.find(&format!("\n{OUTPUT_MARKER}\n")) else {
        return Err(TakeError(format!(
            "{file}: no `{OUTPUT_MARKER}` line after the program, to say what it prints"
        )));
    };
    let mut output = Vec::new();
    for line in text[at + 1..].lines().skip(1) {
        let Some(printed) = line
            .strip_prefix("//")
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
        else {
            return Err(TakeError(format!(
                "{file}: after `{OUTPUT_MARKER}` every line is a comment, found {line:?}"
            )));
        };
        output.push(printed);
    }
    Ok(Example {
        file,
        code: text[..at + 1].to_string(),
        output: output.join("\n"),
    })
}

/// The lines of `code` outside comments: `//` comments (doc comments too) are cut off, string
/// literals are kept (the character literal `'"'` does not open one).
fn code_lines(code: &str) -> Vec<String> {
    code.lines()
        .map(|line| {
            let bytes = line.as_bytes();
            let (mut in_string, mut i) = (false, 0);
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' if in_string => i += 1, // skip the escaped character
                    b'\'' if !in_string && line[i..].starts_with("'\"'") => i += 2,
                    b'"' => in_string = !in_string,
                    b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => {
                        return line[..i].to_string();
                    }
                    _ => {}
                }
                i += 1;
            }
            line.to_string()
        })
        .collect()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The paths that follow `prefix::` in `code` (comments left out), as segments:
/// `use crate::train::adam::Adam;` gives `["train", "adam", "Adam"]` for the prefix `crate`.
/// A group right after the prefix (`crate::{a, b}`) is an error: name the module first
/// (`crate::a::{B, C}` is fine).
pub fn paths_after(code: &str, prefix: &str) -> Result<Vec<Vec<String>>, String> {
    let needle = format!("{prefix}::");
    let mut paths = Vec::new();
    for line in code_lines(code) {
        let bytes = line.as_bytes();
        let mut from = 0;
        while let Some(found) = line[from..].find(&needle) {
            let start = from + found;
            from = start + needle.len();
            if start > 0 && (is_ident(bytes[start - 1]) || bytes[start - 1] == b'$') {
                continue; // `my_crate::` when looking for `crate::`, or `$crate::`
            }
            let mut segments = Vec::new();
            let mut at = from;
            loop {
                let end = at + bytes[at..].iter().take_while(|&&b| is_ident(b)).count();
                if end == at {
                    if segments.is_empty() && bytes.get(at) == Some(&b'{') {
                        // which modules a group names is left to a reader of the group
                        return Err(format!(
                            "`{}`: name the module before the braces",
                            line.trim()
                        ));
                    }
                    break;
                }
                segments.push(line[at..end].to_string());
                if line[end..].starts_with("::") {
                    at = end + 2;
                } else {
                    break;
                }
            }
            if !segments.is_empty() {
                paths.push(segments);
            }
        }
    }
    Ok(paths)
}

/// The file under `src/` that holds the module a path names: the longest prefix of its segments
/// that is a file (`train/adam.rs` for `train::adam::Adam`).
fn module_file(src: &Path, segments: &[String]) -> Option<String> {
    (1..=segments.len())
        .rev()
        .map(|n| format!("{}.rs", segments[..n].join("/")))
        .find(|file| src.join(file).is_file())
}

/// The modules a file of `src/` names: `crate::` paths, and in a file of a directory module
/// (`train/batch.rs`) `super::` paths, which name its siblings.
fn imports(src: &Path, file: &str) -> Result<BTreeSet<String>, TakeError> {
    let code = read(&src.join(file))?;
    let err = |e: String| TakeError(format!("src/{file}: {e}"));
    let mut paths = paths_after(&code, "crate").map_err(err)?;
    if let Some((parent, _)) = file.rsplit_once('/') {
        for mut p in paths_after(&code, "super").map_err(err)? {
            let mut full: Vec<String> = parent.split('/').map(str::to_string).collect();
            full.append(&mut p);
            paths.push(full);
        }
    }
    let mut files = BTreeSet::new();
    for p in paths {
        match module_file(src, &p) {
            Some(f) => {
                files.insert(f);
            }
            None => {
                return Err(TakeError(format!(
                    "src/{file}: `crate::{}` names no module file under src/ (an item of lib.rs \
                     or mod.rs is not in any box; name the module)",
                    p.join("::")
                )))
            }
        }
    }
    files.remove(file);
    Ok(files)
}

/// The files of `src/` that `roots` need, themselves included, following `crate::` (and
/// `super::`) paths until nothing new appears.
///
/// # Errors
/// A file that cannot be read or a path that names no file.
pub fn closure(root: &Path, roots: &[String]) -> Result<BTreeSet<String>, TakeError> {
    let src = root.join("src");
    let mut done = BTreeSet::new();
    let mut todo: Vec<String> = roots.to_vec();
    while let Some(file) = todo.pop() {
        if done.insert(file.clone()) {
            todo.extend(imports(&src, &file)?);
        }
    }
    Ok(done)
}

/// The files of `src/` that a box's example names through `my_crate::` paths.
pub fn example_roots(root: &Path, example: &Example) -> Result<Vec<String>, TakeError> {
    let src = root.join("src");
    let paths = paths_after(&example.code, CRATE_NAME)
        .map_err(|e| TakeError(format!("{}: {e}", example.file)))?;
    let mut files = BTreeSet::new();
    for p in paths {
        let f = module_file(&src, &p).ok_or_else(|| {
            TakeError(format!(
                "{}: `{CRATE_NAME}::{}` names no module file under src/",
                example.file,
                p.join("::")
            ))
        })?;
        files.insert(f);
    }
    Ok(files.into_iter().collect())
}

/// The `[dependencies]` of this crate's `Cargo.toml`: (name, its line as written).
pub fn manifest_dependencies(root: &Path) -> Result<Vec<(String, String)>, TakeError> {
    let text = read(&root.join("Cargo.toml"))?;
    let mut in_section = false;
    let mut deps = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_section = trimmed == "[dependencies]";
            continue;
        }
        if !in_section || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some((name, _)) = trimmed.split_once('=') {
            deps.push((name.trim().to_string(), trimmed.to_string()));
        }
    }
    Ok(deps)
}

/// The dependencies of `Cargo.toml` that `code` names (`nalgebra::`, `use rand`, ...).
fn crates_named(code: &str, deps: &[(String, String)]) -> BTreeSet<String> {
    let lines = code_lines(code);
    let mut named = BTreeSet::new();
    for (name, _) in deps {
        let ident = name.replace('-', "_");
        let used = lines.iter().any(|line| {
            let bytes = line.as_bytes();
            line.match_indices(&ident).any(|(at, _)| {
                let before_ok = at == 0 || !(is_ident(bytes[at - 1]) || bytes[at - 1] == b':');
                let after = &line[at + ident.len()..];
                before_ok
                    && (after.starts_with("::")
                        || (line[..at].trim_end().ends_with("use")
                            && !after.starts_with(|c: char| c.is_alphanumeric() || c == '_')))
            })
        });
        if used {
            named.insert(name.clone());
        }
    }
    named
}

/// The crates a box needs: those its files and its example name.
pub fn crates_needed(root: &Path, take: &Take) -> Result<BTreeSet<String>, TakeError> {
    let deps = manifest_dependencies(root)?;
    let mut crates = crates_named(&example(root, take)?.code, &deps);
    for file in take.files {
        crates.extend(crates_named(&read(&root.join("src").join(file))?, &deps));
    }
    Ok(crates)
}

/// The box's `[dependencies]` section: this crate's own lines for the box's crates.
pub fn dependencies_toml(root: &Path, take: &Take) -> Result<String, TakeError> {
    let deps = manifest_dependencies(root)?;
    let mut toml = String::from("[dependencies]\n");
    for name in take.crates {
        let (_, line) = deps.iter().find(|(n, _)| n == name).ok_or_else(|| {
            TakeError(format!(
                "box {:?}: {name} is not a dependency in Cargo.toml",
                take.name
            ))
        })?;
        toml.push_str(line);
        toml.push('\n');
    }
    Ok(toml)
}

/// The box's files in alphabetical order, those of directories last.
pub fn sorted_files(take: &Take) -> Vec<&'static str> {
    let mut files = take.files.to_vec();
    files.sort_by_key(|f| (f.contains('/'), *f));
    files
}

/// The fresh crate's `src/lib.rs`: one `pub mod` per file, files of a directory inside an
/// inline module of that name, so that `crate::` paths in the files resolve unchanged.
pub fn lib_rs(take: &Take) -> String {
    let mut top = Vec::new();
    let mut nested: Vec<(&str, Vec<&str>)> = Vec::new();
    for file in sorted_files(take) {
        let module = file.trim_end_matches(".rs");
        match module.split_once('/') {
            None => top.push(format!("pub mod {module};\n")),
            Some((dir, name)) => match nested.iter_mut().find(|(d, _)| *d == dir) {
                Some((_, names)) => names.push(name),
                None => nested.push((dir, vec![name])),
            },
        }
    }
    let mut out: String = top.concat();
    for (dir, names) in nested {
        let _ = writeln!(out, "pub mod {dir} {{");
        for name in names {
            let _ = writeln!(out, "    pub mod {name};");
        }
        out.push_str("}\n");
    }
    out
}

/// The box, as HTML and markdown at the end of a chapter.
pub fn render(root: &Path, take: &Take) -> Result<String, TakeError> {
    let example = example(root, take)?;
    let files: Vec<String> = sorted_files(take)
        .iter()
        .map(|f| format!("<code>{}</code>", html_escape(f)))
        .collect();
    let crates = if take.crates.is_empty() {
        "It needs no `[dependencies]`: the standard library is enough.\n\n".to_string()
    } else {
        format!(
            "In `Cargo.toml`:\n\n```toml\n{}```\n\n",
            dependencies_toml(root, take)?
        )
    };
    let mut md = String::new();
    let _ = write!(
        md,
        "<div class=\"take-this-code\" id=\"take-{name}\">\n<div class=\"take-title\"><a href=\"#take-{name}\">Take this code</a>: {title}</div>\n\n",
        name = html_escape(take.name),
        title = html_escape(take.title)
    );
    let _ = write!(
        md,
        "<p>Copy {n} {files_word} from <code>src/</code> into your crate's <code>src/</code>: {list}.</p>\n\n",
        n = take.files.len(),
        files_word = if take.files.len() == 1 { "file" } else { "files" },
        list = files.join(", ")
    );
    let _ = write!(
        md,
        "In `src/lib.rs`:\n\n```rust\n{}```\n\n{crates}",
        lib_rs(take)
    );
    let _ = write!(
        md,
        "Use it (`src/main.rs`, in a crate named `{CRATE_NAME}`):\n\n```rust\n{}```\n\nIt prints:\n\n```text\n{}\n```\n\n",
        example.code, example.output
    );
    let _ = write!(
        md,
        "<p class=\"take-proof\"><code>book/check-take-this-code.sh</code> copies exactly these files into a fresh crate, builds it and runs <code>{}</code>, which must print this.</p>\n\n</div>\n\n",
        html_escape(&example.file)
    );
    Ok(md)
}

/// The directive [`TakeThisCode`] replaces: `{{#take-this-code NAME}}`.
pub const DIRECTIVE: &str = "{{#take-this-code ";

/// The names of the boxes a chapter asks for, in order, or the first malformed directive.
pub fn directives(chapter: &str) -> Result<Vec<(std::ops::Range<usize>, String)>, String> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = chapter[from..].find(DIRECTIVE) {
        let start = from + at;
        let Some(len) = chapter[start..].find("}}") else {
            return Err(format!("`{DIRECTIVE}` without its closing `}}}}`"));
        };
        let end = start + len + 2;
        let name = chapter[start + DIRECTIVE.len()..end - 2].trim().to_string();
        found.push((start..end, name));
        from = end;
    }
    Ok(found)
}

/// The preprocessor that expands `{{#take-this-code NAME}}` into the box of [`TAKES`] named
/// NAME; an unknown name or an unreadable example fails the build, naming the chapter.
pub struct TakeThisCode {
    pub root: PathBuf,
}

impl Preprocessor for TakeThisCode {
    fn name(&self) -> &str {
        "aiayn-take-this-code"
    }

    fn run(&self, _ctx: &PreprocessorContext, book: Book) -> BookResult<Book> {
        self.expand(book)
    }
}

impl TakeThisCode {
    /// Expands the directives of every chapter; the first chapter that fails is named in the
    /// error.
    fn expand(&self, mut book: Book) -> BookResult<Book> {
        let mut error = None;
        book.for_each_chapter_mut(|ch| {
            if error.is_some() || !ch.content.contains(DIRECTIVE) {
                return;
            }
            let expanded = directives(&ch.content)
                .map_err(TakeError)
                .and_then(|found| {
                    let mut content = ch.content.clone();
                    for (range, name) in found.into_iter().rev() {
                        content.replace_range(range, &render(&self.root, find(&name)?)?);
                    }
                    Ok(content)
                });
            match expanded {
                Ok(content) => ch.content = content,
                Err(e) => error = Some(format!("chapter {:?}: {e}", ch.name)),
            }
        });
        match error {
            Some(e) => Err(Error::msg(e)),
            None => Ok(book),
        }
    }
}

/// Writes the fresh crate of a box into `dir`: `Cargo.toml` with exactly the box's crates (and
/// this crate's `Cargo.lock`, so that the versions are the ones this crate is tested with), the
/// listed files under `src/`, `src/lib.rs` and the example as `src/main.rs`.
pub fn write_crate(root: &Path, take: &Take, dir: &Path) -> Result<(), TakeError> {
    let write = |path: PathBuf, text: &str| {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| TakeError(format!("cannot create {}: {e}", parent.display())))?;
        }
        fs::write(&path, text)
            .map_err(|e| TakeError(format!("cannot write {}: {e}", path.display())))
    };
    let manifest = format!(
        "[package]\nname = \"{CRATE_NAME}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n{}",
        dependencies_toml(root, take)?
    );
    write(dir.join("Cargo.toml"), &manifest)?;
    write(dir.join("Cargo.lock"), &read(&root.join("Cargo.lock"))?)?;
    for file in take.files {
        write(
            dir.join("src").join(file),
            &read(&root.join("src").join(file))?,
        )?;
    }
    write(dir.join("src/lib.rs"), &lib_rs(take))?;
    write(dir.join("src/main.rs"), &example(root, take)?.code)
}

/// Whether an offline build is tried again online: it failed, and cargo's error names the
/// `--offline` flag (it does when a crate is missing from the registry cache).
fn needs_fetch(built: bool, stderr: &str) -> bool {
    !built && stderr.contains("--offline")
}

/// Builds the fresh crate in `dir` (`cargo build --release`, warnings denied) with `target` as
/// its target directory, runs it and compares what it prints with the box. The build is
/// offline, and goes online only if cargo says a crate is missing from the registry cache.
///
/// # Errors
/// The build's or the program's error output, or the two outputs side by side.
pub fn run_in_fresh_crate(
    root: &Path,
    take: &Take,
    dir: &Path,
    target: &Path,
) -> Result<(), TakeError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args(["build", "--release", "--quiet"])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", target)
            .env("RUSTFLAGS", "-D warnings");
        if offline {
            cmd.arg("--offline");
        }
        cmd.output()
            .map_err(|e| TakeError(format!("cannot run cargo: {e}")))
    };
    let mut built = build(true)?;
    if needs_fetch(
        built.status.success(),
        &String::from_utf8_lossy(&built.stderr),
    ) {
        built = build(false)?;
    }
    if !built.status.success() {
        return Err(TakeError(format!(
            "box {:?}: the fresh crate did not build:\n{}",
            take.name,
            String::from_utf8_lossy(&built.stderr)
        )));
    }
    let program = target.join("release").join(CRATE_NAME);
    let ran = Command::new(&program)
        .current_dir(dir)
        .output()
        .map_err(|e| TakeError(format!("cannot run {}: {e}", program.display())))?;
    let printed = String::from_utf8_lossy(&ran.stdout).trim_end().to_string();
    let expected = example(root, take)?.output;
    if !ran.status.success() {
        return Err(TakeError(format!(
            "box {:?}: the example failed ({}):\n{}",
            take.name,
            ran.status,
            String::from_utf8_lossy(&ran.stderr)
        )));
    }
    if printed != expected {
        return Err(TakeError(format!(
            "box {:?}: the example printed\n{printed}\nbut the box says it prints\n{expected}",
            take.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdbook_preprocessor::book::{BookItem, Chapter};

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn every_box_lists_the_closure_of_its_example_and_the_crates_it_names() {
        let root = root();
        for take in TAKES {
            let example = example(&root, take).unwrap();
            let roots = example_roots(&root, &example).unwrap();
            let needed = closure(&root, &roots).unwrap();
            let listed: BTreeSet<String> = take.files.iter().map(|f| f.to_string()).collect();
            assert_eq!(
                listed, needed,
                "box {:?}: its files are not the closure of what {} uses",
                take.name, example.file
            );
            let crates: Vec<String> = crates_needed(&root, take).unwrap().into_iter().collect();
            assert_eq!(
                take.crates, crates,
                "box {:?}: its crates are not those its files and example name",
                take.name
            );
        }
    }

    #[test]
    fn an_example_file_splits_into_the_program_and_what_it_prints() {
        let root = std::env::temp_dir().join(format!("aiayn-take-{}", std::process::id()));
        fs::create_dir_all(root.join("book/take")).unwrap();
        let take = Take {
            name: "t",
            title: "T",
            files: &[],
            crates: &[],
        };
        fs::write(
            root.join("book/take/t.rs"),
            "fn main() {\n    println!(\"a\");\n}\n// Output:\n// a\n//\n//  b\n",
        )
        .unwrap();
        assert_eq!(
            example(&root, &take).unwrap(),
            Example {
                file: "book/take/t.rs".to_string(),
                code: "fn main() {\n    println!(\"a\");\n}\n".to_string(),
                output: "a\n\n b".to_string(),
            }
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn dependencies_are_the_named_lines_of_their_section_only() {
        let root = std::env::temp_dir().join(format!("aiayn-take-deps-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"x\"\n\n[dependencies]\n# old = \"1\"\n\n  nalgebra = \"0.33\"  \nrand = { version = \"0.9\" }\n[dev-dependencies]\nproptest = \"1\"\n",
        )
        .unwrap();
        assert_eq!(
            manifest_dependencies(&root).unwrap(),
            vec![
                ("nalgebra".to_string(), "nalgebra = \"0.33\"".to_string()),
                (
                    "rand".to_string(),
                    "rand = { version = \"0.9\" }".to_string()
                ),
            ]
        );
        // a path at the very start of the code
        assert_eq!(
            paths_after("crate::a::B;", "crate").unwrap(),
            vec![vec!["a", "B"]]
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn every_box_is_in_exactly_one_chapter() {
        let root = root();
        let mut placed: Vec<String> = Vec::new();
        for entry in fs::read_dir(root.join("book/src")).unwrap() {
            let path = entry.unwrap().path();
            let text = fs::read_to_string(&path).unwrap();
            for (_, name) in directives(&text).unwrap() {
                find(&name).unwrap();
                placed.push(name);
            }
        }
        for take in TAKES {
            let n = placed.iter().filter(|p| *p == take.name).count();
            assert_eq!(n, 1, "box {:?} is in {n} chapters", take.name);
        }
    }

    #[test]
    fn a_box_shows_its_files_lib_rs_dependencies_program_and_output() {
        let root = root();
        let html = render(&root, find("attention").unwrap()).unwrap();
        for part in [
            "id=\"take-attention\"",
            "<code>attention.rs</code>, <code>mask.rs</code>, <code>softmax.rs</code>.",
            "```rust\npub mod attention;\npub mod mask;\npub mod softmax;\n```",
            "```toml\n[dependencies]\nnalgebra = \"0.34\"\nrand = {",
            "use my_crate::attention::scaled_dot_product_attention;\n",
            "```text\nweights [0.5, 0.5], output [3.0]\n```",
        ] {
            assert!(html.contains(part), "{part:?} is not in\n{html}");
        }
        let bleu = render(&root, find("bleu").unwrap()).unwrap();
        assert!(
            bleu.contains("no `[dependencies]`: the standard library"),
            "{bleu}"
        );
        assert!(!bleu.contains("```toml"), "{bleu}");
    }

    #[test]
    fn paths_are_read_from_code_not_comments_and_groups_are_refused() {
        let code = "use crate::a::B; // crate::c::D\n/// [`crate::e`]\nlet s = \"//\\\"\"; f(crate::g::h());\nmy_crate::x::y; $crate::z\nlet q = '\"'; // crate::i";
        assert_eq!(
            paths_after(code, "crate").unwrap(),
            vec![vec!["a", "B"], vec!["g", "h"]]
        );
        assert!(paths_after("use crate::{a, b};", "crate")
            .unwrap_err()
            .contains("name the module before the braces"));
        assert_eq!(
            paths_after("use super::tasks::{Pair, BOS};", "super").unwrap(),
            vec![vec!["tasks"]]
        );
    }

    #[test]
    fn a_line_loses_its_comment_and_keeps_its_strings() {
        let cases = [
            // an escaped quote does not end the string, so its `//` is text
            ("let s = \"a\\\"//b\"; // c", "let s = \"a\\\"//b\"; "),
            // a quote mark in a string is text too
            ("let s = \"it's\"; // c", "let s = \"it's\"; "),
            // the character literal '"' opens no string, at the start of a line as anywhere
            ("'\"'; // c", "'\"'; "),
            ("f('\"', 1); // c", "f('\"', 1); "),
            // a backslash outside a string escapes nothing
            ("x\\// y", "x\\"),
            ("no comment", "no comment"),
            // one slash is division
            ("let x = a / b; // c", "let x = a / b; "),
        ];
        for (line, code) in cases {
            assert_eq!(code_lines(line), vec![code.to_string()], "{line}");
        }
        assert_eq!(code_lines("a // x\nb"), vec!["a ", "b"]);
    }

    #[test]
    fn an_import_that_names_no_file_is_an_error_naming_the_file() {
        let src = std::env::temp_dir().join(format!("aiayn-take-{}", std::process::id()));
        fs::create_dir_all(src.join("train")).unwrap();
        fs::write(src.join("a.rs"), "use crate::Config;\n").unwrap();
        fs::write(
            src.join("train/b.rs"),
            "use super::c::C;\nuse crate::a::A;\n",
        )
        .unwrap();
        let missing = imports(&src, "a.rs").unwrap_err();
        let sibling = imports(&src, "train/b.rs").unwrap_err();
        fs::write(src.join("train/c.rs"), "").unwrap();
        let found = imports(&src, "train/b.rs");
        fs::remove_dir_all(&src).unwrap();
        assert!(
            missing
                .0
                .starts_with("src/a.rs: `crate::Config` names no module file"),
            "{missing}"
        );
        assert!(sibling.0.contains("`crate::train::c::C`"), "{sibling}");
        let found: Vec<String> = found.unwrap().into_iter().collect();
        assert_eq!(found, ["a.rs", "train/c.rs"]);
        let unknown = find("nothing").unwrap_err().0;
        assert!(unknown
            .starts_with("no \"take this code\" box named \"nothing\"; the boxes are model, "));
    }

    #[test]
    fn crates_are_found_by_path_and_by_use() {
        let deps = vec![
            ("nalgebra".to_string(), String::new()),
            ("rand".to_string(), String::new()),
            ("pulldown-cmark".to_string(), String::new()),
        ];
        let named = |code: &str| crates_named(code, &deps).into_iter().collect::<Vec<_>>();
        assert_eq!(
            named("use rand::Rng;\nlet x = nalgebra::convert(1.0);"),
            ["nalgebra", "rand"]
        );
        assert_eq!(named("use pulldown_cmark;"), ["pulldown-cmark"]);
        assert!(named("let operand = 1; // rand::x\nmy_rand::f(); grand::g()").is_empty());
        // a module of that name inside another path, or a longer name after `use`, is not it
        assert!(named("self::rand::f(); super::nalgebra::g()").is_empty());
        assert!(named("use randomness;\nuse rand_core;").is_empty());
    }

    #[test]
    fn lib_rs_nests_the_files_of_a_directory() {
        let take = Take {
            name: "t",
            title: "t",
            files: &["params.rs", "train/adam.rs", "train/schedule.rs"],
            crates: &[],
        };
        assert_eq!(
            lib_rs(&take),
            "pub mod params;\npub mod train {\n    pub mod adam;\n    pub mod schedule;\n}\n"
        );
    }

    #[test]
    fn only_a_failed_build_that_names_offline_mode_is_tried_online() {
        let missing = "error: no matching package named `nalgebra` found\n\
                       note: offline mode (--offline) is on";
        assert!(needs_fetch(false, missing));
        assert!(!needs_fetch(true, missing));
        assert!(!needs_fetch(
            false,
            "error[E0425]: cannot find value `x` in this scope"
        ));
    }

    #[test]
    fn a_fresh_crate_holds_the_manifest_lock_files_lib_rs_and_example() {
        let root = root();
        let dir = std::env::temp_dir().join(format!("aiayn-take-crate-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let take = find("tasks").unwrap();
        write_crate(&root, take, &dir).unwrap();
        let read = |p: &str| fs::read_to_string(dir.join(p)).unwrap();
        let own = |p: &str| fs::read_to_string(root.join(p)).unwrap();
        let rand = own("Cargo.toml")
            .lines()
            .find(|l| l.starts_with("rand ="))
            .unwrap()
            .to_string();
        assert_eq!(
            read("Cargo.toml"),
            format!(
                "[package]\nname = \"my_crate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [dependencies]\n{rand}\n"
            )
        );
        assert_eq!(read("Cargo.lock"), own("Cargo.lock"));
        assert_eq!(read("src/train/batch.rs"), own("src/train/batch.rs"));
        assert_eq!(read("src/train/tasks.rs"), own("src/train/tasks.rs"));
        assert_eq!(
            read("src/lib.rs"),
            "pub mod train {\n    pub mod batch;\n    pub mod tasks;\n}\n"
        );
        let main = read("src/main.rs");
        assert!(main.starts_with("use my_crate::train::"), "{main}");
        assert!(!main.contains(OUTPUT_MARKER), "{main}");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The bleu box needs no crates, so its fresh crate builds in seconds: the real box passes,
    /// and a box whose program prints something else, fails, or does not build is refused
    /// with the reason.
    #[test]
    fn a_fresh_crate_must_build_run_and_print_what_its_box_says() {
        let root = root();
        let take = find("bleu").unwrap();
        let scratch = std::env::temp_dir().join(format!("aiayn-take-run-{}", std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        let target = scratch.join("target");
        let run = |root: &Path, name: &str| {
            let dir = scratch.join(name);
            write_crate(root, take, &dir).unwrap();
            run_in_fresh_crate(root, take, &dir, &target)
        };
        assert_eq!(run(&root, "real"), Ok(()));

        // a copy of the crate root with another example
        let fake = scratch.join("root");
        for file in ["Cargo.toml", "Cargo.lock", "src/bleu.rs"] {
            fs::create_dir_all(fake.join(file).parent().unwrap()).unwrap();
            fs::copy(root.join(file), fake.join(file)).unwrap();
        }
        fs::create_dir_all(fake.join("book/take")).unwrap();
        let example = |text: &str| fs::write(fake.join("book/take/bleu.rs"), text).unwrap();

        example("fn main() {\n    println!(\"a\\n  b\");\n}\n// Output:\n// a\n//  c\n");
        assert_eq!(
            run(&fake, "other"),
            Err(TakeError(
                "box \"bleu\": the example printed\na\n  b\nbut the box says it prints\na\n c"
                    .to_string()
            ))
        );
        example(
            "fn main() {\n    println!(\"a\");\n    eprintln!(\"oops\");\n    \
             std::process::exit(3);\n}\n// Output:\n// a\n",
        );
        assert_eq!(
            run(&fake, "fails"),
            Err(TakeError(
                "box \"bleu\": the example failed (exit status: 3):\noops\n".to_string()
            ))
        );
        example("fn main() {\n    let unused = 1;\n}\n// Output:\n//\n");
        let error = run(&fake, "warns").unwrap_err().0;
        assert!(
            error.starts_with("box \"bleu\": the fresh crate did not build:\n")
                && error.contains("unused variable: `unused`"),
            "{error}"
        );
        fs::remove_dir_all(&scratch).unwrap();
    }

    #[test]
    fn boxes_are_expanded_in_place_and_the_first_bad_chapter_is_named() {
        let root = root();
        let chapter = |name: &str, content: &str| {
            BookItem::Chapter(Chapter::new(
                name,
                content.to_string(),
                format!("{name}.md"),
                vec![],
            ))
        };
        let book = |items: Vec<BookItem>| {
            let mut book = Book::new();
            for item in items {
                book.push_item(item);
            }
            book
        };
        let pre = TakeThisCode { root: root.clone() };
        let expanded = pre
            .expand(book(vec![
                chapter("plain", "no box {{#take-this-cod bleu}}"),
                chapter("one", "before\n{{#take-this-code bleu}}\nafter"),
            ]))
            .unwrap();
        let contents: Vec<String> = expanded
            .iter()
            .filter_map(|item| match item {
                BookItem::Chapter(ch) => Some(ch.content.clone()),
                _ => None,
            })
            .collect();
        let bleu = render(&root, find("bleu").unwrap()).unwrap();
        assert_eq!(
            contents,
            [
                "no box {{#take-this-cod bleu}}".to_string(),
                format!("before\n{bleu}\nafter")
            ]
        );
        let error = pre
            .expand(book(vec![
                chapter("fine", "{{#take-this-code bleu}}"),
                chapter("first", "{{#take-this-code nope}}"),
                chapter("second", "{{#take-this-code nada}}"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("chapter \"first\": no \"take this code\" box named \"nope\""),
            "{error}"
        );
    }
}
