//! `ClientPutComplexDir`, `ClientPutDiskDir` and `ClientGet` of a file inside a site, on a
//! map of blocks.

use super::message::Message;
use super::tests::Client;

fn noise(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// A `ClientPutComplexDir` of direct files, as fred reads it: no `DataLength`, the files'
/// bytes one after the other.
fn complex(id: &str, uri: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut head = format!("ClientPutComplexDir\nIdentifier={id}\nURI={uri}\nDefaultName=index.html\n");
    let mut data = Vec::new();
    for (i, (name, bytes)) in files.iter().enumerate() {
        head += &format!("Files.{i}.Name={name}\nFiles.{i}.UploadFrom=direct\nFiles.{i}.DataLength={}\n", bytes.len());
        data.extend_from_slice(bytes);
    }
    head += "Data\n";
    [head.into_bytes(), data].concat()
}

async fn fetch(c: &mut Client, uri: &str) -> Result<Vec<u8>, Message> {
    match c.get("g", uri).await {
        (_, Some(all)) => Ok(all.data.unwrap()),
        (failed, None) => Err(failed),
    }
}

#[tokio::test]
async fn a_complex_dir_publishes_a_site_whose_files_a_get_reaches() {
    let mut c = Client::hello().await;
    let big = noise(50_000, 3);
    let files: [(&str, &[u8]); 3] =
        [("index.html", b"<h1>home</h1>"), ("about/team.html", b"<p>team</p>"), ("img/big.bin", &big)];
    c.send_raw(&complex("site", "CHK@", &files)).await;
    let done = c.until("PutSuccessful").await;
    assert_eq!(done[done.len() - 2].name, "URIGenerated");
    let root = done.last().unwrap().get("URI").unwrap().to_owned();
    assert!(root.starts_with("CHK@"), "{root}");

    assert_eq!(fetch(&mut c, &root).await.unwrap(), b"<h1>home</h1>", "the root is the default document");
    assert_eq!(fetch(&mut c, &format!("{root}/about/team.html")).await.unwrap(), b"<p>team</p>");
    assert_eq!(fetch(&mut c, &format!("{root}/img/big.bin")).await.unwrap(), big);
    let missing = fetch(&mut c, &format!("{root}/nope.html")).await.unwrap_err();
    assert_eq!((missing.name.as_str(), missing.get("Code")), ("GetFailed", Some("10")));

    // A redirect to a document already in the network becomes a file of the next site.
    let chk = c.put("p", "CHK@", &noise(10_000, 9)).await.get("URI").unwrap().to_owned();
    let msg = format!(
        "ClientPutComplexDir\nIdentifier=r\nURI=CHK@\nFiles.0.Name=index.html\nFiles.0.UploadFrom=redirect\nFiles.0.TargetURI={chk}\nEndMessage\n"
    );
    c.send_raw(msg.as_bytes()).await;
    let site = c.until("PutSuccessful").await.pop().unwrap().get("URI").unwrap().to_owned();
    assert_eq!(fetch(&mut c, &format!("{site}/index.html")).await.unwrap(), noise(10_000, 9));
    // A path inside a document that is not a site.
    let flat = fetch(&mut c, &format!("{chk}/a/b")).await.unwrap_err();
    assert_eq!(flat.get("Code"), Some("11"));
}

#[tokio::test]
async fn a_disk_dir_needs_the_dda_grant_and_publishes_a_usk_edition() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("index.html"), b"<p>disk site</p>").unwrap();
    std::fs::write(dir.path().join("sub/b.txt"), b"nested").unwrap();
    std::fs::write(dir.path().join(".secret"), b"hidden").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).unwrap();

    let mut c = Client::hello().await;
    c.send(Message::new("GenerateSSK").with("Identifier", "k")).await;
    let keys = c.recv().await;
    let (ins, public) = (keys.get("InsertURI").unwrap().to_owned(), keys.get("RequestURI").unwrap().to_owned());
    let usk = |k: &str, rest: &str| format!("{}{rest}", k.replacen("SSK@", "USK@", 1));
    let put = |id: &str, edition: &str| {
        Message::new("ClientPutDiskDir")
            .with("Identifier", id)
            .with("URI", usk(&ins, &format!("site/{edition}")))
            .with("Filename", &d)
    };
    c.send(put("dd", "1")).await;
    assert_eq!(c.recv().await.get("Code"), Some("25"), "no TestDDA yet");

    c.send(Message::new("TestDDARequest").with("Directory", &d).with("WantReadDirectory", "true")).await;
    let reply = c.recv().await;
    let content = std::fs::read_to_string(reply.get("ReadFilename").unwrap()).unwrap();
    c.send(Message::new("TestDDAResponse").with("Directory", &d).with("ReadContent", content)).await;
    assert_eq!(c.recv().await.get("ReadDirectoryAllowed"), Some("true"));
    c.send(put("dd", "1")).await;
    let done = c.until("PutSuccessful").await.pop().unwrap();
    assert_eq!(done.get("URI"), Some(usk(&public, "site/1").as_str()));
    let root = done.get("URI").unwrap().to_owned();
    assert_eq!(fetch(&mut c, &format!("{root}/sub/b.txt")).await.unwrap(), b"nested");
    assert_eq!(
        fetch(&mut c, &format!("{root}/.secret")).await.unwrap_err().get("Code"),
        Some("10"),
        "hidden files stay out"
    );
    assert_eq!(
        fetch(&mut c, &format!("{root}/link")).await.unwrap_err().get("Code"),
        Some("10"),
        "links are not followed"
    );

    // Edition 2 after a change; edition 1 is redirected to it, path and all.
    std::fs::write(dir.path().join("sub/b.txt"), b"changed").unwrap();
    c.send(put("dd2", "2")).await;
    c.until("PutSuccessful").await;
    let (redirect, _) = c.get("old", &format!("{root}/sub/b.txt")).await;
    assert_eq!(redirect.get("Code"), Some("27"));
    let newer = redirect.get("RedirectURI").unwrap().to_owned();
    assert_eq!(newer, usk(&public, "site/2/sub/b.txt"));
    assert_eq!(fetch(&mut c, &newer).await.unwrap(), b"changed");
    // Asked for an edition that exists (freesitemgr asks for its last one again), the site
    // goes to the next free edition, as with fred.
    std::fs::write(dir.path().join("sub/b.txt"), b"third").unwrap();
    c.send(put("dd3", "1")).await;
    let third = c.until("PutSuccessful").await.pop().unwrap();
    assert_eq!(third.get("URI"), Some(usk(&public, "site/3").as_str()));
    assert_eq!(fetch(&mut c, &usk(&public, "site/3/sub/b.txt")).await.unwrap(), b"third");
}

