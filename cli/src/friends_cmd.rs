//! `pamphlet node noderef | add-friend | friends | remove-friend`: this node's reference
//! and its friends. Each works whether the node runs (through its API, so a change takes
//! effect at once) or not (on the data directory's files, read at the next start).

use std::path::Path;

use anyhow::Result;
use pamphlet_node::daemon::{self, datadir, own_ref};
use pamphlet_node::link::NodeRef;
use pamphlet_node::transport::peer_id_of;
use serde_json::{json, Value};

use crate::api_client::ApiClient;
use crate::error::cli_error;

/// The running node's API, if it answers.
fn running(dir: &Path) -> Option<ApiClient> {
    ApiClient::for_dir(dir).ok().filter(|api| api.get_json("/v1/status").is_ok())
}

/// `node noderef`: print the signed reference; warn on stderr about addresses nobody else
/// could dial.
pub(crate) fn noderef(dir: &Path) -> Result<()> {
    let config = daemon::init(dir, None)?;
    let own = own_ref::own_noderef(dir, &config, config.listen)?;
    for warning in own_ref::unroutable_warnings(&own, config.listen) {
        eprintln!("warning: {warning}");
    }
    println!("{own}");
    Ok(())
}

/// `node add-friend REF`.
pub(crate) fn add_friend(dir: &Path, text: &str, json_out: bool) -> Result<()> {
    let friend: NodeRef =
        text.trim().parse().map_err(|e| cli_error("usage", format!("that is not a valid node reference: {e}")))?;
    daemon::init(dir, None)?;
    let own = datadir::load_or_create_keypair(&dir.join("identity.key"))?;
    if &friend.key == own.public() {
        return Err(cli_error(
            "usage",
            "that is this node's own reference (what `pamphlet node noderef` prints): add the reference your friend \
             gives you, and give them yours",
        ));
    }
    let (kept, outcome) = match running(dir) {
        // Running: the node dials at once and remembers the friend.
        Some(api) => {
            let v = api.post_bytes("/v1/friends", &[], friend.to_string().as_bytes())?;
            let kept = v["added"].as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| friend.clone());
            (kept, v["outcome"].as_str().unwrap_or("added").to_owned())
        }
        None => {
            let path = dir.join("friends");
            let known = datadir::load_friends(&path)?.into_iter().find(|f| f.key == friend.key);
            match known {
                None => {
                    datadir::append_friend(&path, &friend)?;
                    (friend.clone(), "added".to_owned())
                }
                Some(k) if friend.record().supersedes(k.record()) => {
                    datadir::replace_friend(&path, &friend)?;
                    (friend.clone(), "updated".to_owned())
                }
                Some(k) => (k, "known".to_owned()),
            }
        }
    };
    let short = kept.key.short();
    let addresses: Vec<String> = kept.addresses().iter().map(ToString::to_string).collect();
    if json_out {
        println!(
            "{}",
            json!({ "added": short, "outcome": outcome, "addresses": addresses, "must_add_you_back": outcome == "added" })
        );
        return Ok(());
    }
    match outcome.as_str() {
        "added" => {
            println!("added friend {short} at {}", addresses.join(", "));
            println!(
                "They must add you too: send them your reference (`pamphlet node noderef`). Until they add it, \
                 their node does not answer this one (`pamphlet node friends` then says \"they have not added you\")."
            );
        }
        "updated" => println!(
            "{short} was already a friend; its addresses are now {} (a newer reference, sequence {})",
            addresses.join(", "),
            kept.record().seq()
        ),
        _ => println!(
            "{short} is already a friend, with these addresses or newer ones ({}); nothing changed",
            addresses.join(", ")
        ),
    }
    Ok(())
}

