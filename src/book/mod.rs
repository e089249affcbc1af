//! The book tooling: builds the mdBook in `book/` with the project's preprocessors, draws its
//! figures, and serves the result.
//!
//! mdBook runs in-process (`mdbook-driver`): no separately installed tool. The build
//!
//! 1. scans the equation registry ([`registry`]) from `book/src`, `src`, `tests`, `fixtures`;
//! 2. runs mdBook's own `{{#include}}` pass, then [`preprocess::Equations`] (a box under every
//!    equation, the verification table), [`take::TakeThisCode`] (the "Take this code" boxes),
//!    [`mutation::MutationScore`] (the mutation score, from its run log),
//!    [`compare::CompareTable`] (the Performance chapter's tables, from the comparison's JSON),
//!    [`preprocess::Listings`] (dedented code) and [`preprocess::Math`] (LaTeX to MathML);
//! 3. renders HTML into the output directory and writes the figures ([`figures`]) into its
//!    `figures/` directory, drawn meanwhile on another thread, with the appendix's attention
//!    explorer data ([`appendix`]).
//!
//! The book's sources are found from the crate root: `AIAYN_ROOT` if set, else the directory
//! the crate was compiled from, so `aiayn build` works from any working directory.

pub mod appendix;
pub mod check;
pub mod compare;
pub mod figures;
pub mod math;
pub mod mutation;
pub mod preprocess;
pub mod registry;
pub mod serve;
pub mod svg;
pub mod take;
pub mod worked;

use std::fmt;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mdbook_driver::config::Config;
use mdbook_driver::MDBook;

use registry::Registry;

/// The file that marks a directory as a book built here, so that a rebuild may empty it.
const MARKER: &str = ".aiayn-book";

/// A failed build or serve, with a message for the reader.
#[derive(Debug)]
pub struct BookError(pub String);

impl fmt::Display for BookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BookError {}

impl From<io::Error> for BookError {
    fn from(e: io::Error) -> Self {
        BookError(e.to_string())
    }
}

/// The crate root holding `book/`, `src/`, `tests/` and `fixtures/`: `AIAYN_ROOT` if set,
/// otherwise the directory this crate was compiled from.
pub fn default_root() -> PathBuf {
    root_from(std::env::var_os("AIAYN_ROOT"))
}

/// The root named by `AIAYN_ROOT`'s value: an unset or empty variable means the crate's own
/// directory, never the current one.
fn root_from(var: Option<std::ffi::OsString>) -> PathBuf {
    match var {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// What a build produced.
#[derive(Clone, Debug)]
pub struct Built {
    /// The output directory (absolute).
    pub out: PathBuf,
    pub chapters: usize,
    /// Distinct equation ids in the book.
    pub equations: usize,
    pub figures: usize,
    /// Registry and integrity problems: the build goes on, `cargo test` fails on them.
    pub warnings: Vec<String>,
    pub elapsed: Duration,
}

/// Refuses to build into a directory that holds something other than a previous build: mdBook
/// empties its output directory first.
fn check_output_dir(root: &Path, out: &Path) -> Result<(), BookError> {
    let real = |p: &Path| {
        p.canonicalize()
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let (root, out_real) = (real(root), real(out));
    let book = root.join("book");
    let holds_sources = [&root, &book, &book.join("theme")]
        .iter()
        .any(|p| **p == out_real)
        || out_real.starts_with(book.join("src"))
        || root.starts_with(&out_real);
    if holds_sources {
        return Err(BookError(format!(
            "refusing to write the book into {}: that directory holds the book's sources",
            out.display()
        )));
    }
    if out.is_file() {
        return Err(BookError(format!(
            "{} is a file, not a directory",
            out.display()
        )));
    }
    if out.is_dir() && !out.join(MARKER).exists() {
        let mut entries = fs::read_dir(out)
            .map_err(|e| BookError(format!("cannot read {}: {e}", out.display())))?;
        if entries.next().is_some() {
            return Err(BookError(format!(
                "refusing to write the book into {}: it is not empty and holds no earlier build \
                 (the build empties its output directory); choose another --out",
                out.display()
            )));
        }
    }
    Ok(())
}

/// `.NAME.SUFFIX` beside `path`: where a build is written before it replaces `path`.
///
/// # Errors
/// When `path` has no parent or no name (`/`, `..`).
pub fn sibling(path: &Path, suffix: &str) -> Result<PathBuf, BookError> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            Ok(parent.join(format!(".{}.{suffix}", name.to_string_lossy())))
        }
        _ => Err(BookError(format!(
            "cannot write the book to {}: it needs a parent directory and a name",
            path.display()
        ))),
    }
}

