//! End to end with a real browser: Debian's `chromium`, headless, against a test darknet's
//! gateway. The hostile fixture freesite (tests/fixtures/freesite/) is inserted at one node
//! and opened through another node's gateway; the test reads what the browser built (its
//! DOM after load) and everything it asked the network for (its net log), with every host
//! name but the gateway's resolving to nothing.
//!
//! Without `chromium` on the PATH the test says so and passes, except under `CI=true`,
//! where a missing browser is a failure (`.ci/run` installs it).

// Tests report what they skipped or saved on stderr.
#![allow(clippy::print_stderr)]
// A test drives real processes with real time.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pamphlet_tests::{darknet_up, pamphlet_ok};
use serde_json::Value;

/// The browser, or `None` (after saying why) when the test should be skipped.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is not installed, and under CI=true the browser test must run (.ci/run installs it)"
        );
        eprintln!("SKIPPED browser test: no `chromium` on the PATH (apt-get install --no-install-recommends chromium)");
    }
    found
}

/// How long one browser run may take. A page loads in about a second here; a loaded
/// machine is slow to start a browser, and a minute is far more than it needs.
const BROWSER_WAIT: Duration = Duration::from_secs(60);

/// Runs that hang before the test gives up.
const BROWSER_HANGS: u32 = 3;

/// One headless browser run: its own profile, no proxy, no background services, every host
/// name but 127.0.0.1 resolving to nothing, a net log of every request it made.
struct Browser {
    bin: PathBuf,
    dir: PathBuf,
}

/// What one page load gave: the DOM after load (for `--dump-dom`), the URLs the page
/// itself made the browser request, and the whole net log as text.
struct Visit {
    dom: String,
    page_requests: Vec<String>,
    netlog: String,
}

impl Browser {
    /// Loads `url`; when a slow fetch made the gateway answer with its progress page, loads
    /// it again (the reload takes the finished page), as the page's own refresh would.
    ///
    /// A headless Chromium that never exits (seen in CI on the unfiltered fixture, whose
    /// meta refresh navigates away while the DOM is being dumped) is killed and run again,
    /// up to [`BROWSER_HANGS`] times: that is the browser's flake, not the gateway's.
    fn run(&self, name: &str, extra: &[String], url: &str) -> Visit {
        let mut hangs = 0;
        for attempt in 0..20 {
            let Some(visit) = self.run_once(&format!("{name}-{attempt}"), extra, url) else {
                hangs += 1;
                assert!(hangs < BROWSER_HANGS, "chromium did not finish {url} in {BROWSER_WAIT:?}, {hangs} times");
                eprintln!("chromium hung on {url}; running it again");
                continue;
            };
            if !visit.dom.contains("<title>Fetching…</title>") {
                return visit;
            }
        }
        panic!("{url} still showed the gateway's progress page after 20 loads");
    }

    /// The unfiltered control, whose net log is all that matters: a run that hangs (its
    /// meta refresh racing the DOM dump; CI once hung on it three times in a row) is
    /// stopped and its net log read as it stands, if that already shows the page reaching
    /// for `outside`. Runs again otherwise, up to [`BROWSER_HANGS`] times.
    fn run_control(&self, url: &str, outside: &str) -> Visit {
        for attempt in 0..BROWSER_HANGS {
            let name = format!("raw-{attempt}");
            if let Some(visit) = self.run_once_or_stop(&name, &["--dump-dom".into()], url, true) {
                if visit.netlog.contains(outside) {
                    return visit;
                }
            }
            eprintln!("chromium's run of {url} did not reach {outside}; running it again");
        }
        panic!("chromium never showed {url} reaching {outside} in {BROWSER_HANGS} runs");
    }

    /// One browser run, or `None` if it did not exit within [`BROWSER_WAIT`].
    fn run_once(&self, name: &str, extra: &[String], url: &str) -> Option<Visit> {
        self.run_once_or_stop(name, extra, url, false)
    }

    /// One browser run. One that does not exit within [`BROWSER_WAIT`] is stopped (TERM,
    /// so it can close its net log, then KILL): `None`, or with `keep_stopped` what it
    /// had written by then.
    fn run_once_or_stop(&self, name: &str, extra: &[String], url: &str, keep_stopped: bool) -> Option<Visit> {
        let profile = self.dir.join(format!("profile-{name}"));
        let netlog = self.dir.join(format!("netlog-{name}.json"));
        let mut child = Command::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--no-proxy-server",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--disable-sync",
                "--disable-extensions",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--log-net-log={}", netlog.display()))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Read stdout on a thread so a full pipe cannot stall the browser.
        let mut out = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut s);
            s
        });
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            if child.try_wait().expect("wait for chromium").is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
                let grace = Instant::now() + Duration::from_secs(5);
                while child.try_wait().expect("wait for chromium").is_none() && Instant::now() < grace {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
                if !keep_stopped {
                    return None;
                }
                let dom = reader.join().unwrap_or_default();
                let netlog = std::fs::read_to_string(&netlog).ok()?;
                return Some(Visit { dom, page_requests: try_page_requests(&netlog)?, netlog });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let dom = reader.join().expect("stdout reader");
        let netlog = std::fs::read_to_string(&netlog).expect("chromium wrote its net log");
        Some(Visit { dom, page_requests: page_requests(&netlog), netlog })
    }
}

