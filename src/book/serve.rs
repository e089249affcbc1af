//! The server of `aiayn serve`: the built book over HTTP, rebuilt when its sources change, with
//! open pages reloading themselves.
//!
//! HTTP itself (reading requests, writing responses, keep-alive) is `tiny_http`'s. What is ours:
//!
//! - which file a request names ([`resolve`]): GET and HEAD only, `index.html` for a directory,
//!   the book's `404.html` for anything missing; a path that decodes to `..`, a backslash or a
//!   NUL is refused, and every served file must resolve, symlinks followed, inside the book;
//! - content types ([`content_type`]);
//! - the reload: [`watch`] polls the modification times of the sources, rebuilds into a
//!   sibling directory and, only when that build succeeds, swaps it in under the served path
//!   ([`Site::publish`]) and counts a new version. Every HTML page is served with a short script
//!   that asks [`VERSION_PATH`] for the version once a second and reloads the page when it is no
//!   longer the one the page was served at. A failed rebuild changes nothing that is served.

use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response, Server};

/// The path that answers with the version of the served book, as plain text.
pub const VERSION_PATH: &str = "/__aiayn/version";

/// Request targets longer than this are refused (414) before any decoding.
const MAX_TARGET: usize = 8192;

/// Threads answering requests (tiny_http reads each connection on a thread of its own).
const WORKERS: usize = 4;

/// The content type for a file name.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "txt" | "md" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes once; `None` for a malformed escape or a result that is not UTF-8.
/// A double-encoded `%252e` decodes to the three characters `%2e`, a plain file name.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a request path maps to.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// A file to send.
    File(PathBuf),
    /// A directory without a trailing slash: redirect to this location.
    Redirect(String),
    /// Nothing there.
    NotFound,
    /// A path that tries to leave the book, or cannot be decoded.
    Forbidden,
}

/// Maps a request target (`/chapter.html?x#y`) to a file under `root`.
pub fn resolve(root: &Path, target: &str) -> Resolved {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let Some(decoded) = percent_decode(path) else {
        return Resolved::Forbidden;
    };
    if !decoded.starts_with('/') || decoded.contains('\\') || decoded.contains('\0') {
        return Resolved::Forbidden;
    }
    let mut file = root.to_path_buf();
    for component in Path::new(&decoded[1..]).components() {
        match component {
            Component::Normal(part) => file.push(part),
            Component::CurDir => {}
            _ => return Resolved::Forbidden, // `..`, a root or a prefix
        }
    }
    if file.is_dir() {
        if !path.ends_with('/') {
            // the target as sent (still encoded, so ASCII) plus the slash
            return Resolved::Redirect(format!("{path}/"));
        }
        file.push("index.html");
    }
    // Follow links, then make sure the result is still inside the book.
    match (file.canonicalize(), root.canonicalize()) {
        (Ok(real), Ok(real_root)) if real.starts_with(&real_root) && real.is_file() => {
            Resolved::File(real)
        }
        (Ok(real), Ok(real_root)) if !real.starts_with(&real_root) => Resolved::Forbidden,
        _ => Resolved::NotFound,
    }
}

/// The book being served: its directory, replaced whole by a rebuild, and a version that
/// counts the builds published since the server started (the first is 1).
pub struct Site {
    root: RwLock<PathBuf>,
    version: AtomicU64,
    reload: bool,
    stopped: AtomicBool,
}

impl Site {
    /// Serves the built book in `root`; with `reload`, HTML pages carry the reload script.
    pub fn new(root: PathBuf, reload: bool) -> Arc<Site> {
        Arc::new(Site {
            root: RwLock::new(root),
            version: AtomicU64::new(1),
            reload,
            stopped: AtomicBool::new(false),
        })
    }

