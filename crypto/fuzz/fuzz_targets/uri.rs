//! URI parsing never panics, and whatever parses formats back to a string that parses to
//! the same URI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pamphlet_crypto::Uri;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(uri) = Uri::parse(text) {
            let again = Uri::parse(&uri.to_string()).expect("formatted URI must parse");
            assert_eq!(again, uri);
        }
    }
});
