//! FCP's numeric failure codes, as Hyphanet's fred defines them
//! (`ProtocolErrorMessage`, `FetchException`, `InsertException`), and the one function
//! that maps a pipeline failure onto them ([`failure`]).
//!
//! Only the codes pamphlet can produce are named here; docs/fcp.md has the table.

use crate::client::pipeline::PipelineError;
use crate::client::site::SiteError;
use crate::client::ClientError;
use crate::node::Failure as NodeFailure;

/// `ProtocolError` codes (fred's `ProtocolErrorMessage`).
pub mod protocol {
    /// Anything but `ClientHello` before the hello.
    pub const CLIENT_HELLO_MUST_BE_FIRST: u32 = 1;
    /// A second `ClientHello`.
    pub const NO_LATE_CLIENT_HELLOS: u32 = 2;
    /// The bytes are not an FCP message.
    pub const MESSAGE_PARSE_ERROR: u32 = 3;
    /// A required field is missing.
    pub const MISSING_FIELD: u32 = 5;
    /// A numeric field is not a number.
    pub const ERROR_PARSING_NUMBER: u32 = 6;
    /// An unknown message name.
    pub const INVALID_MESSAGE: u32 = 7;
    /// A field has a value this node does not accept.
    pub const INVALID_FIELD: u32 = 8;
    /// `UploadFrom=disk`: no such readable file.
    pub const FILE_NOT_FOUND: u32 = 9;
    /// `ReturnType=disk`: the target exists.
    pub const DISK_TARGET_EXISTS: u32 = 10;
    /// `ReturnType=disk`: the target could not be written.
    pub const COULD_NOT_WRITE_FILE: u32 = 13;
    /// No request with that identifier.
    pub const NO_SUCH_IDENTIFIER: u32 = 15;
    /// A feature this node does not have.
    pub const NOT_SUPPORTED: u32 = 16;
    /// A bug in the node.
    pub const INTERNAL_ERROR: u32 = 17;
    /// Disk access without a `TestDDA` handshake that allows it.
    pub const DIRECT_DISK_ACCESS_DENIED: u32 = 25;
    /// A malformed `Metadata.ContentType`.
    pub const BAD_MIME_TYPE: u32 = 35;

    /// fred's description of a protocol error code.
    pub fn description(code: u32) -> &'static str {
        match code {
            CLIENT_HELLO_MUST_BE_FIRST => "ClientHello must be first message",
            NO_LATE_CLIENT_HELLOS => "No late ClientHello's accepted",
            MESSAGE_PARSE_ERROR => "Unknown message parsing error",
            MISSING_FIELD => "Missing field",
            ERROR_PARSING_NUMBER => "Error parsing a numeric field",
            INVALID_MESSAGE => "Don't know what to do with message",
            INVALID_FIELD => "Invalid field value",
            FILE_NOT_FOUND => "File not found, not a file or not readable",
            DISK_TARGET_EXISTS => "Disk target exists, refusing to overwrite for security reasons",
            COULD_NOT_WRITE_FILE => "Could not write file",
            NO_SUCH_IDENTIFIER => "No such identifier",
            NOT_SUPPORTED => "Not supported",
            DIRECT_DISK_ACCESS_DENIED => {
                "Direct Disk Access operation denied: did you send a FileHash field ? Did you use TestDDA?"
            }
            BAD_MIME_TYPE => "Bad MIME type",
            _ => "Internal error",
        }
    }
}

/// `GetFailed` codes (fred's `FetchException`).
pub mod get {
    /// A block of the document did not decode.
    pub const BLOCK_DECODE_ERROR: u32 = 6;
    /// The site has no file at that path.
    pub const NOT_IN_ARCHIVE: u32 = 10;
    /// A path inside a document that is not a site.
    pub const TOO_MANY_PATH_COMPONENTS: u32 = 11;
    /// The manifest is not one this node can read.
    pub const INVALID_METADATA: u32 = 4;
    /// The resume directory (temporary files) failed.
    pub const BUCKET_ERROR: u32 = 12;
    /// The first block was not found.
    pub const DATA_NOT_FOUND: u32 = 13;
    /// No peer could take the request.
    pub const ROUTE_NOT_FOUND: u32 = 14;
    /// Overloaded, or a timeout.
    pub const REJECTED_OVERLOAD: u32 = 15;
    /// A bug or a stopped node.
    pub const INTERNAL_ERROR: u32 = 17;
    /// The URI does not name something fetchable.
    pub const INVALID_URI: u32 = 20;
    /// Larger than `MaxSize`.
    pub const TOO_BIG: u32 = 21;
    /// Cancelled by the client.
    pub const CANCELLED: u32 = 25;
    /// A newer USK edition exists: see `RedirectURI`.
    pub const PERMANENT_REDIRECT: u32 = 27;
    /// Some blocks were found, too few to rebuild the document.
    pub const ALL_DATA_NOT_FOUND: u32 = 28;
    /// The key failed moments ago; asking again at once would only add load.
    pub const RECENTLY_FAILED: u32 = 30;
    /// The rebuilt document does not match its hash.
    pub const CONTENT_HASH_FAILED: u32 = 34;
    /// Forward error correction failed.
    pub const SPLITFILE_DECODE_ERROR: u32 = 35;

