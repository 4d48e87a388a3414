//! Reading typed fields out of a [`Message`], and the `ProtocolError` a bad one earns.

use super::codes::protocol;
use super::message::{parse_u64, Message};

/// A message the node refuses, as a `ProtocolError` to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The protocol error code.
    pub code: u32,
    /// pamphlet's words for the person (`ExtraDescription`).
    pub extra: String,
    /// The connection closes after it.
    pub fatal: bool,
    /// The request it concerns, if the message named one.
    pub identifier: Option<String>,
}

impl Reject {
    /// A non-fatal rejection.
    pub fn new(code: u32, extra: impl Into<String>) -> Self {
        Self { code, extra: extra.into(), fatal: false, identifier: None }
    }

    /// The same rejection about request `id`.
    #[must_use]
    pub fn about(mut self, id: Option<&str>) -> Self {
        self.identifier = id.map(str::to_owned);
        self
    }

    /// The `ProtocolError` message.
    pub fn to_message(&self) -> Message {
        Message::new("ProtocolError")
            .with_opt("Identifier", self.identifier.as_deref())
            .with("Code", self.code)
            .with("CodeDescription", protocol::description(self.code))
            .with("ExtraDescription", &self.extra)
            .with("Fatal", self.fatal)
            .with("Global", false)
    }
}

/// A required field.
pub fn required<'m>(m: &'m Message, key: &str) -> Result<&'m str, Reject> {
    m.get(key).ok_or_else(|| Reject::new(protocol::MISSING_FIELD, format!("{} needs the field {key}", m.name)))
}

/// A boolean field (`true`/`false` in any case; pyfreenet sends Python's `True`/`False`).
pub fn boolean(m: &Message, key: &str, default: bool) -> Result<bool, Reject> {
    match m.get(key) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(Reject::new(protocol::INVALID_FIELD, format!("{key} must be true or false"))),
    }
}

/// An unsigned decimal field.
pub fn number(m: &Message, key: &str) -> Result<Option<u64>, Reject> {
    m.get(key)
        .map(|v| {
            parse_u64(v).ok_or_else(|| {
                Reject::new(protocol::ERROR_PARSING_NUMBER, format!("{key} must be a non-negative decimal number"))
            })
        })
        .transpose()
}

/// A signed decimal field (`MaxRetries=-1`).
pub fn signed(m: &Message, key: &str) -> Result<Option<i64>, Reject> {
    m.get(key)
        .map(|v| {
            let digits = v.strip_prefix('-').unwrap_or(v);
            parse_u64(digits)
                .and_then(|_| v.parse::<i64>().ok())
                .ok_or_else(|| Reject::new(protocol::ERROR_PARSING_NUMBER, format!("{key} must be a decimal number")))
        })
        .transpose()
}

/// One of a fixed set of words.
pub fn choice<'m>(m: &'m Message, key: &str, allowed: &[&str], default: &'m str) -> Result<&'m str, Reject> {
    let v = m.get(key).unwrap_or(default);
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
        Ok(v)
    } else {
        Err(Reject::new(protocol::INVALID_FIELD, format!("{key} must be one of {}", allowed.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields() {
        let m = Message::new("X").with("B", "True").with("N", "12").with("S", "-1").with("Bad", "maybe");
        assert_eq!(boolean(&m, "B", false), Ok(true));
        assert_eq!(boolean(&m, "Missing", true), Ok(true));
        assert_eq!(boolean(&m, "Bad", true).unwrap_err().code, 8);
        assert_eq!(number(&m, "N"), Ok(Some(12)));
        assert_eq!(number(&m, "S").unwrap_err().code, 6);
        assert_eq!(signed(&m, "S"), Ok(Some(-1)));
        assert_eq!(signed(&m, "Bad").unwrap_err().code, 6);
        assert_eq!(required(&m, "URI").unwrap_err().code, 5);
        assert_eq!(choice(&m, "R", &["direct", "none"], "direct"), Ok("direct"));
        assert_eq!(choice(&m, "Bad", &["direct"], "direct").unwrap_err().code, 8);
        let e = Reject::new(7, "x").about(Some("id1")).to_message();
        assert_eq!((e.get("Identifier"), e.get("Code"), e.get("Fatal")), (Some("id1"), Some("7"), Some("false")));
    }
}
