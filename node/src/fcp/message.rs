//! The FCPv2 message codec: one strict parser, one encoder.
//!
//! ```text
//! Name\n
//! Field=Value\n          (0 or more)
//! EndMessage\n           or:  DataLength=N\n … Data\n <N raw bytes>
//! ```
//! Every limit ([`Limits`]) is checked before anything is allocated for it: a line is read
//! at most `max_line` bytes far, a header holds at most `max_fields` fields and
//! `max_header` bytes, and `DataLength` is compared with `max_data` before a single payload
//! byte is read. A payload buffer grows with the bytes that actually arrive, so announcing
//! a large `DataLength` and sending nothing costs the node nothing.
//!
//! Lines end in `\n`; a `\r` before it is dropped (some clients send `\r\n`). Empty lines
//! before a message name are skipped (pyfreenet's reader does the same). Field names are
//! printable ASCII without `=`; values are UTF-8 without control characters. A field given
//! twice is an error rather than "last one wins", so two parsers can never disagree on what
//! a message said.

use std::fmt;

/// Size limits of the parser; every one is checked before allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in one line, without its `\n`.
    pub max_line: usize,
    /// Fields in one message.
    pub max_fields: usize,
    /// Bytes of a whole header (name, fields and terminator lines).
    pub max_header: usize,
    /// Largest `DataLength` accepted.
    pub max_data: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // A ClientPutComplexDir of a large site has a few fields per file; 4096 fields and
        // 1 MiB of header cover thousands of files while bounding what one message costs.
        Self { max_line: 16 * 1024, max_fields: 4096, max_header: 1024 * 1024, max_data: 1 << 30 }
    }
}

/// Why bytes are not an FCP message. Every variant means the client sent something wrong;
/// the stream cannot be resynchronised after any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A line is longer than [`Limits::max_line`].
    #[error("a line is longer than {max} bytes")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// More fields than [`Limits::max_fields`].
    #[error("more than {max} fields in one message")]
    TooManyFields {
        /// The limit.
        max: usize,
    },
    /// The header is larger than [`Limits::max_header`].
    #[error("the message header is larger than {max} bytes")]
    HeaderTooLarge {
        /// The limit.
        max: usize,
    },
    /// A line is not UTF-8 or holds a control character.
    #[error("line {line} is not UTF-8 text without control characters")]
    NotText {
        /// 1-based line number within the message.
        line: usize,
    },
    /// The message name is not a word of ASCII letters and digits.
    #[error("the message name is not a word of ASCII letters and digits")]
    BadName,
    /// A field line is not `Name=Value` with a non-empty printable-ASCII name.
    #[error("line {line} is not a Field=Value line")]
    BadField {
        /// 1-based line number within the message.
        line: usize,
    },
    /// The same field twice.
    #[error("field {0} is given twice")]
    DuplicateField(String),
    /// A `Data` terminator without a `DataLength` field.
    #[error("a message with Data has no DataLength field")]
    MissingDataLength,
    /// `DataLength` is not a decimal number.
    #[error("DataLength is not a decimal number")]
    BadDataLength,
    /// `DataLength` exceeds [`Limits::max_data`].
    #[error("DataLength {len} is larger than the {max} bytes this node accepts")]
    DataTooLong {
        /// What the client announced.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes ended inside a message (header or payload).
    #[error("the connection ended inside a message")]
    Truncated,
}

/// One FCP message: a name, ordered fields, and for `Data` messages the payload.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The message name, e.g. `ClientPut`.
    pub name: String,
    /// Fields in the order given. `DataLength` is not among them when `data` is set.
    pub fields: Vec<(String, String)>,
    /// The payload of a message that ended in `Data`.
    pub data: Option<Vec<u8>>,
}

// Field values include insert URIs (capabilities): `Debug` shows names only.
impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.fields.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Message")
            .field("name", &self.name)
            .field("fields", &names)
            .field("data", &self.data.as_ref().map(Vec::len))
            .finish()
    }
}

impl Message {
    /// A message with no fields.
    pub fn new(name: &str) -> Self {
        Self { name: name.to_owned(), fields: Vec::new(), data: None }
    }

    /// Adds a field (builder style).
    #[must_use]
    pub fn with(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.fields.push((key.to_owned(), value.to_string()));
        self
    }