    /// fred's short and long descriptions of a fetch failure code.
    pub fn description(code: u32) -> (&'static str, &'static str) {
        match code {
            INVALID_METADATA => ("Invalid metadata", "Failed to parse metadata"),
            BLOCK_DECODE_ERROR => ("Block decode error", "Failed to decode a block"),
            NOT_IN_ARCHIVE => ("Not in archive", "Not in archive"),
            TOO_MANY_PATH_COMPONENTS => {
                ("Too many path components", "Too many path components - should be a manifest?")
            }
            BUCKET_ERROR => {
                ("Temporary files error", "Internal temp files error, maybe disk full or permissions problem?")
            }
            DATA_NOT_FOUND => ("Data not found", "Data not found"),
            ROUTE_NOT_FOUND => {
                ("Route not found", "Route not found - could not find enough nodes to be sure the data doesn't exist")
            }
            REJECTED_OVERLOAD => ("Timeout or overload", "A node was overloaded or timed out"),
            INVALID_URI => ("Invalid URI", "Invalid URI"),
            TOO_BIG => ("Too big", "Too big"),
            CANCELLED => ("Cancelled", "Cancelled by caller"),
            PERMANENT_REDIRECT => ("New URI", "Permanent redirect: use the new URI"),
            ALL_DATA_NOT_FOUND => {
                ("All data not found", "Not enough data found; some data was fetched but redirect may point to nowhere")
            }
            RECENTLY_FAILED => ("Recently failed", "Request recently failed, will retry soon"),
            CONTENT_HASH_FAILED => ("Hash does not match", "The content hash does not match"),
            SPLITFILE_DECODE_ERROR => ("Decode error", "Splitfile decode error"),
            _ => ("Internal error", "Internal error, probably a bug"),
        }
    }
}

/// `PutFailed` codes (fred's `InsertException`).
pub mod put {
    /// The URI cannot be inserted to.
    pub const INVALID_URI: u32 = 1;
    /// A bug, a stopped node, or bad content options.
    pub const INTERNAL_ERROR: u32 = 3;
    /// Overloaded, or a timeout.
    pub const REJECTED_OVERLOAD: u32 = 4;
    /// No peer could take the insert.
    pub const ROUTE_NOT_FOUND: u32 = 5;
    /// The name and edition already hold different content.
    pub const COLLISION: u32 = 9;
    /// Cancelled by the client.
    pub const CANCELLED: u32 = 10;

    /// fred's short and long descriptions of an insert failure code.
    pub fn description(code: u32) -> (&'static str, &'static str) {
        match code {
            INVALID_URI => ("Invalid URI", "Caller supplied a URI we cannot use"),
            REJECTED_OVERLOAD => ("Timed out", "A downstream node timed out or was severely overloaded"),
            ROUTE_NOT_FOUND => ("Route not found", "Could not propagate the insert to enough nodes"),
            COLLISION => ("Collision", "Insert collided with different, pre-existing data at the same key"),
            CANCELLED => ("Cancelled", "Cancelled by user"),
            _ => ("Internal error", "Internal error"),
        }
    }
}

/// A failure as FCP reports it in `GetFailed`/`PutFailed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The numeric code.
    pub code: u32,
    /// pamphlet's own words (`ExtraDescription`), for the person.
    pub extra: String,
    /// Whether retrying cannot help (`Fatal`).
    pub fatal: bool,
}

/// Which side of the protocol a failure is reported on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `GetFailed`.
    Get,
    /// `PutFailed`.
    Put,
}

