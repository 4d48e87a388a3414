//! Sites end to end: `pamphlet insert --site DIR` at one node of a test darknet, and
//! `pamphlet fetch --site URI -o DIR` at another mirrors every file, byte for byte, and
//! only below DIR.

use std::path::{Path, PathBuf};

use pamphlet_tests::{darknet_up, pamphlet, pamphlet_ok};

/// Every regular file below `root`, as (relative path with `/`, bytes), sorted.
fn files_below(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_str().unwrap().replace('\\', "/");
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_site_mirrors_byte_for_byte_and_only_below_its_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dn");
    let _down = darknet_up(&dir, &["--nodes", "3", "--degree", "2", "--seed", "5", "--store-mib", "8"]);
    let node = |i: usize| dir.join(format!("node{i}")).to_str().unwrap().to_owned();
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/freesite");
    let uri = pamphlet_ok(&["insert", "--site", site.to_str().unwrap(), "--dir", &node(0)]);
    let uri = uri.lines().last().unwrap().trim().to_owned();

    let out = root.path().join("mirror");
    let o = out.to_str().unwrap();
    pamphlet_ok(&["fetch", "--site", &uri, "-o", o, "--dir", &node(2)]);
    let published = files_below(&site);
    assert!(published.len() >= 6 && published.iter().any(|(p, _)| p == "about/team.html"));
    assert!(files_below(&out) == published, "every file of the site, at its path, byte for byte");

    // A second mirror into the same directory replaces nothing without --force…
    std::fs::write(out.join("index.html"), b"my own edit").unwrap();
    let again = pamphlet(&["fetch", "--site", &uri, "-o", o, "--dir", &node(2)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"), "says how to replace");
    assert_eq!(std::fs::read(out.join("index.html")).unwrap(), b"my own edit");
    // …and everything with it.
    pamphlet_ok(&["fetch", "--site", &uri, "-o", o, "--force", "--dir", &node(2)]);
    assert!(files_below(&out) == published);

    // A directory of the site that is a symbolic link out of DIR stops the mirror, and
    // nothing is written where it points.
    #[cfg(unix)]
    {
        let trap = root.path().join("trap");
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir_all(&trap).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, trap.join("about")).unwrap();
        let t = trap.to_str().unwrap();
        let refused = pamphlet(&["fetch", "--site", &uri, "-o", t, "--force", "--dir", &node(2)]);
        assert!(!refused.status.success(), "a symbolic link in the way is refused");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("symbolic link"));
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing written through the link");
    }

    // A file URI, or a document that is no site, is refused with a clear error.
    let not_site = pamphlet(&["fetch", "--site", &format!("{uri}index.html"), "-o", o, "--dir", &node(2)]);
    assert!(!not_site.status.success());
    assert!(String::from_utf8_lossy(&not_site.stderr).contains("without a path"));
}
