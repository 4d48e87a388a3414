//! What `--wan` asks of every link: `delay=40ms,jitter=5ms,loss=0.5%,rate=20mbit,queue=100ms`,
//! in netem's and tc's words and units.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The settings of one direction of a link (both directions get the same).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct LinkSpec {
    /// One-way delay added to every packet, nanoseconds.
    pub(crate) delay_ns: u64,
    /// Each packet's delay varies uniformly within ± this, nanoseconds (order is kept).
    pub(crate) jitter_ns: u64,
    /// Share of packets dropped at random, 0 ≤ loss < 1.
    pub(crate) loss: f64,
    /// Link rate in bits per second; 0: unlimited.
    pub(crate) rate_bps: u64,
    /// Longest a packet may wait for a busy link before it is dropped (a router's buffer,
    /// as tbf's `latency`), nanoseconds.
    pub(crate) queue_ns: u64,
    /// The TCP congestion control of every node's namespace (the kernel's default, BBR on
    /// this machine, when absent): the links' TCP decides how loss slows them.
    #[serde(default)]
    pub(crate) cc: Option<CongestionControl>,
}

/// A TCP congestion control algorithm the kernel offers
/// (`net.ipv4.tcp_available_congestion_control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CongestionControl {
    /// Loss-based, the classic.
    Reno,
    /// Loss-based, Linux's usual default.
    Cubic,
    /// Model-based: paces to the measured bottleneck rate, barely slowed by random loss.
    Bbr,
}

impl CongestionControl {
    /// The kernel's name for it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Reno => "reno",
            Self::Cubic => "cubic",
            Self::Bbr => "bbr",
        }
    }
}

impl Default for LinkSpec {
    fn default() -> Self {
        Self { delay_ns: 0, jitter_ns: 0, loss: 0.0, rate_bps: 0, queue_ns: 100_000_000, cc: None }
    }
}

/// `40ms`, `1.5s`, `500us` → nanoseconds.
fn parse_duration(v: &str) -> Result<u64, String> {
    let (num, unit) = split_unit(v);
    let scale = match unit {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(format!("`{v}`: a time needs a unit: ms, us or s (e.g. 40ms)")),
    };
    let x: f64 = num.parse().map_err(|_| format!("`{v}` is not a time (e.g. 40ms)"))?;
    if !(0.0..=60e9).contains(&(x * scale)) {
        return Err(format!("`{v}`: between 0 and 60 s"));
    }
    Ok((x * scale).round() as u64)
}

/// `20mbit`, `512kbit`, `1gbit`, `9600bit` → bits per second (tc's units; `mbps` is
/// refused because tc reads it as megabytes).
fn parse_rate(v: &str) -> Result<u64, String> {
    let (num, unit) = split_unit(v);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return Err(format!("`{v}`: a rate needs a unit: bit, kbit, mbit or gbit (e.g. 20mbit)")),
    };
    let x: f64 = num.parse().map_err(|_| format!("`{v}` is not a rate (e.g. 20mbit)"))?;
    let bps = (x * scale).round();
    if !(1000.0..=100e9).contains(&bps) {
        return Err(format!("`{v}`: between 1kbit and 100gbit"));
    }
    Ok(bps as u64)
}

fn split_unit(v: &str) -> (&str, &str) {
    let at = v.find(|c: char| c.is_ascii_alphabetic() || c == '%').unwrap_or(v.len());
    (v[..at].trim(), v[at..].trim())
}