    /// Adds a field if `value` is `Some`.
    #[must_use]
    pub fn with_opt(self, key: &str, value: Option<impl fmt::Display>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    /// The value of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The bytes of this message on the wire. With a payload, `DataLength` is written
    /// from it (a `DataLength` among the fields is skipped).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.head(self.data.as_ref().map_or(0, Vec::len));
        if let Some(d) = &self.data {
            out.extend_from_slice(d);
        }
        out
    }

    /// The header on the wire and the payload apart, so a large payload is written as it
    /// is rather than copied behind its header first.
    pub fn into_wire(self) -> (Vec<u8>, Option<Vec<u8>>) {
        let head = self.head(0);
        (head, self.data)
    }

    /// Name, fields and terminator (`EndMessage`, or `DataLength=N` and `Data`), with room
    /// for `extra` more bytes.
    fn head(&self, extra: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + extra + self.fields.len() * 32);
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'\n');
        for (k, v) in &self.fields {
            if self.data.is_some() && k == "DataLength" {
                continue;
            }
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            // A value never spans lines on the wire, whatever the caller passed.
            out.extend(v.bytes().map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
            out.push(b'\n');
        }
        match &self.data {
            Some(d) => out.extend_from_slice(format!("DataLength={}\nData\n", d.len()).as_bytes()),
            None => out.extend_from_slice(b"EndMessage\n"),
        }
        out
    }
}

/// What a header line did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// More lines follow.
    More,
    /// The message is complete (it ended in `EndMessage`).
    Done(Message),
    /// The header ended in `Data`: `len` payload bytes follow.
    Data(Message, u64),
}

/// Builds one message header from its lines; shared by the buffer parser ([`decode`]) and
/// the connection reader, so both enforce exactly the same rules.
#[derive(Debug)]
pub struct HeaderParser {
    limits: Limits,
    message: Option<Message>,
    bytes: usize,
    lines: usize,
}

impl HeaderParser {
    /// A parser for one message.
    pub fn new(limits: Limits) -> Self {
        Self { limits, message: None, bytes: 0, lines: 0 }
    }

    /// Whether any part of a message (its name) has been seen.
    pub fn started(&self) -> bool {
        self.message.is_some()
    }

    /// Feeds one line (without `\n`; a trailing `\r` is dropped here). The caller has
    /// already bounded its length by [`Limits::max_line`].
    pub fn line(&mut self, raw: &[u8]) -> Result<Step, ParseError> {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > self.limits.max_line {
            return Err(ParseError::LineTooLong { max: self.limits.max_line });
        }
        self.bytes += raw.len() + 1;
        self.lines += 1;
        if self.bytes > self.limits.max_header {
            return Err(ParseError::HeaderTooLarge { max: self.limits.max_header });
        }
        let line = self.lines;
        let text = std::str::from_utf8(raw)
            .ok()
            .filter(|t| !t.chars().any(char::is_control))
            .ok_or(ParseError::NotText { line })?;
        let Some(message) = self.message.as_mut() else {
            if text.is_empty() {
                return Ok(Step::More);
            }
            if text.len() > 64 || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ParseError::BadName);
            }
            self.message = Some(Message::new(text));
            return Ok(Step::More);
        };
        match text {
            "EndMessage" => Ok(Step::Done(std::mem::take(message))),
            "Data" => {
                let mut m = std::mem::take(message);
                let len = match m.fields.iter().position(|(k, _)| k == "DataLength") {
                    Some(at) => {
                        let (_, value) = m.fields.remove(at);
                        parse_u64(&value).ok_or(ParseError::BadDataLength)?
                    }
                    None if m.name == "ClientPutComplexDir" => complex_dir_length(&m)?,
                    None => return Err(ParseError::MissingDataLength),
                };
                if len > self.limits.max_data {
                    return Err(ParseError::DataTooLong { len, max: self.limits.max_data });
                }
                Ok(Step::Data(m, len))
            }
            _ => {
                let (k, v) = text.split_once('=').ok_or(ParseError::BadField { line })?;
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ParseError::BadField { line });
                }
                if message.fields.len() >= self.limits.max_fields {
                    return Err(ParseError::TooManyFields { max: self.limits.max_fields });
                }
                if message.get(k).is_some() {
                    return Err(ParseError::DuplicateField(k.chars().take(64).collect()));
                }
                message.fields.push((k.to_owned(), v.to_owned()));
                Ok(Step::More)
            }
        }
    }
}

