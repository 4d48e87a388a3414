//! `pamphlet keygen` as a user runs it.

use std::process::Command;

use pamphlet_crypto::Uri;

fn keygen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pamphlet")).arg("keygen").args(args).output().expect("run pamphlet")
}

#[test]
fn prints_distinct_insert_and_request_uris() {
    let out = keygen(&[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |label: &str| text.lines().find_map(|l| l.strip_prefix(label)).unwrap().trim().to_owned();
    let insert = field("insert URI:");
    let request = field("request URI:");
    let (Uri::SskInsert(i), Uri::SskRequest(r)) = (Uri::parse(&insert).unwrap(), Uri::parse(&request).unwrap()) else {
        panic!("keygen printed the wrong URI kinds: {text}");
    };
    assert_eq!(i.request_uri(), r);
    assert_ne!(insert, request);
}

#[test]
fn json_output_and_fresh_keys() {
    let a: serde_json::Value = serde_json::from_slice(&keygen(&["--json", "--name", "blog"]).stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&keygen(&["--json", "--name", "blog"]).stdout).unwrap();
    assert_ne!(a["insert_uri"], b["insert_uri"], "each keygen must make a new key");
    assert!(a["request_uri"].as_str().unwrap().ends_with("/blog"));
}

#[test]
fn bad_name_is_a_clear_error() {
    let out = keygen(&["--name", "a/b"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name"));
}
