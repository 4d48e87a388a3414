//! The browser gateway (DESIGN.md §8):
//!
//! - [`bookmarks`]: bookmarked USK sites and the newest edition known of each;
//! - [`editions`]: the newest edition served of each site, for the "newer edition" note;
//! - [`filter`]: the content filter, a pure function from a document's bytes, declared
//!   type and key path to safe bytes, a download-only verdict, or a refusal;
//! - [`headers`]: the defence-in-depth response headers for every gateway response;
//! - [`progress`]: fetches run in the background, for the progress page of slow ones;
//! - [`publish`]: files and sites uploaded from the home page, inserted in the background;
//! - [`server`]: the HTTP server (routes, the `/external` warning page, Host/Origin checks,
//!   form tokens); see docs/gateway.md.

pub mod bookmarks;
pub mod editions;
pub mod filter;
pub mod headers;
pub mod progress;
pub mod publish;
pub mod server;

/// A USK of a fixed test subspace at `edition`, for the gateway's tests.
#[cfg(test)]
fn test_usk(edition: u64) -> pamphlet_crypto::SskRequestUri {
    use pamphlet_crypto::{CryptoKey, SskInsertUri, SskPrivateKey};
    SskInsertUri::new(SskPrivateKey::from_seed([4; 32]), CryptoKey::from_bytes([2; 32]), "blog", edition, true)
        .request_uri()
}
