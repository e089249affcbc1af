//! `aiayn serve` as a browser and a hostile client meet it: files with their types, nothing
//! from outside the book however the path is spelled, malformed, long and many concurrent
//! requests answered without the server stopping, and a change to a watched source rebuilding
//! the book and bumping the version that open pages poll (a failed rebuild changing nothing).
//!
//! Nothing here sleeps for a fixed time: every wait polls with a deadline.

#![cfg(feature = "book")]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiayn::book::serve::{self, Site, VERSION_PATH};

/// What a file outside the book holds; no response may ever contain it.
const SECRET: &str = "outside-the-book-4c1d";

/// A fresh directory under the target's scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A built book by hand (no mdBook needed): `DIR/book`, with a secret beside it and two
/// symlinks inside that lead out.
fn hand_made_book(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let book = dir.join("book");
    fs::create_dir_all(book.join("css")).unwrap();
    fs::create_dir_all(book.join("sub")).unwrap();
    fs::write(book.join("index.html"), "<html><body>Hello.</body></html>").unwrap();
    fs::write(
        book.join("404.html"),
        "<html><body>No such page.</body></html>",
    )
    .unwrap();
    fs::write(book.join("css/general.css"), "body {}").unwrap();
    fs::write(book.join("sub/index.html"), "<p>sub</p>").unwrap();
    fs::write(book.join("figure.svg"), "<svg/>").unwrap();
    fs::write(dir.join("secret.txt"), SECRET).unwrap();
    fs::create_dir_all(dir.join("private")).unwrap();
    fs::write(dir.join("private/secret.txt"), SECRET).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.join("secret.txt"), book.join("escape.txt")).unwrap();
        std::os::unix::fs::symlink(dir.join("private"), book.join("private")).unwrap();
    }
    (dir, book)
}

/// Serves `book` on a free port; the server stops with the returned site.
fn start(book: &Path, reload: bool) -> (u16, Arc<Site>) {
    let listener = aiayn::book::bind(0).unwrap();
    let port = listener.local_addr().unwrap().port();
    let site = Site::new(book.to_path_buf(), reload);
    let served = Arc::clone(&site);
    std::thread::spawn(move || aiayn::book::serve(listener, served));
    (port, site)
}

/// Sends `raw` as it is and returns what comes back before the server closes (or 10 s pass).
fn exchange(port: u16, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before a long request is all sent.
    let _ = stream.write_all(raw);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    response
}

/// GET `path`: the status line with the headers, and the body.
fn get(port: u16, path: &str) -> (String, String) {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let response = String::from_utf8_lossy(&exchange(port, raw.as_bytes())).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_string(), body.to_string())
}

fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// Polls `condition` every 20 ms until it holds or `limit` passes.
fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn files_are_served_with_their_types_and_missing_ones_with_the_404_page() {
    let (dir, book) = hand_made_book("types");
    let (port, site) = start(&book, false);
    let (head, body) = get(port, "/");
    assert_eq!(status(&head), 200, "{head}");
    assert!(
        head.contains("Content-Type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("X-Content-Type-Options: nosniff"), "{head}");
    assert_eq!(
        body, "<html><body>Hello.</body></html>",
        "no script without reload"
    );
    for (path, ty) in [
        ("/css/general.css?v=1", "text/css; charset=utf-8"),
        ("/figure.svg#top", "image/svg+xml"),
        ("/sub/", "text/html; charset=utf-8"),
    ] {
        let (head, _) = get(port, path);
        assert_eq!(status(&head), 200, "{path}: {head}");
        assert!(
            head.contains(&format!("Content-Type: {ty}")),
            "{path}: {head}"
        );
    }
    let (head, _) = get(port, "/sub");
    assert_eq!(status(&head), 301, "{head}");
    assert!(head.contains("Location: /sub/"), "{head}");
    let (head, body) = get(port, "/missing.html");
    assert_eq!(status(&head), 404, "{head}");
    assert!(body.contains("No such page."), "{body}");
    let head = String::from_utf8_lossy(&exchange(
        port,
        b"HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n",
    ))
    .into_owned();
    assert_eq!(status(&head), 200, "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head:?}");
    let (head, _) = get(port, &format!("{VERSION_PATH}?t=1"));
    assert_eq!(status(&head), 200, "{head}");
    site.stop();
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn no_spelling_of_a_path_reaches_a_file_outside_the_book() {
    let (dir, book) = hand_made_book("traversal");
    let (port, site) = start(&book, true);
    let secret = dir.join("secret.txt");
    let absolute = secret.to_str().unwrap();
    let targets = [
        "/../secret.txt".to_string(),
        "/css/../../secret.txt".to_string(),
        "/%2e%2e/secret.txt".to_string(),
        "/%2E%2E/secret.txt".to_string(),
        "/.%2e/secret.txt".to_string(),
        "/..%2fsecret.txt".to_string(),
        "/%2e%2e%2fsecret.txt".to_string(),
        "/%252e%252e/secret.txt".to_string(),
        "/%252e%252e%252fsecret.txt".to_string(),
        "/..\\secret.txt".to_string(),
        "/..%5csecret.txt".to_string(),
        "/css\\..\\..\\secret.txt".to_string(),
        absolute.to_string(),
        format!("/{absolute}"),
        format!("/%2f{}", &absolute[1..]),
        format!("http://localhost{absolute}"),
        "/secret.txt%00.html".to_string(),
        "/%00".to_string(),
        "/escape.txt".to_string(),
        "/private/secret.txt".to_string(),
        "/private/".to_string(),
        "/%zz".to_string(),
        "/%c0%ae%c0%ae/secret.txt".to_string(),
        "*".to_string(),
        String::new(),
    ];
    for target in &targets {
        let raw = format!("GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n");
        let response = String::from_utf8_lossy(&exchange(port, raw.as_bytes())).into_owned();
        let code = status(&response);
        assert!(
            [400, 403, 404].contains(&code),
            "{target:?}: answered {code}: {response}"
        );
        assert!(!response.contains(SECRET), "{target:?} leaked the secret");
    }
    let (head, body) = get(port, "/");
    assert_eq!(status(&head), 200, "{head}");
    assert!(body.contains("Hello."), "still serving after the probes");
    site.stop();
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn malformed_long_and_many_concurrent_requests_leave_the_server_serving() {
    let (dir, book) = hand_made_book("hostile");
    let (port, site) = start(&book, true);
    let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100_000));
    let long_header = format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "b".repeat(1 << 20));
    let many_headers = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(20_000));
    let requests: Vec<&[u8]> = vec![
        b"",
        b"\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"BREW / HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
        b"\x00\x01\x02\x03\xff\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost\r\n\r\n",
        b"GET / HTTP/1.1\n\n",
        long_target.as_bytes(),
        long_header.as_bytes(),
        many_headers.as_bytes(),
    ];
    for raw in &requests {
        let response = exchange(port, raw);
        let text = String::from_utf8_lossy(&response);
        assert!(
            !text.contains("panicked"),
            "{:?}: {text}",
            String::from_utf8_lossy(&raw[..raw.len().min(40)])
        );
        let (head, body) = get(port, "/");
        assert_eq!(
            status(&head),
            200,
            "after {:?}: {head}",
            String::from_utf8_lossy(&raw[..raw.len().min(40)])
        );
        assert!(body.contains("Hello."));
    }
    let (head, _) = get(port, &format!("/{}", "a".repeat(10_000)));
    assert_eq!(status(&head), 414, "{head}");
    // the limit is 8192 bytes of target: at it, an ordinary miss; one past it, refused
    let (head, _) = get(port, &format!("/{}", "a".repeat(8191)));
    assert_eq!(status(&head), 404, "{head}");
    let (head, _) = get(port, &format!("/{}", "a".repeat(8192)));
    assert_eq!(status(&head), 414, "{head}");

    // 200 connections open at once, each then asking for a page.
    let mut streams: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connects"))
        .collect();
    for stream in &mut streams {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .write_all(b"GET /css/general.css HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
    }
    let answered = streams
        .into_iter()
        .map(|mut stream| {
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            response
        })
        .filter(|r| r.starts_with("HTTP/1.1 200") && r.ends_with("body {}"))
        .count();
    assert_eq!(answered, 200, "every concurrent request is answered");
    let (head, _) = get(port, "/");
    assert_eq!(status(&head), 200, "{head}");
    site.stop();
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_change_rebuilds_bumps_the_version_and_a_failed_rebuild_keeps_the_last_book() {
    let dir = scratch("watch");
    let sources = dir.join("src");
    fs::create_dir_all(&sources).unwrap();
    fs::write(sources.join("chapter.md"), "first").unwrap();
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("index.html"), "<body>first</body>").unwrap();
    let (port, site) = start(&out, true);

    // The rebuild copies the chapter into the page, and fails on a chapter that says FAIL.
    let attempts = Arc::new(AtomicUsize::new(0));
    let (watcher, counted, watched) = (Arc::clone(&site), Arc::clone(&attempts), sources.clone());
    let built_from = serve::sources_fingerprint(&out, std::slice::from_ref(&sources));
    std::thread::spawn(move || {
        serve::watch(
            &watcher,
            std::slice::from_ref(&watched),
            built_from,
            Duration::from_millis(50),
            |next| {
                counted.fetch_add(1, Ordering::SeqCst);
                let text = fs::read_to_string(watched.join("chapter.md")).unwrap();
                fs::create_dir_all(next).unwrap();
                if text.contains("FAIL") {
                    fs::write(next.join("partial.html"), "half a book").unwrap();
                    return Err("chapter.md:1: FAIL".to_string());
                }
                fs::write(next.join("index.html"), format!("<body>{text}</body>")).unwrap();
                Ok("one page".to_string())
            },
        )
    });
    let version = || get(port, VERSION_PATH).1.trim().to_string();
    assert_eq!(version(), "1");
    let (_, page) = get(port, "/");
    assert!(page.contains("var served = \"1\""), "{page}");

    fs::write(sources.join("chapter.md"), "second, longer").unwrap();
    wait_for("the version to become 2", Duration::from_secs(20), || {
        version() == "2"
    });
    let (_, page) = get(port, "/");
    assert!(page.starts_with("<body>second, longer<script>"), "{page}");
    assert!(page.contains("var served = \"2\""), "{page}");

    fs::write(sources.join("chapter.md"), "FAIL").unwrap();
    wait_for("the failed rebuild", Duration::from_secs(20), || {
        attempts.load(Ordering::SeqCst) == 2
    });
    // the failure is handled before the next poll; then nothing has changed
    wait_for("the partial build to go", Duration::from_secs(20), || {
        !dir.join(".out.next").exists()
    });
    assert_eq!(version(), "2");
    let (head, page) = get(port, "/");
    assert_eq!(status(&head), 200, "{head}");
    assert!(page.starts_with("<body>second, longer"), "{page}");
    assert_eq!(status(&get(port, "/partial.html").0), 404);

    fs::write(sources.join("chapter.md"), "third, fixed").unwrap();
    wait_for("the version to become 3", Duration::from_secs(20), || {
        version() == "3"
    });
    assert!(get(port, "/").1.starts_with("<body>third, fixed"));
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(".out.")),
        "no staging directory is left: {names:?}"
    );
    site.stop();
    let _ = fs::remove_dir_all(dir);
}