/// Moves the directory `next` to `out`, replacing what `out` held (a previous build).
///
/// # Errors
/// The renames' I/O errors; `out` is then as it was.
pub fn replace_dir(next: &Path, out: &Path) -> io::Result<()> {
    let old = sibling(out, "old").map_err(|e| io::Error::other(e.0))?;
    if old.exists() {
        fs::remove_dir_all(&old)?;
    }
    let had_out = out.exists();
    if had_out {
        fs::rename(out, &old)?;
    }
    if let Err(e) = fs::rename(next, out) {
        if had_out {
            let _ = fs::rename(&old, out);
        }
        return Err(e);
    }
    if had_out {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(())
}

/// Builds the book of the crate at `root` into `out`. The book is written beside `out` first
/// (`.NAME.next`) and moved to `out` only once complete: a failed build leaves `out` as it was
/// and nothing else behind.
///
/// # Errors
/// A missing book, an output directory that is not ours, a LaTeX error (naming the chapter,
/// line and expression), a figure that fails to draw, or an I/O error.
pub fn build(root: &Path, out: &Path) -> Result<Built, BookError> {
    let out = std::path::absolute(out)
        .map_err(|e| BookError(format!("cannot use {} as output: {e}", out.display())))?;
    check_output_dir(root, &out)?;
    let next = sibling(&out, "next")?;
    if next.exists() {
        fs::remove_dir_all(&next)
            .map_err(|e| BookError(format!("cannot remove {}: {e}", next.display())))?;
    }
    let built = build_into(root, &next).and_then(|built| {
        replace_dir(&next, &out)
            .map_err(|e| BookError(format!("cannot move the book to {}: {e}", out.display())))?;
        Ok(Built { out, ..built })
    });
    if built.is_err() {
        let _ = fs::remove_dir_all(&next);
    }
    built
}

/// Builds the book of the crate at `root` directly into `out` (which [`build`] then moves into
/// place).
///
/// # Errors
/// As [`build`].
pub fn build_into(root: &Path, out: &Path) -> Result<Built, BookError> {
    let start = Instant::now();
    let book_dir = root.join("book");
    let config_file = book_dir.join("book.toml");
    if !config_file.is_file() {
        return Err(BookError(format!(
            "no book at {}: expected {} (set AIAYN_ROOT to the crate's directory)",
            root.display(),
            config_file.display()
        )));
    }
    let out = std::path::absolute(out)
        .map_err(|e| BookError(format!("cannot use {} as output: {e}", out.display())))?;
    check_output_dir(root, &out)?;

    // Figures are independent of mdBook: draw them on a second thread meanwhile.
    let drawing =
        std::thread::spawn(|| Ok::<_, String>((figures::draw_all()?, appendix::explorer_data()?)));

    let mut registry = Registry::scan(root)
        .map_err(|e| BookError(format!("cannot scan the equation registry: {e}")))?;
    let order: Vec<String> = check::summary_chapters(root)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    registry.order_chapters(&order);
    let mut warnings: Vec<String> = registry.problems().iter().map(|p| p.to_string()).collect();
    for p in check::includes(root)
        .into_iter()
        .chain(check::summary(root))
        .chain(check::figure_links(root))
    {
        warnings.push(p.to_string());
    }
    let equations = registry.ids().len();

    let mut config = Config::from_disk(&config_file)
        .map_err(|e| BookError(format!("{}: {e:#}", config_file.display())))?;
    config.build.build_dir = out.clone();
    config.build.create_missing = false;
    let mut md = MDBook::load_with_config(&book_dir, config)
        .map_err(|e| BookError(format!("cannot load the book: {e:#}")))?;
    let chapters = md
        .iter()
        .filter(
            |item| matches!(item, mdbook_driver::book::BookItem::Chapter(c) if c.path.is_some()),
        )
        .count();
    md.with_preprocessor(preprocess::Equations { registry });
    md.with_preprocessor(take::TakeThisCode {
        root: root.to_path_buf(),
    });
    md.with_preprocessor(compare::CompareTable {
        root: root.to_path_buf(),
    });
    md.with_preprocessor(mutation::MutationScore {
        root: root.to_path_buf(),
    });
    md.with_preprocessor(preprocess::Listings);
    md.with_preprocessor(preprocess::WorkedExample);
    md.with_preprocessor(preprocess::Math {
        src_dir: book_dir.join("src"),
        display_prefix: "book/src/".to_string(),
    });
    md.build()
        .map_err(|e| BookError(format!("the book did not build: {e:#}")))?;

    let (drawn, explorer) = drawing
        .join()
        .map_err(|_| BookError("drawing the figures panicked".to_string()))?
        .map_err(BookError)?;
    let figure_dir = out.join("figures");
    fs::create_dir_all(&figure_dir)
        .map_err(|e| BookError(format!("cannot create {}: {e}", figure_dir.display())))?;
    for (name, svg) in &drawn {
        let path = figure_dir.join(format!("{name}.svg"));
        fs::write(&path, svg)
            .map_err(|e| BookError(format!("cannot write {}: {e}", path.display())))?;
    }
    let data = figure_dir.join(appendix::DATA_FILE);
    fs::write(&data, explorer)
        .map_err(|e| BookError(format!("cannot write {}: {e}", data.display())))?;
    fs::write(
        out.join(MARKER),
        "built by `aiayn build`; this directory is emptied on rebuild\n",
    )?;
    Ok(Built {
        out,
        chapters,
        equations,
        figures: drawn.len(),
        warnings,
        elapsed: start.elapsed(),
    })
}

/// Binds 127.0.0.1:`port`, or explains why not.
pub fn bind(port: u16) -> Result<TcpListener, BookError> {
    TcpListener::bind(("127.0.0.1", port)).map_err(|e| bind_error(port, &e))
}

/// Why `port` could not be listened on, with a port to try instead where one would do.
fn bind_error(port: u16, e: &io::Error) -> BookError {
    match e.kind() {
        io::ErrorKind::AddrInUse => BookError(format!(
            "port {port} is in use; try --port {}",
            port.checked_add(1).unwrap_or(8000)
        )),
        io::ErrorKind::PermissionDenied => BookError(format!(
            "no permission to listen on port {port}; try --port 3000"
        )),
        _ => BookError(format!("cannot listen on 127.0.0.1:{port}: {e}")),
    }
}

/// Serves an already built book on `listener` until the process ends (or [`serve::Site::stop`]).
pub fn serve(listener: TcpListener, site: std::sync::Arc<serve::Site>) -> Result<(), BookError> {
    serve::run(listener, site).map_err(|e| BookError(format!("the server stopped: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_or_empty_root_means_the_crate_directory() {
        let own = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        assert!(own.join("book/book.toml").is_file(), "{}", own.display());
        assert_eq!(root_from(None), own);
        assert_eq!(root_from(Some("".into())), own);
        assert_eq!(root_from(Some("/tmp/x".into())), PathBuf::from("/tmp/x"));
    }

    #[test]
    fn the_preprocessors_have_distinct_names_of_their_own() {
        use mdbook_preprocessor::Preprocessor;
        // mdBook keeps its preprocessors in a map keyed by name: a second one of the same name
        // would take the first one's place, and `[preprocessor.NAME]` in book.toml would
        // address both
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let all: Vec<Box<dyn Preprocessor>> = vec![
            Box::new(preprocess::Equations {
                registry: Registry::default(),
            }),
            Box::new(take::TakeThisCode { root: root.clone() }),
            Box::new(compare::CompareTable { root: root.clone() }),
            Box::new(mutation::MutationScore { root: root.clone() }),
            Box::new(preprocess::Listings),
            Box::new(preprocess::WorkedExample),
            Box::new(preprocess::Math {
                src_dir: root.join("book/src"),
                display_prefix: String::new(),
            }),
        ];
        let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
        for name in &names {
            let own = name.strip_prefix("aiayn-").unwrap_or("");
            assert!(
                !own.is_empty() && own.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{names:?}"
            );
        }
        let mut distinct = names.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
    }

    #[test]
    fn a_port_that_cannot_be_bound_is_explained() {
        let kind = |k: io::ErrorKind, port: u16| bind_error(port, &io::Error::from(k)).0;
        assert_eq!(
            kind(io::ErrorKind::AddrInUse, 3000),
            "port 3000 is in use; try --port 3001"
        );
        assert_eq!(
            kind(io::ErrorKind::AddrInUse, u16::MAX),
            "port 65535 is in use; try --port 8000"
        );
        assert_eq!(
            kind(io::ErrorKind::PermissionDenied, 80),
            "no permission to listen on port 80; try --port 3000"
        );
        let other = kind(io::ErrorKind::AddrNotAvailable, 3000);
        assert!(
            other.starts_with("cannot listen on 127.0.0.1:3000: "),
            "{other}"
        );
    }
}