    /// The served directory.
    pub fn root(&self) -> PathBuf {
        self.root
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The version open pages compare theirs with.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Moves the complete build in `next` to the served path and counts a new version. No
    /// request sees the directory half replaced: requests wait for the swap.
    ///
    /// # Errors
    /// The renames' I/O errors; the book served before is then still served.
    pub fn publish(&self, next: &Path) -> io::Result<()> {
        let root = self.root.write().unwrap_or_else(PoisonError::into_inner);
        super::replace_dir(next, &root)?;
        self.version.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Ends [`run`] and [`watch`] within about a poll interval.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// The script that reloads a page once the served version is no longer `version`.
fn reload_script(version: u64) -> String {
    format!(
        "<script>(function () {{ var served = \"{version}\"; setInterval(function () {{ \
         fetch(\"{VERSION_PATH}\", {{ cache: \"no-store\" }}).then(function (r) {{ return r.text(); }}) \
         .then(function (v) {{ if (v.trim() !== served) location.reload(); }}).catch(function () {{}}); \
         }}, 1000); }})();</script>\n"
    )
}

/// `html` with the reload script before its last `</body>` (or at its end).
fn with_reload(html: &[u8], version: u64) -> Vec<u8> {
    let script = reload_script(version);
    let at = html
        .windows(7)
        .rposition(|w| w.eq_ignore_ascii_case(b"</body>"))
        .unwrap_or(html.len());
    let mut out = Vec::with_capacity(html.len() + script.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(script.as_bytes());
    out.extend_from_slice(&html[at..]);
    out
}

/// A header from names and values that are ASCII by construction; `None` otherwise.
fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn text(status: u16, body: &str) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_string(body).with_status_code(status)
}

/// Sends `response` with the headers every answer carries, plus `content_type`.
fn send<R: io::Read>(request: Request, response: Response<R>, content_type: &str) {
    let mut response = response;
    for h in [
        header("Content-Type", content_type),
        header("Cache-Control", "no-cache"),
        header("X-Content-Type-Options", "nosniff"),
    ]
    .into_iter()
    .flatten()
    {
        response.add_header(h);
    }
    // A client that went away is no concern of the server's.
    let _ = request.respond(response);
}

/// Answers one request.
fn handle(site: &Site, request: Request) {
    let plain = "text/plain; charset=utf-8";
    if !matches!(request.method(), Method::Get | Method::Head) {
        let mut response = text(405, "only GET and HEAD\n");
        if let Some(h) = header("Allow", "GET, HEAD") {
            response.add_header(h);
        }
        return send(request, response, plain);
    }
    let target = request.url().to_string();
    if target.len() > MAX_TARGET {
        return send(request, text(414, "request target too long\n"), plain);
    }
    if target.split('?').next() == Some(VERSION_PATH) {
        return send(request, text(200, &site.version().to_string()), plain);
    }
    // Resolve and open under the read lock: a rebuild swaps the directory only between requests.
    let (answer, version) = {
        let root = site.root.read().unwrap_or_else(PoisonError::into_inner);
        let answer = match resolve(&root, &target) {
            Resolved::File(path) => match File::open(&path) {
                Ok(file) => Answer::File(path, file),
                Err(_) => Answer::NotFound(fs::read(root.join("404.html")).ok()),
            },
            Resolved::Redirect(location) => Answer::Redirect(location),
            Resolved::Forbidden => Answer::Forbidden,
            Resolved::NotFound => Answer::NotFound(fs::read(root.join("404.html")).ok()),
        };
        (answer, site.version())
    };
    let html = "text/html; charset=utf-8";
    let page = |bytes: Vec<u8>| {
        if site.reload {
            with_reload(&bytes, version)
        } else {
            bytes
        }
    };
    match answer {
        Answer::File(path, file) => {
            let ty = content_type(&path);
            if ty == html {
                let mut bytes = Vec::new();
                if io::Read::read_to_end(&mut &file, &mut bytes).is_err() {
                    return send(request, text(500, "cannot read the file\n"), plain);
                }
                send(request, Response::from_data(page(bytes)), ty);
            } else {
                send(request, Response::from_file(file), ty);
            }
        }
        Answer::Redirect(location) => {
            let mut response = text(301, "moved\n");
            if let Some(h) = header("Location", &location) {
                response.add_header(h);
            }
            send(request, response, plain);
        }
        Answer::Forbidden => send(request, text(403, "forbidden\n"), plain),
        Answer::NotFound(Some(bytes)) => send(
            request,
            Response::from_data(page(bytes)).with_status_code(404),
            html,
        ),
        Answer::NotFound(None) => send(request, text(404, "not found\n"), plain),
    }
}

/// What a request gets, decided while the served directory cannot change.
enum Answer {
    File(PathBuf, File),
    Redirect(String),
    Forbidden,
    /// With the book's 404 page, if it has one.
    NotFound(Option<Vec<u8>>),
}

/// Serves `site` on an already bound listener until [`Site::stop`] (or forever).
///
/// # Errors
/// When the listener cannot be handed to the HTTP server.
pub fn run(listener: TcpListener, site: Arc<Site>) -> io::Result<()> {
    let server = Arc::new(Server::from_listener(listener, None).map_err(io::Error::other)?);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (server, site) = (Arc::clone(&server), Arc::clone(&site));
            std::thread::spawn(move || {
                while !site.stopped() {
                    match server.recv_timeout(Duration::from_millis(200)) {
                        Ok(Some(request)) => handle(&site, request),
                        Ok(None) => {}
                        Err(e) => eprintln!("warning: a request could not be read: {e}"),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

/// A fingerprint of the files under `dirs` (their paths, sizes and modification times),
/// skipping names that start with a dot and the directories in `skip`.
pub fn fingerprint(dirs: &[PathBuf], skip: &[PathBuf]) -> u64 {
    fn walk(dir: &Path, skip: &[PathBuf], hasher: &mut DefaultHasher) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden || skip.iter().any(|s| s == &path) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            path.hash(hasher);
            meta.len().hash(hasher);
            meta.modified().ok().hash(hasher);
            if meta.is_dir() {
                walk(&path, skip, hasher);
            }
        }
    }
    let mut hasher = DefaultHasher::new();
    for dir in dirs {
        walk(dir, skip, &mut hasher);
    }
    hasher.finish()
}

/// The fingerprint [`watch`] compares with: of the files under `dirs`, leaving out the served
/// book `served` and the next build beside it. Taken before the served book is built, it makes
/// a change made during that build, or before the watcher starts, count as a change.
pub fn sources_fingerprint(served: &Path, dirs: &[PathBuf]) -> u64 {
    let mut skip = vec![served.to_path_buf()];
    skip.extend(super::sibling(served, "next"));
    fingerprint(dirs, &skip)
}

/// Polls `dirs` every `interval` until [`Site::stop`], starting from `built_from`, the
/// [`sources_fingerprint`] of the sources the served book was built from; after a change,
/// `rebuild` writes a new book into a sibling of the served directory (`.NAME.next`, emptied
/// first). When it succeeds, the new book is published ([`Site::publish`]) and open pages reload; when it
/// fails, its message is printed, the partial build removed, and the last good book stays.
///
/// `rebuild` returns a line to print on success (what was built, in how long).
pub fn watch(
    site: &Site,
    dirs: &[PathBuf],
    built_from: u64,
    interval: Duration,
    mut rebuild: impl FnMut(&Path) -> Result<String, String>,
) {
    let served = site.root();
    let next = match super::sibling(&served, "next") {
        Ok(next) => next,
        Err(e) => return eprintln!("error: cannot watch for changes: {e}"),
    };
    let mut seen = built_from;
    while !site.stopped() {
        std::thread::sleep(interval);
        let now = sources_fingerprint(&served, dirs);
        if now == seen {
            continue;
        }
        seen = now;
        let started = Instant::now();
        let _ = fs::remove_dir_all(&next);
        let outcome = rebuild(&next).and_then(|summary| {
            site.publish(&next)
                .map(|()| summary)
                .map_err(|e| format!("cannot replace {}: {e}", site.root().display()))
        });
        match outcome {
            Ok(summary) => println!(
                "rebuilt after a change ({:.2} s): {summary}; open pages reload (version {})",
                started.elapsed().as_secs_f64(),
                site.version()
            ),
            Err(message) => {
                let _ = fs::remove_dir_all(&next);
                eprintln!("error: the rebuild failed, still serving the last good book: {message}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("aiayn-serve-test-{}", std::process::id()));
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("index.html"), "home").unwrap();
        fs::write(dir.join("sub/index.html"), "sub").unwrap();
        fs::write(dir.join("a b.css"), "x").unwrap();
        // a link out of the book, and a "page" that is a directory
        let outside =
            std::env::temp_dir().join(format!("aiayn-serve-test-outside-{}", std::process::id()));
        fs::write(&outside, "secret").unwrap();
        let _ = fs::remove_file(dir.join("out.html"));
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, dir.join("out.html")).unwrap();
        fs::create_dir_all(dir.join("odd/index.html")).unwrap();
        dir
    }

    #[test]
    fn paths_resolve_inside_the_book_only() {
        let root = book();
        let real = |p: &str| Resolved::File(root.join(p).canonicalize().unwrap());
        assert_eq!(resolve(&root, "/"), real("index.html"));
        assert_eq!(resolve(&root, "/sub/?q=1"), real("sub/index.html"));
        assert_eq!(
            resolve(&root, "/sub"),
            Resolved::Redirect("/sub/".to_string())
        );
        assert_eq!(resolve(&root, "/a%20b.css"), real("a b.css"));
        assert_eq!(resolve(&root, "/./a%20b.css"), real("a b.css"));
        assert_eq!(resolve(&root, "/missing.html"), Resolved::NotFound);
        // inside the book but not a file: nothing to send, and nothing forbidden
        assert_eq!(resolve(&root, "/odd/"), Resolved::NotFound);
        // a link that leads out of the book is refused, though its target exists
        #[cfg(unix)]
        assert_eq!(resolve(&root, "/out.html"), Resolved::Forbidden);
        for bad in [
            "/../etc/passwd",
            "/sub/../../x",
            "/%2e%2e/x",
            "/..%2fx",
            "x",
            "/a\\b",
            "/%zz",
        ] {
            assert_eq!(resolve(&root, bad), Resolved::Forbidden, "{bad}");
        }
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn the_reload_script_goes_before_the_last_body_end() {
        let page = with_reload(b"<html><body>x</BODY></html>", 7);
        let page = String::from_utf8(page).unwrap();
        assert!(page.starts_with("<html><body>x<script>"), "{page}");
        assert!(page.ends_with("</script>\n</BODY></html>"), "{page}");
        assert!(page.contains("var served = \"7\""), "{page}");
        let bare = String::from_utf8(with_reload(b"x", 2)).unwrap();
        assert!(bare.starts_with("x<script>"), "{bare}");
    }

    #[test]
    fn the_fingerprint_changes_with_a_file_but_not_with_hidden_or_skipped_ones() {
        let dir = std::env::temp_dir().join(format!("aiayn-fingerprint-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("skipped")).unwrap();
        fs::create_dir_all(dir.join("kept")).unwrap();
        for f in ["a.md", ".hidden", "skipped/x", "kept/y"] {
            fs::write(dir.join(f), "1").unwrap();
        }
        let dirs = [dir.clone()];
        let skip = [dir.join("skipped")];
        let at_first = fingerprint(&dirs, &skip);
        assert_eq!(
            fingerprint(&dirs, &skip),
            at_first,
            "the same files, the same print"
        );
        // sizes change with each write, so the print does not rest on the clock's resolution
        fs::write(dir.join(".hidden"), "22").unwrap();
        fs::write(dir.join("skipped/x"), "22").unwrap();
        assert_eq!(fingerprint(&dirs, &skip), at_first);
        fs::write(dir.join("kept/y"), "22").unwrap();
        let changed = fingerprint(&dirs, &skip);
        assert_ne!(changed, at_first, "a file in a subdirectory counts");
        fs::write(dir.join("a.md"), "333").unwrap();
        assert_ne!(fingerprint(&dirs, &skip), changed);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn content_types_cover_the_book() {
        for (file, ty) in [
            ("a.html", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.svg", "image/svg+xml"),
            ("a.woff2", "font/woff2"),
            ("a.json", "application/json"),
            // every other type a book may hold, by its registered media type
            ("a.htm", "text/html; charset=utf-8"),
            ("a.mjs", "text/javascript; charset=utf-8"),
            ("a.js.map", "application/json"),
            ("a.png", "image/png"),
            ("a.jpg", "image/jpeg"),
            ("a.jpeg", "image/jpeg"),
            ("a.gif", "image/gif"),
            ("favicon.ico", "image/x-icon"),
            ("a.woff", "font/woff"),
            ("a.ttf", "font/ttf"),
            ("a.otf", "font/otf"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.md", "text/plain; charset=utf-8"),
            ("a.xml", "application/xml"),
            // the extension's case does not matter
            ("A.PNG", "image/png"),
            ("a.Html", "text/html; charset=utf-8"),
            // anything else is sent as bytes, never as a page
            ("a.wasm", "application/octet-stream"),
            ("README", "application/octet-stream"),
            ("html", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(file)), ty, "{file}");
        }
    }
}
