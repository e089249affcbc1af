//! Proves the book's "Take this code" boxes: for each box, copies exactly its files into a
//! fresh crate in a temporary directory, writes the box's `lib.rs`, `Cargo.toml` and example
//! (`book/take/<name>.rs`) as `main.rs`, builds it and checks that it prints what the box says.
//! The boxes share one target directory, so nalgebra compiles once.
//!
//!     bash book/check-take-this-code.sh          # or: cargo run --release --example take_this_code [NAME...]
//!
//! The target directory is `$CARGO_TARGET_DIR/take-this-code` (`target/take-this-code` if unset).
//! Exits 1 if a box fails, 2 if a name is not a box.

use std::path::PathBuf;
use std::time::Instant;

use aiayn::book::take::{find, run_in_fresh_crate, write_crate, Take, TAKES};

fn main() {
    let root = aiayn::book::default_root();
    let names: Vec<String> = std::env::args().skip(1).collect();
    let takes: Vec<&Take> = if names.is_empty() {
        TAKES.iter().collect()
    } else {
        match names.iter().map(|n| find(n)).collect::<Result<Vec<_>, _>>() {
            Ok(takes) => takes,
            Err(e) => {
                eprintln!("take-this-code: {e}");
                std::process::exit(2);
            }
        }
    };
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("take-this-code");
    let scratch = std::env::temp_dir().join(format!("aiayn-take-this-code-{}", std::process::id()));
    let (mut passed, mut failed) = (0, 0);
    let start = Instant::now();
    for take in takes {
        let dir = scratch.join(take.name);
        let began = Instant::now();
        let result = write_crate(&root, take, &dir)
            .and_then(|()| run_in_fresh_crate(&root, take, &dir, &target));
        let secs = began.elapsed().as_secs_f64();
        match result {
            Ok(()) => {
                passed += 1;
                let files = match take.files.len() {
                    1 => "1 file".to_string(),
                    n => format!("{n} files"),
                };
                println!("ok      {:<14} {files:<9} {secs:5.1} s", take.name);
            }
            Err(e) => {
                failed += 1;
                println!("FAILED  {:<14} {e}", take.name);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!(
        "take this code: {passed} passed, {failed} failed in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