impl LinkSpec {
    /// Parses `key=value,…` with keys delay, jitter, loss, rate, queue (each optional).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        Self::parse_over(Self::default(), s)
    }

    /// Parses `key=value,…` as [`parse`](Self::parse) does, starting from `base`: what `s`
    /// does not name keeps `base`'s value (a graph file's per-link settings over `--wan`'s).
    pub(crate) fn parse_over(base: Self, s: &str) -> Result<Self, String> {
        let mut spec = base;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) =
                part.split_once('=').ok_or_else(|| format!("`{part}`: expected key=value, e.g. delay=40ms"))?;
            match key.trim() {
                "delay" => spec.delay_ns = parse_duration(value.trim())?,
                "jitter" => spec.jitter_ns = parse_duration(value.trim())?,
                "queue" => spec.queue_ns = parse_duration(value.trim())?,
                "rate" => spec.rate_bps = parse_rate(value.trim())?,
                "loss" => {
                    let v = value.trim();
                    let pct = v.strip_suffix('%').ok_or_else(|| format!("`{v}`: loss is a percentage, e.g. 0.5%"))?;
                    let pct: f64 = pct.trim().parse().map_err(|_| format!("`{v}` is not a percentage"))?;
                    if !(0.0..100.0).contains(&pct) {
                        return Err(format!("`{v}`: loss must be at least 0% and below 100%"));
                    }
                    spec.loss = pct / 100.0;
                }
                "cc" => {
                    spec.cc = Some(match value.trim() {
                        "reno" => CongestionControl::Reno,
                        "cubic" => CongestionControl::Cubic,
                        "bbr" => CongestionControl::Bbr,
                        v => return Err(format!("`{v}`: cc is reno, cubic or bbr")),
                    })
                }
                other => {
                    return Err(format!(
                        "unknown --wan setting `{other}` (known: delay, jitter, loss, rate, queue, cc)"
                    ))
                }
            }
        }
        if spec.jitter_ns > spec.delay_ns {
            return Err("jitter cannot exceed delay (a packet cannot arrive before it was sent)".into());
        }
        Ok(spec)
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        write!(f, "delay={}ms jitter={}ms loss={}%", ms(self.delay_ns), ms(self.jitter_ns), self.loss * 100.0)?;
        if self.rate_bps == 0 {
            f.write_str(" rate=unlimited")?;
        } else {
            write!(f, " rate={}mbit", self.rate_bps as f64 / 1e6)?;
        }
        write!(f, " queue={}ms", ms(self.queue_ns))?;
        match self.cc {
            Some(cc) => write!(f, " cc={}", cc.name()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_issue_example() {
        let s = LinkSpec::parse("delay=40ms,jitter=5ms,loss=0.5%,rate=20mbit").unwrap();
        assert_eq!(s.delay_ns, 40_000_000);
        assert_eq!(s.jitter_ns, 5_000_000);
        assert!((s.loss - 0.005).abs() < 1e-12);
        assert_eq!(s.rate_bps, 20_000_000);
        assert_eq!(s.queue_ns, 100_000_000);
        assert_eq!(s.to_string(), "delay=40ms jitter=5ms loss=0.5% rate=20mbit queue=100ms");
    }

    #[test]
    fn refuses_what_it_cannot_mean() {
        for bad in ["delay=40", "loss=0.5", "loss=100%", "rate=20mbps", "rate=20", "speed=1", "delay", "jitter=5ms"] {
            assert!(LinkSpec::parse(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(LinkSpec::parse("delay=1.5s").unwrap().delay_ns, 1_500_000_000);
        assert_eq!(LinkSpec::parse("rate=512kbit,queue=20ms").unwrap().rate_bps, 512_000);
        assert_eq!(LinkSpec::parse("cc=cubic").unwrap().cc, Some(CongestionControl::Cubic));
        assert!(LinkSpec::parse("cc=vegas").is_err());
    }

    #[test]
    fn settings_over_a_base_keep_what_they_do_not_name() {
        let base = LinkSpec::parse("delay=40ms,loss=0.5%,rate=20mbit").unwrap();
        let s = LinkSpec::parse_over(base, "delay=100ms,rate=5mbit").unwrap();
        assert_eq!(s.to_string(), "delay=100ms jitter=0ms loss=0.5% rate=5mbit queue=100ms");
        assert!(LinkSpec::parse_over(base, "jitter=50ms").is_err(), "jitter above the base's delay");
    }
}
