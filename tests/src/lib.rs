//! Integration tests for pamphlet live in `tests/`: each file starts real `pamphlet`
//! processes or nodes on 127.0.0.1 and checks what a user would see.
//!
//! This library only holds helpers shared by those tests.

#![forbid(unsafe_code)]

use std::path::PathBuf;

/// The `pamphlet` binary built by this workspace (`target/<profile>/pamphlet`).
///
/// `cargo test --workspace` builds it because the `pamphlet` package has integration tests
/// of its own; tests here find it next to their own executable.
///
/// # Panics
/// If the binary has not been built; the message says how to build it.
pub fn pamphlet_bin() -> PathBuf {
    let mut dir = std::env::current_exe().expect("path of the running test");
    dir.pop(); // the test executable
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("pamphlet{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} not found: run `cargo build -p pamphlet` first", bin.display());
    bin
}