/// The friends of a stopped node, from its friends file, in the API's shape.
fn friends_from_file(dir: &Path) -> Result<Vec<Value>> {
    let friends = datadir::load_friends(&dir.join("friends"))?;
    let seen = datadir::load_seen(&dir.join("friends.seen"))?;
    Ok(friends
        .iter()
        .map(|f| {
            json!({
                "peer": format!("{:016x}", peer_id_of(&f.key).0),
                "key": f.key.to_base64(),
                "noderef": f.to_string(),
                "addresses": f.addresses().iter().map(ToString::to_string).collect::<Vec<_>>(),
                "seq": f.record().seq(),
                "state": "node not running",
                "last_seen": seen.get(&f.key),
            })
        })
        .collect())
}

fn ago(unix: Option<u64>) -> String {
    let Some(t) = unix else { return "never".into() };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let s = now.saturating_sub(t);
    match s {
        0..=1 => "now".into(),
        2..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// `node friends`.
pub(crate) fn friends(dir: &Path, json_out: bool) -> Result<()> {
    let list = match running(dir) {
        Some(api) => api.get_json("/v1/friends")?.as_array().cloned().unwrap_or_default(),
        None => {
            daemon::init(dir, None)?;
            friends_from_file(dir)?
        }
    };
    if json_out {
        println!("{}", Value::Array(list));
        return Ok(());
    }
    if list.is_empty() {
        println!("no friends yet: add one with `pamphlet node add-friend REFERENCE`");
        return Ok(());
    }
    for f in &list {
        let key = f["key"].as_str().unwrap_or("?");
        let state = f["state"].as_str().unwrap_or("?");
        let since = f["since"].as_u64();
        let state = match state {
            "connected" => format!("connected since {}", ago(since)),
            "connecting" => format!("connecting since {} (last seen {})", ago(since), ago(f["last_seen"].as_u64())),
            "never connected" => format!("never connected (trying since {})", ago(since)),
            other => format!("{other} (last seen {})", ago(f["last_seen"].as_u64())),
        };
        println!("{}  peer {}  {state}", &key[..key.len().min(8)], f["peer"].as_str().unwrap_or("?"));
        let addresses: Vec<&str> = f["addresses"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        println!("    addresses   {} (record {})", addresses.join(", "), f["seq"]);
        if let Some(e) = f["last_error"].as_str() {
            println!("    last error  {e}");
        }
        if let Some(n) = f["records_refused"].as_u64().filter(|n| *n > 0) {
            println!("    refused     {n} address records (stale, replayed or badly signed)");
        }
    }
    Ok(())
}

/// `node remove-friend FRIEND`: by the peer id or key `node friends` shows (a prefix of 8
/// characters of the key is enough when it is unique), or by its reference.
pub(crate) fn remove_friend(dir: &Path, which: &str, json_out: bool) -> Result<()> {
    daemon::init(dir, None)?;
    let which = which.trim();
    let path = dir.join("friends");
    let friends = datadir::load_friends(&path)?;
    let by_ref = which.parse::<NodeRef>().ok().map(|r| r.key);
    let matches: Vec<&NodeRef> = friends
        .iter()
        .filter(|f| {
            by_ref.as_ref() == Some(&f.key)
                || (which.len() >= 8 && f.key.to_base64().starts_with(which))
                || format!("{:016x}", peer_id_of(&f.key).0).eq_ignore_ascii_case(which)
        })
        .collect();
    let friend = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(cli_error(
                "usage",
                format!("no friend {which:?}: name one by the key or peer id `pamphlet node friends` shows"),
            ))
        }
        _ => return Err(cli_error("usage", format!("{which:?} matches several friends: give more of the key"))),
    };
    match running(dir) {
        Some(api) => {
            api.delete_json(&format!("/v1/friends/{}", friend.key.to_base64()))?;
        }
        None => {
            datadir::remove_friend(&path, &friend.key)?;
        }
    }
    if json_out {
        println!("{}", json!({ "removed": friend.key.to_base64() }));
    } else {
        println!("removed friend {}; it can no longer connect to this node", friend.key.short());
    }
    Ok(())
}