/// The payload of a `ClientPutComplexDir`: fred announces no `DataLength`; the bytes of
/// its `UploadFrom=direct` files (`Files.N.DataLength`, N = 0, 1, … without a gap) follow
/// `Data` one after the other.
fn complex_dir_length(m: &Message) -> Result<u64, ParseError> {
    let mut total: u64 = 0;
    for i in 0.. {
        if m.get(&format!("Files.{i}.Name")).is_none() {
            break;
        }
        let from = m.get(&format!("Files.{i}.UploadFrom")).unwrap_or("direct");
        if from.eq_ignore_ascii_case("direct") {
            let len = m.get(&format!("Files.{i}.DataLength")).ok_or(ParseError::MissingDataLength)?;
            let len = parse_u64(len).ok_or(ParseError::BadDataLength)?;
            total = total.checked_add(len).ok_or(ParseError::BadDataLength)?;
        }
    }
    Ok(total)
}

/// A decimal `u64` of digits only (no sign, no spaces, at most 20 digits).
pub fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses one message from the front of `buf`: `Ok(Some((message, bytes used)))`, or
/// `Ok(None)` if `buf` ends before the message does (and no limit is broken yet).
pub fn decode(buf: &[u8], limits: Limits) -> Result<Option<(Message, usize)>, ParseError> {
    let mut parser = HeaderParser::new(limits);
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        let window = &rest[..rest.len().min(limits.max_line.saturating_add(2))];
        let Some(end) = window.iter().position(|&b| b == b'\n') else {
            // No newline within the longest allowed line (+ "\r\n"): too long, or not here yet.
            let stripped = window.strip_suffix(b"\r").unwrap_or(window);
            if stripped.len() > limits.max_line {
                return Err(ParseError::LineTooLong { max: limits.max_line });
            }
            return Ok(None);
        };
        let step = parser.line(&rest[..end])?;
        at += end + 1;
        match step {
            Step::More => {}
            Step::Done(m) => return Ok(Some((m, at))),
            Step::Data(mut m, len) => {
                let len = usize::try_from(len).map_err(|_| ParseError::DataTooLong { len, max: limits.max_data })?;
                if buf.len() - at < len {
                    return Ok(None);
                }
                m.data = Some(buf[at..at + len].to_vec());
                return Ok(Some((m, at + len)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn small() -> Limits {
        Limits { max_line: 64, max_fields: 4, max_header: 200, max_data: 1000 }
    }

    #[test]
    fn parses_both_endings() {
        let (m, n) =
            decode(b"ClientHello\nName=x\nExpectedVersion=2.0\nEndMessage\nrest", Limits::default()).unwrap().unwrap();
        assert_eq!((m.name.as_str(), m.get("Name"), n), ("ClientHello", Some("x"), 50));
        let (m, n) =
            decode(b"\r\nClientPut\r\nURI=CHK@\r\nDataLength=3\r\nData\r\nabcXYZ", Limits::default()).unwrap().unwrap();
        assert_eq!(m.data.as_deref(), Some(&b"abc"[..]));
        assert_eq!(m.get("DataLength"), None, "DataLength becomes the payload's length");
        assert_eq!(n, 46);
        // A value may contain '='.
        let (m, _) = decode(b"X\nA=b=c\nEndMessage\n", Limits::default()).unwrap().unwrap();
        assert_eq!(m.get("A"), Some("b=c"));
    }

    #[test]
    fn incomplete_is_none() {
        for cut in [0, 5, 12, 30, 35] {
            let full = b"ClientPut\nURI=CHK@\nDataLength=3\nData\nabc";
            assert_eq!(decode(&full[..cut], Limits::default()), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn errors_are_typed() {
        let l = small();
        let e = |b: &[u8]| decode(b, l).unwrap_err();
        assert_eq!(e(&[b'a'; 70]), ParseError::LineTooLong { max: 64 });
        assert_eq!(e(b"A\nB=1\nC=1\nD=1\nE=1\nF=1\nEndMessage\n"), ParseError::TooManyFields { max: 4 });
        assert_eq!(e(b"Na me\n"), ParseError::BadName);
        assert_eq!(e(b"A\nnoequals\n"), ParseError::BadField { line: 2 });
        assert_eq!(e(b"A\n=v\n"), ParseError::BadField { line: 2 });
        assert_eq!(e(b"A\nK=1\nK=2\n"), ParseError::DuplicateField("K".into()));
        assert_eq!(e(b"A\nData\n"), ParseError::MissingDataLength);
        // ClientPutComplexDir: the direct files' lengths add up to the payload.
        let dir = b"ClientPutComplexDir\nFiles.0.Name=a\nFiles.0.DataLength=2\nFiles.1.Name=b\nFiles.1.UploadFrom=disk\nFiles.2.Name=c\nFiles.2.UploadFrom=direct\nFiles.2.DataLength=3\nData\nxxyyyREST";
        let (m, used) = decode(dir, Limits::default()).unwrap().unwrap();
        assert_eq!((m.data.as_deref(), used), (Some(b"xxyyy".as_slice()), dir.len() - 4));
        assert_eq!(e(b"ClientPutComplexDir\nFiles.0.Name=a\nData\n"), ParseError::MissingDataLength);
        let huge = b"ClientPutComplexDir\nFiles.0.Name=a\nFiles.0.DataLength=18446744073709551615\nFiles.1.Name=b\nFiles.1.DataLength=1\nData\n";
        assert_eq!(e(huge), ParseError::BadDataLength);
        let big = b"ClientPutComplexDir\nFiles.0.Name=a\nFiles.0.DataLength=900\nFiles.1.Name=b\nFiles.1.DataLength=900\nData\n";
        assert!(matches!(
            decode(big, Limits { max_data: 1000, ..Limits::default() }),
            Err(ParseError::DataTooLong { len: 1800, .. })
        ));
        assert_eq!(e(b"A\nDataLength=-1\nData\n"), ParseError::BadDataLength);
        assert_eq!(e(b"A\nDataLength=1001\nData\n"), ParseError::DataTooLong { len: 1001, max: 1000 });
        assert_eq!(e(b"A\nK=\xff\n"), ParseError::NotText { line: 2 });
        assert_eq!(e(b"A\nK=a\x07\n"), ParseError::NotText { line: 2 });
        let v = "x".repeat(60);
        let many = format!("A\nK={v}\nL={v}\nM={v}\nN={v}");
        assert_eq!(e(format!("{many}\n").as_bytes()), ParseError::HeaderTooLarge { max: 200 });
        // Blank lines before the name count against the header limit too.
        assert_eq!(e(&[b'\n'; 250]), ParseError::HeaderTooLarge { max: 200 });
    }

    #[test]
    fn into_wire_is_encode_in_two_parts() {
        let m = Message { data: Some(b"payload".to_vec()), ..Message::new("AllData").with("Identifier", "x") };
        let (head, data) = m.clone().into_wire();
        assert_eq!([head, data.unwrap()].concat(), m.encode());
        let plain = Message::new("NodeHello").with("A", "b");
        assert_eq!(plain.clone().into_wire(), (plain.encode(), None));
    }

    #[test]
    fn encode_writes_data_length_last() {
        let m = Message { data: Some(b"hi".to_vec()), ..Message::new("AllData") }.with("Identifier", "a");
        assert_eq!(m.encode(), b"AllData\nIdentifier=a\nDataLength=2\nData\nhi");
        assert_eq!(Message::new("X").with("V", "a\nb").encode(), b"X\nV=a b\nEndMessage\n");
    }

    fn message() -> impl Strategy<Value = Message> {
        let field = ("[A-Za-z][A-Za-z0-9.]{0,12}", "[ -~]{0,40}");
        (
            "[A-Za-z][A-Za-z0-9]{0,20}",
            prop::collection::vec(field, 0..6),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
        )
            .prop_map(|(name, fields, data)| {
                let mut m = Message { name, fields: Vec::new(), data };
                for (k, v) in fields {
                    if m.get(&k).is_none() && k != "DataLength" {
                        m.fields.push((k, v));
                    }
                }
                m
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            let _ = decode(&bytes, small());
            let _ = decode(&bytes, Limits::default());
        }

        #[test]
        fn text_like_bytes_never_panic(text in "[A-Za-z=\n\r0-9]{0,400}") {
            if let Ok(Some((_, used))) = decode(text.as_bytes(), small()) {
                prop_assert!(used <= text.len());
            }
        }

        #[test]
        fn encode_then_decode_round_trips(m in message(), tail in prop::collection::vec(any::<u8>(), 0..20)) {
            let mut bytes = m.encode();
            let len = bytes.len();
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(decode(&bytes, Limits::default()), Ok(Some((m.clone(), len))));
            // Every strict prefix is "not yet", never an error or a different message.
            for cut in [0, len / 3, len / 2, len - 1] {
                prop_assert_eq!(decode(&bytes[..cut], Limits::default()), Ok(None));
            }
        }
    }
}
