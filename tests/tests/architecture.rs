//! The house rules of docs/architecture.md, checked on the source text so a change that
//! breaks them fails here instead of in a review:
//!
//! - **Floors.** Each top-level module of `pamphlet-node` may use only the modules on the
//!   floors below it (the table in [`allowed`]); nothing uses the crate root's re-exports
//!   (`crate::Node`), which would hide where a type really lives.
//! - **No two sibling modules use each other** (in either crate): two files that need each
//!   other are one concept split wrongly, or two that need a third below them.
//! - **Small files.** No source file over [`MAX_LINES`] lines (STYLE.md 9).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may grow before it should be split by concept.
const MAX_LINES: usize = 800;

/// What each top-level module of `pamphlet-node` may use, besides itself. Floors, bottom
/// up: `id`, `location` | `wire`, `store`, `link` | `routing` | `node` | `client`,
/// `transport` | `api`, `sim` | `gateway`, `fcp` (they serve through the API's backend) |
/// `daemon`. A module missing here is a new room: add it.
fn allowed(module: &str) -> Option<&'static [&'static str]> {
    Some(match module {
        "id" | "location" => &[],
        "wire" | "store" => &["id", "location"],
        "link" => &["id", "wire"],
        "routing" => &["id", "location", "wire"],
        "node" => &["id", "location", "wire", "store", "routing"],
        "client" => &["id", "location", "wire", "store", "routing", "node"],
        "transport" => &["id", "location", "wire", "link"],
        "api" => &["id", "location", "wire", "store", "routing", "node", "client", "link"],
        "gateway" => &["id", "location", "wire", "store", "routing", "node", "client", "link", "api"],
        "sim" => &["id", "location", "wire", "store", "routing", "node", "client"],
        "fcp" => &["id", "location", "wire", "store", "routing", "node", "client", "link", "api"],
        "daemon" => &[
            "id",
            "location",
            "wire",
            "store",
            "link",
            "routing",
            "node",
            "client",
            "transport",
            "api",
            "gateway",
            "fcp",
        ],
        "lib" => &[
            "api",
            "client",
            "daemon",
            "fcp",
            "gateway",
            "id",
            "link",
            "location",
            "node",
            "routing",
            "sim",
            "store",
            "transport",
            "wire",
        ],
        _ => return None,
    })
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable source dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The file's code without comments (doc links name `crate::` paths too) and without its
/// unit tests (a test may use a sibling's test double; that is no dependency of the code).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("readable source");
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod "))
        .unwrap_or(lines.len());
    lines[..end].iter().filter(|l| !l.trim_start().starts_with("//")).copied().collect::<Vec<_>>().join("\n")
}

/// The identifiers that follow each occurrence of `prefix` (e.g. `crate::` → `wire`).
fn after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    code.match_indices(prefix)
        .filter(|(i, _)| !code[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// `node/src/wire/frame.rs` → `wire`; `node/src/lib.rs` → `lib`; `node/src/id.rs` → `id`.
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component").as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn node_modules_use_only_the_floors_below_them() {
    let src = workspace().join("node/src");
    let mut wrong = Vec::new();
    for file in sources(&src) {
        let module = top_module(&src, &file);
        let Some(ok) = allowed(&module) else {
            wrong.push(format!("{}: module `{module}` has no floor in this test's table", file.display()));
            continue;
        };
        let code = code(&file);
        for used in after(&code, "crate::") {
            if used.starts_with(|c: char| c.is_uppercase()) || used.is_empty() {
                wrong.push(format!("{}: uses the crate root's re-export `crate::{used}`", file.display()));
            } else if used != module && !ok.contains(&used) {
                wrong.push(format!("{}: `{module}` uses `crate::{used}`, a floor above it", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that break the floors:\n{}", wrong.join("\n"));
}

#[test]
fn no_two_sibling_modules_use_each_other() {
    let mut loops = Vec::new();
    for krate in ["crypto/src", "node/src", "cli/src"] {
        let src = workspace().join(krate);
        // (folder, file stem) -> sibling stems it names through `super::` or its full path.
        let mut uses: BTreeMap<(PathBuf, String), BTreeSet<String>> = BTreeMap::new();
        let files = sources(&src);
        for file in &files {
            let dir = file.parent().expect("a folder").to_path_buf();
            let stem = file.file_stem().expect("a name").to_string_lossy().into_owned();
            if stem == "mod" || stem == "lib" || stem == "main" {
                continue;
            }
            let siblings: BTreeSet<String> = files
                .iter()
                .filter(|f| f.parent() == Some(&dir))
                .map(|f| f.file_stem().expect("a name").to_string_lossy().into_owned())
                .filter(|s| s != &stem && s != "mod" && s != "lib" && s != "main")
                .collect();
            let code = code(file);
            let rel = dir.strip_prefix(&src).expect("under src").to_string_lossy().replace('/', "::");
            let mut names: Vec<&str> = after(&code, "super::");
            if dir == src {
                names.extend(after(&code, "crate::"));
            } else {
                names.extend(after(&code, &format!("crate::{rel}::")));
            }
            let named: BTreeSet<String> =
                names.into_iter().filter(|n| siblings.contains(*n)).map(str::to_owned).collect();
            uses.insert((dir, stem), named);
        }
        for ((dir, a), named) in &uses {
            for b in named {
                let back = uses.get(&(dir.clone(), b.clone())).is_some_and(|n| n.contains(a));
                if back && a < b {
                    loops.push(format!("{}: {a}.rs and {b}.rs use each other", dir.display()));
                }
            }
        }
    }
    assert!(loops.is_empty(), "modules that import each other:\n{}", loops.join("\n"));
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for krate in
        ["crypto/src", "crypto/tests", "node/src", "node/tests", "node/benches", "cli/src", "tests/src", "tests/tests"]
    {
        for file in sources(&workspace().join(krate)) {
            let lines = std::fs::read_to_string(&file).expect("readable").lines().count();
            if lines > MAX_LINES {
                long.push(format!("{} has {lines} lines", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "split these by concept (STYLE.md 9):\n{}", long.join("\n"));
}
