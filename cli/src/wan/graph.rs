//! A graph file's per-link settings: `a b [SETTINGS]` per line, where SETTINGS (optional,
//! no spaces) are `--wan`'s `key=value,…` for that link alone, both directions, over the
//! `--wan` settings every other link gets:
//!
//! ```text
//! 0 1                      # --wan's settings
//! 1 2 delay=100ms,rate=5mbit
//! ```
//!
//! The edge list itself (the first two numbers) is the simulator's format
//! ([`Topology::from_edge_list`](pamphlet_node::sim::topology::Topology::from_edge_list)).

use serde::{Deserialize, Serialize};

use super::spec::LinkSpec;

/// One link's own settings, from the graph file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct LinkOverride {
    /// One end (node number).
    pub(crate) a: usize,
    /// The other end.
    pub(crate) b: usize,
    /// Both directions' settings.
    pub(crate) spec: LinkSpec,
}

/// A graph file split into its edge list (for the topology) and the settings of the links
/// that have their own.
#[derive(Debug, Default)]
pub(crate) struct GraphFile {
    /// `a b` lines, as the topology parser reads them (comments and blank lines kept, so
    /// its line numbers in errors stay the file's).
    pub(crate) edge_list: String,
    /// `(line, a, b, settings)` of every link with settings of its own.
    pub(crate) settings: Vec<(usize, usize, usize, String)>,
}

impl GraphFile {
    /// Splits `text`; malformed edges are left for the topology parser to report.
    pub(crate) fn split(text: &str) -> Self {
        let mut g = Self::default();
        for (i, line) in text.lines().enumerate() {
            let body = line.split('#').next().unwrap_or("");
            let fields: Vec<&str> = body.split_whitespace().collect();
            match fields.as_slice() {
                [a, b, settings] => {
                    if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                        g.settings.push((i + 1, a, b, (*settings).to_owned()));
                    }
                    g.edge_list.push_str(&format!("{} {}\n", fields[0], fields[1]));
                }
                _ => {
                    g.edge_list.push_str(line);
                    g.edge_list.push('\n');
                }
            }
        }
        g
    }

    /// The per-link settings over `base` (`--wan`'s). Errors name the line; `cc` is refused
    /// per link (it is a setting of a node's namespace, not of a link).
    pub(crate) fn overrides(&self, base: Option<LinkSpec>) -> Result<Vec<LinkOverride>, String> {
        let Some(base) = base else {
            return match self.settings.first() {
                None => Ok(Vec::new()),
                Some((line, a, b, _)) => Err(format!(
                    "line {line} gives link {a}-{b} settings of its own, which only a --wan darknet has: add \
                     --wan (e.g. --wan delay=20ms) for the other links' settings"
                )),
            };
        };
        self.settings
            .iter()
            .map(|(line, a, b, text)| {
                let spec = LinkSpec::parse_over(base, text).map_err(|e| format!("line {line}: {e}"))?;
                if spec.cc != base.cc {
                    return Err(format!(
                        "line {line}: cc is a setting of every node's namespace, not of one link: give it in --wan"
                    ));
                }
                Ok(LinkOverride { a: *a, b: *b, spec })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_with_settings_of_its_own_keeps_the_rest_of_wan() {
        let g = GraphFile::split("# a line\n0 1\n1 2 delay=100ms,rate=5mbit  # slow\n\n2 3\n");
        assert_eq!(g.edge_list, "# a line\n0 1\n1 2\n\n2 3\n");
        let base = LinkSpec::parse("delay=20ms,loss=1%").unwrap();
        let o = g.overrides(Some(base)).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].a, o[0].b), (1, 2));
        assert_eq!(o[0].spec.to_string(), "delay=100ms jitter=0ms loss=1% rate=5mbit queue=100ms");
    }

    #[test]
    fn bad_settings_name_their_line() {
        let base = Some(LinkSpec::default());
        let e = GraphFile::split("0 1\n1 2 delay=fast\n").overrides(base).unwrap_err();
        assert!(e.starts_with("line 2: "), "{e}");
        let e = GraphFile::split("0 1 cc=reno\n").overrides(base).unwrap_err();
        assert!(e.contains("namespace"), "{e}");
        let e = GraphFile::split("0 1 delay=5ms\n").overrides(None).unwrap_err();
        assert!(e.contains("--wan"), "{e}");
        assert!(GraphFile::split("0 1\n").overrides(None).unwrap().is_empty());
    }
}
