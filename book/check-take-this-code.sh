#!/usr/bin/env bash
# Proves the book's "Take this code" boxes: for every box (src/book/take.rs), copies exactly the
# files it lists into a fresh crate in a temporary directory, writes its lib.rs, its
# Cargo.toml (this crate's lines for the crates it lists, this crate's Cargo.lock) and its
# example book/take/NAME.rs as main.rs, builds the crate with warnings denied (offline when the
# registry cache has the crates) and checks that the example prints what the box says.
#
#   bash book/check-take-this-code.sh              # every box
#   bash book/check-take-this-code.sh attention    # some boxes, by name
#
# The boxes share one target directory, $CARGO_TARGET_DIR/take-this-code (target/take-this-code
# if unset), so nalgebra compiles once. Prints one line per box and exits non-zero if any failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo run --release --quiet --example take_this_code -- "$@"