/// The URLs of the requests a page made (not the browser's own: Chromium asks Google for
/// the time, updates and accounts by itself, all resolved to nothing here). In the net log
/// these are the `URL_REQUEST_START_JOB` events with an initiator origin; the browser's
/// own requests and the top-level navigation have `"not an origin"`. A log cut short by
/// the exit is closed before parsing.
fn page_requests(text: &str) -> Vec<String> {
    try_page_requests(text).expect("the net log is JSON, with its event types and events")
}

/// [`page_requests`], or `None` if the log cannot be read (a browser stopped mid-write).
fn try_page_requests(text: &str) -> Option<Vec<String>> {
    let log: Value = serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .ok()?;
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64()?;
    let requests = log["events"]
        .as_array()?
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter(|e| e["params"]["initiator"].as_str().is_some_and(|i| i != "not an origin"))
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_owned))
        .collect();
    Some(requests)
}

/// The value of `attr` on the first `<tag …>` whose text after it starts with `text`, in a
/// serialised DOM (Chromium's, so attributes are quoted with `"` and escaped).
fn attr_before(dom: &str, tag: &str, attr: &str, text: &str) -> String {
    let end = dom.find(&format!(">{text}")).unwrap_or_else(|| panic!("no element with text {text:?}"));
    let start = dom[..end].rfind(&format!("<{tag} ")).unwrap_or_else(|| panic!("no <{tag}> before {text:?}"));
    let open = &dom[start..end];
    let key = format!("{attr}=\"");
    let from = open.find(&key).unwrap_or_else(|| panic!("no {attr} on {open}")) + key.len();
    let value = &open[from..];
    value[..value.find('"').expect("closing quote")].replace("&amp;", "&")
}

fn fixture_site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/freesite")
}