/// Copies the crate's sources (not its built book) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let (path, name) = (entry.path(), entry.file_name());
        if name == "out" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// Ends the server process when the test ends, passing or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn aiayn_serve_rebuilds_the_real_book_when_a_chapter_changes() {
    let root = scratch("cli");
    let crate_root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for part in ["book", "src", "tests", "fixtures"] {
        copy_tree(&crate_root.join(part), &root.join(part));
    }
    // the "Take this code" boxes quote the crate's [dependencies]
    fs::copy(crate_root.join("Cargo.toml"), root.join("Cargo.toml")).unwrap();
    let out = root.join("served");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiayn"))
        .args(["serve", "--port", "0", "--out", out.to_str().unwrap()])
        .env("AIAYN_ROOT", &root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut server = Running(child);
    let port: u16 = loop {
        let Some(line) = lines.next() else {
            let mut stderr = String::new();
            let _ = server.0.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("the server ended before printing its address:\n{stderr}");
        };
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("serving the book at http://127.0.0.1:") {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    let version = || get(port, VERSION_PATH).1.trim().to_string();
    assert_eq!(version(), "1");
    let (head, page) = get(port, "/introduction.html");
    assert_eq!(status(&head), 200, "{head}");
    assert!(
        page.contains(VERSION_PATH),
        "the page carries the reload script"
    );

    let chapter = root.join("book/src/introduction.md");
    let text = fs::read_to_string(&chapter).unwrap();
    fs::write(
        &chapter,
        format!("{text}\nA sentence added while serving.\n"),
    )
    .unwrap();
    wait_for("the rebuilt book", Duration::from_secs(60), || {
        version() == "2"
    });
    assert!(get(port, "/introduction.html")
        .1
        .contains("A sentence added while serving."));

    // A LaTeX error: the rebuild fails, the page stays, the server says why on stderr.
    fs::write(&chapter, format!("{text}\n$$\n\\frac{{a}}\n$$\n")).unwrap();
    let mut stderr = BufReader::new(server.0.stderr.take().unwrap()).lines();
    let failure = loop {
        let line = stderr
            .next()
            .expect("the server reports the failure")
            .unwrap();
        if line.contains("the rebuild failed") {
            break line;
        }
    };
    assert!(failure.contains("introduction.md"), "{failure}");
    assert_eq!(version(), "2");
    assert!(get(port, "/introduction.html")
        .1
        .contains("A sentence added while serving."));
    assert!(server.0.try_wait().unwrap().is_none(), "still running");
    drop(server);
    let _ = fs::remove_dir_all(root);
}

#[test]
fn a_stopped_server_returns_within_a_poll_interval() {
    let (dir, book) = hand_made_book("stop");
    let listener = aiayn::book::bind(0).unwrap();
    let port = listener.local_addr().unwrap().port();
    let site = Site::new(book, false);
    let served = Arc::clone(&site);
    let (done, returned) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(aiayn::book::serve(listener, served).is_ok());
    });
    let (head, _) = get(port, "/");
    assert_eq!(status(&head), 200, "{head}");
    assert!(
        returned.recv_timeout(Duration::from_millis(600)).is_err(),
        "the server returned before it was stopped"
    );
    site.stop();
    let ok = returned
        .recv_timeout(Duration::from_secs(5))
        .expect("the server still runs 5 s after it was stopped");
    assert!(ok, "a stopped server returns Ok");
    let _ = fs::remove_dir_all(dir);
}
