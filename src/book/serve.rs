//! A small static file server for the built book, on `std::net` alone.
//!
//! GET and HEAD only; `index.html` for a directory; the book's `404.html` (or a plain message)
//! for anything missing; a path that decodes to `..`, a backslash or a NUL is refused, and every
//! served file must resolve inside the book's directory.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

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

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that is not UTF-8.
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
        if !decoded.ends_with('/') {
            return Resolved::Redirect(format!("{decoded}/"));
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

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    extra: &str,
) -> io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// Answers one request on `stream`.
pub fn handle(root: &Path, mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.by_ref().take(8192).read_line(&mut request_line)?;
    // Read (and ignore) the headers, up to a limit.
    let mut header = String::new();
    for _ in 0..100 {
        header.clear();
        if reader.by_ref().take(8192).read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            b"only GET and HEAD\n",
            false,
            "Allow: GET, HEAD\r\n",
        );
    }
    match resolve(root, target) {
        Resolved::File(path) => match fs::read(&path) {
            Ok(body) => respond(
                &mut stream,
                "200 OK",
                content_type(&path),
                &body,
                head_only,
                "",
            ),
            Err(_) => not_found(root, &mut stream, head_only),
        },
        Resolved::Redirect(location) => respond(
            &mut stream,
            "301 Moved Permanently",
            "text/plain; charset=utf-8",
            b"moved\n",
            head_only,
            &format!("Location: {location}\r\n"),
        ),
        Resolved::NotFound => not_found(root, &mut stream, head_only),
        Resolved::Forbidden => respond(
            &mut stream,
            "403 Forbidden",
            "text/plain; charset=utf-8",
            b"forbidden\n",
            head_only,
            "",
        ),
    }
}

fn not_found(root: &Path, stream: &mut TcpStream, head_only: bool) -> io::Result<()> {
    match fs::read(root.join("404.html")) {
        Ok(body) => respond(
            stream,
            "404 Not Found",
            "text/html; charset=utf-8",
            &body,
            head_only,
            "",
        ),
        Err(_) => respond(
            stream,
            "404 Not Found",
            "text/plain; charset=utf-8",
            b"not found\n",
            head_only,
            "",
        ),
    }
}

/// Serves `root` on an already bound listener until the process ends. One thread per
/// connection; a failed connection is reported and the server goes on.
pub fn run(listener: TcpListener, root: &Path) -> io::Result<()> {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let root = root.to_path_buf();
                std::thread::spawn(move || {
                    let _ = handle(&root, stream);
                });
            }
            Err(e) => eprintln!("warning: could not accept a connection: {e}"),
        }
    }
    Ok(())
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
        assert_eq!(resolve(&root, "/missing.html"), Resolved::NotFound);
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
    fn content_types_cover_the_book() {
        for (file, ty) in [
            ("a.html", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.svg", "image/svg+xml"),
            ("a.woff2", "font/woff2"),
            ("a.json", "application/json"),
        ] {
            assert_eq!(content_type(Path::new(file)), ty);
        }
    }
}