/// The one mapping from a pipeline failure to an FCP code: the content errors (which FCP
/// tells apart more finely than pamphlet's failure kinds) by their own type, everything
/// else by its [`NodeFailure`] kind. No catch-all arm: a new kind must be mapped here.
pub fn failure(e: &PipelineError, direction: Direction) -> Failure {
    use Direction::{Get, Put};
    let (code, fatal) = match (direction, e) {
        (Get, PipelineError::Client(ClientError::NotFound { .. })) => (get::ALL_DATA_NOT_FOUND, false),
        (Get, PipelineError::Blocks { .. }) => (get::ALL_DATA_NOT_FOUND, false),
        (Get, PipelineError::Client(ClientError::Block(_))) => (get::BLOCK_DECODE_ERROR, true),
        (Get, PipelineError::Client(ClientError::BadManifest(_))) => (get::INVALID_METADATA, true),
        (Get, PipelineError::Client(ClientError::HashMismatch)) => (get::CONTENT_HASH_FAILED, true),
        (Get, PipelineError::Client(ClientError::Fec(_))) => (get::SPLITFILE_DECODE_ERROR, true),
        (Get, PipelineError::Client(ClientError::Site(SiteError::NoSuchFile(_) | SiteError::BadPath { .. }))) => {
            (get::NOT_IN_ARCHIVE, true)
        }
        (Get, PipelineError::Client(ClientError::Site(SiteError::NotASite))) => (get::TOO_MANY_PATH_COMPONENTS, true),
        (Get, PipelineError::Client(ClientError::Site(_))) => (get::INVALID_METADATA, true),
        (Get, PipelineError::Partial { .. }) => (get::BUCKET_ERROR, false),
        (Get, _) => match e.failure() {
            NodeFailure::NotFound { .. } => (get::DATA_NOT_FOUND, false),
            NodeFailure::RouteNotFound { .. } => (get::ROUTE_NOT_FOUND, false),
            // Fred has no "timed out" for a fetch: a request that got no answer in time is
            // one the network could not carry, its "rejected overload".
            NodeFailure::TimedOut { .. } => (get::REJECTED_OVERLOAD, false),
            NodeFailure::RetryLater { .. } => (get::RECENTLY_FAILED, false),
            NodeFailure::InvalidData => (get::BLOCK_DECODE_ERROR, true),
            NodeFailure::BadInput => (get::INVALID_URI, true),
            NodeFailure::Cancelled => (get::CANCELLED, true),
            NodeFailure::Io => (get::BUCKET_ERROR, false),
            NodeFailure::Collision | NodeFailure::Unavailable | NodeFailure::Internal => (get::INTERNAL_ERROR, false),
            // `Failure` is non-exhaustive for other crates only; inside this one the match
            // is checked, so this arm is unreachable until a kind is added (then map it).
            #[allow(unreachable_patterns)]
            _ => (get::INTERNAL_ERROR, false),
        },
        (Put, PipelineError::Collision) => (put::COLLISION, true),
        (Put, _) => match e.failure() {
            // An insert that found no one to take it ran out of peers: fred calls that a
            // route failure too (an insert never "finds" data).
            NodeFailure::RouteNotFound { .. } | NodeFailure::NotFound { .. } => (put::ROUTE_NOT_FOUND, false),
            NodeFailure::TimedOut { .. } | NodeFailure::RetryLater { .. } => (put::REJECTED_OVERLOAD, false),
            NodeFailure::Collision => (put::COLLISION, true),
            NodeFailure::BadInput => (put::INVALID_URI, true),
            NodeFailure::Cancelled => (put::CANCELLED, true),
            NodeFailure::InvalidData | NodeFailure::Unavailable | NodeFailure::Io | NodeFailure::Internal => {
                (put::INTERNAL_ERROR, false)
            }
            #[allow(unreachable_patterns)]
            _ => (put::INTERNAL_ERROR, false),
        },
    };
    Failure { code, extra: e.to_string(), fatal }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_failures_map_to_freds_codes() {
        let nf = PipelineError::Top(NodeFailure::NotFound { htl: Some(18), peers_tried: Some(3) });
        assert_eq!(failure(&nf, Direction::Get).code, 13);
        let rnf = PipelineError::Top(NodeFailure::RouteNotFound { htl_left: Some(5), peers_tried: 0 });
        assert_eq!(failure(&rnf, Direction::Get).code, 14);
        let busy = NodeFailure::RetryLater { cause: crate::node::RetryCause::RecentlyFailed };
        assert_eq!(failure(&PipelineError::Top(busy.clone()), Direction::Get).code, 30);
        let some = PipelineError::Client(ClientError::NotFound { missing: 5, of: 12 });
        assert_eq!(failure(&some, Direction::Get).code, 28);
        assert_eq!(failure(&PipelineError::NoEdition(4), Direction::Get).code, 13);
        let c = failure(&PipelineError::Collision, Direction::Put);
        assert_eq!((c.code, c.fatal), (9, true));
        let r = failure(
            &PipelineError::Insert(NodeFailure::RouteNotFound { htl_left: Some(4), peers_tried: 2 }),
            Direction::Put,
        );
        assert_eq!(r.code, 5);
        assert!(r.extra.contains("no route"), "{}", r.extra);
        assert_eq!(failure(&PipelineError::Insert(busy), Direction::Put).code, 4);
        let missing = PipelineError::Client(ClientError::Site(SiteError::NoSuchFile("a.html".into())));
        assert_eq!(failure(&missing, Direction::Get).code, 10);
        let flat = PipelineError::Client(ClientError::Site(SiteError::NotASite));
        assert_eq!(failure(&flat, Direction::Get).code, 11);
    }
}