#[tokio::test]
async fn bad_site_requests_are_refused_with_freds_codes() {
    let mut c = Client::hello().await;
    for (files, code) in [
        (vec![("../up.html", b"x".as_slice())], "8"),
        (vec![("a", b"x".as_slice()), ("a/b", b"y".as_slice())], "8"),
        (vec![("a", b"x".as_slice()), ("a", b"y".as_slice())], "8"),
    ] {
        c.send_raw(&complex("bad", "CHK@", &files)).await;
        let m = c.outcome().await;
        assert_eq!((m.name.as_str(), m.get("Code")), ("ProtocolError", Some(code)), "{files:?}");
    }
    let msg = "ClientPutComplexDir\nIdentifier=n\nURI=CHK@\nDefaultName=home.html\nFiles.0.Name=home.html\nFiles.0.UploadFrom=redirect\nFiles.0.TargetURI=CHK@x\nEndMessage\n";
    c.send_raw(msg.as_bytes()).await;
    assert_eq!(c.recv().await.get("Code"), Some("16"), "another default document");
    let msg = "ClientPutComplexDir\nIdentifier=n\nURI=CHK@\nEndMessage\n";
    c.send_raw(msg.as_bytes()).await;
    assert_eq!(c.recv().await.get("Code"), Some("5"), "no files");
    let msg = "ClientPutComplexDir\nIdentifier=n\nURI=CHK@\nFiles.0.Name=a\nFiles.0.UploadFrom=disk\nFiles.0.Filename=/etc/passwd\nEndMessage\n";
    c.send_raw(msg.as_bytes()).await;
    assert_eq!(c.recv().await.get("Code"), Some("25"), "disk files need TestDDA");
    // The connection is still usable.
    assert_eq!(c.put("ok", "CHK@", b"fine").await.name, "PutSuccessful");
}
