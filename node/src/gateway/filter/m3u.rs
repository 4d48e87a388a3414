//! M3U playlists (`audio/x-mpegurl`): a list of addresses a media player or a mirroring
//! tool opens one after another, outside the browser and so outside every protection the
//! browser gives. An entry `http://tracker.example/x.mp3` would make the player unmask its
//! listener. FProxy filters them for the same reason (fred's `M3UFilter`).
//!
//! Every entry goes through the link policy of [`super::url`] as a resource loaded without
//! a click ([`UrlUse::Embed`]): a pamphlet key or a path relative to the playlist stays,
//! resolved to a key path on this gateway; anything else (the open web, `file:`, a path
//! climbing above the site root) is dropped. Entries are written as absolute URLs on the
//! gateway's own origin when the caller names it, because a player that opened a saved
//! playlist has no base to resolve `/CHK@…` against (fred does the same).
//!
//! Comments are dropped (`#EXTINF` titles included: players show them, and a filter that
//! passes text it does not parse is a filter in name only); only the `#EXTM3U` header is
//! kept so players still see an extended playlist. Blank lines are dropped.

use super::url::{is_safe_output, rewrite, Location, UrlUse};

/// The header line of an extended M3U, kept when it is the first line.
const EXTENDED_HEADER: &str = "#EXTM3U";

/// Entries longer than this are dropped unread (fred's limit too): no player needs them,
/// and they bound the work per line.
const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// Filters a playlist. `origin` is `http://host:port` of the gateway, or empty to keep
/// gateway-absolute paths (`/CHK@…/song.ogg`).
pub(super) fn filter_playlist(text: &str, loc: &Location, origin: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if line.is_empty() || line.len() > MAX_ENTRY_BYTES {
            continue;
        }
        if line.starts_with('#') {
            if i == 0 && line == EXTENDED_HEADER {
                out.push_str(EXTENDED_HEADER);
                out.push('\n');
            }
            continue;
        }
        // A fragment means nothing to a player; a bare fragment is not an entry at all.
        let Some(path) = rewrite(line, UrlUse::Embed, loc).filter(|p| p.starts_with('/')) else { continue };
        out.push_str(origin);
        out.push_str(&path);
        out.push('\n');
    }
    out
}

/// The filter's own check of its output: every entry is, after the origin, a key path on
/// the gateway (re-parsed by the `url` crate), and nothing else is in the output.
pub(super) fn audit(playlist: &str, origin: &str) -> bool {
    playlist.lines().enumerate().all(|(i, line)| {
        (i == 0 && line == EXTENDED_HEADER)
            || line.strip_prefix(origin).is_some_and(|p| p.starts_with('/') && is_safe_output(p, UrlUse::Embed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "USK@AAAA,BBBB,AQACAAE";
    const ORIGIN: &str = "http://127.0.0.1:8888";

    fn run(text: &str) -> String {
        let loc = Location::parse(&format!("/{KEY}/site/3/music/list.m3u")).unwrap();
        let out = filter_playlist(text, &loc, ORIGIN);
        assert!(audit(&out, ORIGIN), "{out}");
        out
    }

    #[test]
    fn relative_entries_become_absolute_gateway_urls() {
        let out = run("#EXTM3U\n#EXTINF:233,Title\nsong.ogg\r\n./a/b.ogg\n../index.html\n/top.ogg\n");
        let root = format!("{ORIGIN}/{KEY}/site/3");
        assert_eq!(
            out,
            format!("#EXTM3U\n{root}/music/song.ogg\n{root}/music/a/b.ogg\n{root}/index.html\n{root}/top.ogg\n")
        );
    }

    #[test]
    fn outside_addresses_and_tricks_are_dropped() {
        let out = run(concat!(
            "http://tracker.example/x.mp3\n",
            "https://127.0.0.1.evil.example/CHK@x\n",
            "//evil.example/a.ogg\n",
            "\\\\evil.example\\a.ogg\n",
            "file:///etc/passwd\n",
            "javascript:alert(1)\n",
            "../../../../escape.ogg\n",
            "#EXTM3U\n",
            "#fragment-only\n",
        ));
        assert_eq!(out, "");
    }

    #[test]
    fn key_links_and_fproxy_links_are_kept_on_this_gateway() {
        let out = run(
            "CHK@CCCC,DDDD,AAIA/song.ogg\nhttp://127.0.0.1:8888/KSK@words\nfreenet:SSK@EEEE,FFFF,AQACAAE/x/y.ogg\n",
        );
        assert_eq!(
            out,
            format!(
                "{ORIGIN}/CHK@CCCC,DDDD,AAIA/song.ogg\n{ORIGIN}/KSK@words\n{ORIGIN}/SSK@EEEE,FFFF,AQACAAE/x/y.ogg\n"
            )
        );
    }

    #[test]
    fn queries_are_dropped_and_odd_bytes_encoded() {
        let out = run("a b.ogg?type=text/html\n\"q\".ogg\n");
        let root = format!("{ORIGIN}/{KEY}/site/3/music");
        assert_eq!(out, format!("{root}/a%20b.ogg\n{root}/%22q%22.ogg\n"));
    }

    #[test]
    fn overlong_entries_are_dropped() {
        assert_eq!(run(&"a".repeat(MAX_ENTRY_BYTES + 1)), "");
    }

    #[test]
    fn without_an_origin_entries_are_gateway_paths() {
        let loc = Location::parse(&format!("/{KEY}/site/3/list.m3u")).unwrap();
        let out = filter_playlist("x.ogg\n", &loc, "");
        assert_eq!(out, format!("/{KEY}/site/3/x.ogg\n"));
        assert!(audit(&out, ""));
    }
}