#[test]
fn a_hostile_freesite_renders_in_chromium_and_nothing_leaves_the_gateway() {
    let Some(bin) = chromium() else { return };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dn");
    let _down = darknet_up(&dir, &["--nodes", "5", "--degree", "2", "--seed", "16", "--store-mib", "8"]);
    let node = |i: usize| dir.join(format!("node{i}")).to_str().unwrap().to_owned();

    let site = fixture_site();
    let uri = pamphlet_ok(&["insert", "--site", site.to_str().unwrap(), "--dir", &node(0)]);
    let uri = uri.lines().last().unwrap().trim().to_owned();
    assert!(uri.starts_with("CHK@") && uri.ends_with('/'), "a site URI: {uri}");

    // Another node's gateway, at the address it wrote.
    let addr_file = dir.join("node3").join("gateway.addr");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !addr_file.exists() {
        assert!(Instant::now() < deadline, "node3 wrote no gateway.addr");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gateway = format!("http://{}", std::fs::read_to_string(&addr_file).unwrap().trim());
    let index = format!("{gateway}/{uri}");
    let browser = Browser { bin, dir: root.path().to_owned() };
    let only_gateway = |visit: &Visit, what: &str| {
        let outside: Vec<&String> =
            visit.page_requests.iter().filter(|u| !u.starts_with(&format!("{gateway}/"))).collect();
        assert!(outside.is_empty(), "{what}: the page made the browser ask for something else: {outside:?}");
        // Independently of how requests are told apart: the outside host of the fixture
        // appears nowhere in the log (no request, no DNS lookup, no socket).
        assert!(!visit.netlog.contains("evil.example"), "{what}: the browser tried to reach evil.example");
    };

    // The control: the same fixture opened from disk, unfiltered, runs its script and makes
    // the browser reach for evil.example, and the checks below see both.
    let raw = browser.run_control(&format!("file://{}", site.join("index.html").display()), "evil.example");
    // (Its meta refresh navigates away at once, so whose DOM gets dumped is a race: the
    // script control is a page of its own, with the fixture's script and nothing else.)
    let script_only = root.path().join("script.html");
    std::fs::write(&script_only, "<title>A freesite</title><script>document.title = \"PWNED by a script\";</script>")
        .unwrap();
    let ran = browser.run("script", &["--dump-dom".into()], &format!("file://{}", script_only.display()));
    assert!(ran.dom.contains("PWNED"), "a script that is not filtered runs and rewrites the title: {}", ran.dom);
    assert!(raw.page_requests.iter().any(|u| u.starts_with("http://evil.example/")), "{:?}", raw.page_requests);

    // The index page, as the browser built it after load.
    let page = browser.run("index", &["--dump-dom".into()], &index);
    let dom = &page.dom;
    assert!(dom.contains("<title>A freesite</title>"), "the script that sets the title did not run:\n{dom}");
    assert!(!dom.contains("PWNED"), "no script ran:\n{dom}");
    assert!(!dom.to_lowercase().contains("<script"), "no script element reached the browser");
    assert!(dom.contains("This text is the good content and must survive."), "the text renders");
    assert!(dom.contains("Welcome to the freesite"), "the heading renders");
    assert!(!dom.contains("evil.example/outside.png") && !dom.contains("<iframe"), "outside resources are gone");
    // The image and the stylesheet came from the site, through the gateway.
    let logo = format!("{gateway}/{uri}logo.png");
    let style = format!("{gateway}/{uri}style.css");
    assert!(
        page.page_requests.contains(&logo),
        "the browser loaded the logo through the gateway: {:?}",
        page.page_requests
    );
    assert!(
        page.page_requests.contains(&style),
        "the browser loaded the stylesheet through the gateway: {:?}",
        page.page_requests
    );
    only_gateway(&page, "the index page");

    // The outside link leads to the warning page, which shows the address and does not
    // follow it.
    let outside = attr_before(dom, "a", "href", "an outside link");
    assert!(outside.starts_with("/external?url="), "the outside link goes to the warning page: {outside}");
    let warning = browser.run("external", &["--dump-dom".into()], &format!("{gateway}{outside}"));
    assert!(warning.dom.contains("A link outside pamphlet"), "the warning page:\n{}", warning.dom);
    assert!(warning.dom.contains("http://evil.example/page?x=1"), "it shows the address");
    only_gateway(&warning, "the warning page");

    // An internal link reaches the nested page.
    let team = attr_before(dom, "a", "href", "Meet the team");
    assert_eq!(team, format!("/{uri}about/team.html"));
    let nested = browser.run("team", &["--dump-dom".into()], &format!("{gateway}{team}"));
    assert!(nested.dom.contains("We write pages."), "the nested page renders:\n{}", nested.dom);
    only_gateway(&nested, "the nested page");

    // An updatable site: edition 1, then edition 2 with a changed page; the browser, sent
    // to edition 1's address, shows edition 2.
    let keys: Value = serde_json::from_str(&pamphlet_ok(&["keygen", "--json"])).unwrap();
    let insert = keys["insert_uri"].as_str().unwrap();
    let copy = root.path().join("site-copy");
    std::fs::create_dir_all(copy.join("about")).unwrap();
    for f in ["index.html", "style.css", "logo.png", "about/team.html"] {
        std::fs::copy(site.join(f), copy.join(f)).unwrap();
    }
    let publish = |edition: &str| {
        let out = pamphlet_ok(&[
            "insert",
            "--site",
            copy.to_str().unwrap(),
            "--ssk",
            insert,
            "--name",
            "fixture",
            "--edition",
            edition,
            "--dir",
            &node(0),
        ]);
        out.lines().last().unwrap().trim().to_owned()
    };
    let first = publish("1");
    assert!(first.starts_with("USK@") && first.ends_with("/fixture/1/"), "{first}");
    let page_one = std::fs::read_to_string(copy.join("index.html")).unwrap();
    std::fs::write(copy.join("index.html"), page_one.replace("Welcome to the freesite", "Edition two is here"))
        .unwrap();
    let second = publish("2");
    let updated = browser.run("usk", &["--dump-dom".into()], &format!("{gateway}/{first}"));
    assert!(updated.dom.contains("Edition two is here"), "the USK address shows the new edition:\n{}", updated.dom);
    assert!(updated.dom.contains("<title>A freesite</title>") && !updated.dom.contains("PWNED"));
    assert!(
        updated.page_requests.iter().any(|u| u.starts_with(&format!("{gateway}/{second}"))),
        "its stylesheet and logo come from edition 2: {:?}",
        updated.page_requests
    );
    only_gateway(&updated, "the new edition");

    // A screenshot for a person to look at (kept when PAMPHLET_SCREENSHOT names a file).
    let shot = root.path().join("index.png");
    let visit = browser.run(
        "screenshot",
        &[format!("--screenshot={}", shot.display()), "--window-size=1000,700".into(), "--hide-scrollbars".into()],
        &index,
    );
    let png = std::fs::read(&shot).expect("chromium saved a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 2_000, "a real screenshot");
    only_gateway(&visit, "the screenshot run");
    if let Some(keep) = std::env::var_os("PAMPHLET_SCREENSHOT") {
        std::fs::copy(&shot, &keep).unwrap();
        eprintln!("screenshot saved to {}", Path::new(&keep).display());
    }
}
