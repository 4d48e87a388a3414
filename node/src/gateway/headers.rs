//! Response headers the gateway puts on every response, filtered or not. They are the
//! second line of defence: if the filter ever lets something through, the browser itself
//! still refuses to run scripts, load from other origins, frame the page, or send a
//! referrer.

/// The `Content-Security-Policy`: nothing from anywhere but the gateway, no scripts, no
/// plug-ins, no frames, no workers, no fetch/XHR/WebSocket, no `<base>`; images, styles
/// and fonts only from the gateway itself (inline styles are allowed because the filter
/// has already rewritten them); forms only to the gateway (its own pages have forms;
/// filtered pages have none).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'none'; script-src-attr 'none'; \
     object-src 'none'; frame-src 'none'; child-src 'none'; worker-src 'none'; connect-src 'none'; \
     media-src 'none'; manifest-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Browser features a page could use to fingerprint or track the reader, all switched off.
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), ambient-light-sensor=(), attribution-reporting=(), \
     autoplay=(), battery=(), bluetooth=(), browsing-topics=(), camera=(), clipboard-read=(), \
     clipboard-write=(), display-capture=(), document-domain=(), encrypted-media=(), fullscreen=(), \
     gamepad=(), geolocation=(), gyroscope=(), hid=(), identity-credentials-get=(), idle-detection=(), \
     interest-cohort=(), local-fonts=(), magnetometer=(), microphone=(), midi=(), otp-credentials=(), \
     payment=(), picture-in-picture=(), publickey-credentials-create=(), publickey-credentials-get=(), \
     screen-wake-lock=(), serial=(), speaker-selection=(), storage-access=(), usb=(), web-share=(), \
     window-management=(), xr-spatial-tracking=()";

/// Every header, as (name, value), for the gateway to add to each response.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    // Never reinterpret a response as another type (an "image" as HTML).
    ("X-Content-Type-Options", "nosniff"),
    // Never tell anyone which key the reader came from.
    ("Referrer-Policy", "no-referrer"),
    // No other page may frame the gateway (clickjacking a publish button).
    ("X-Frame-Options", "DENY"),
    // A window opened from elsewhere gets no handle on the gateway's, and vice versa.
    ("Cross-Origin-Opener-Policy", "same-origin"),
    // No other origin may embed the gateway's responses (an image load from a web page
    // would tell it that pamphlet runs here).
    ("Cross-Origin-Resource-Policy", "same-origin"),
    // Nothing cross-origin loads into gateway pages without opting in.
    ("Cross-Origin-Embedder-Policy", "require-corp"),
    ("Permissions-Policy", PERMISSIONS_POLICY),
    // Browsers pre-resolve host names they see in links; there should be none, but a
    // DNS query for one would leave the machine.
    ("X-DNS-Prefetch-Control", "off"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_is_a_valid_http_header() {
        for (name, value) in SECURITY_HEADERS {
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            axum::http::HeaderValue::from_str(value).unwrap();
        }
    }

    #[test]
    fn the_policy_forbids_scripts_and_outside_loads() {
        let directives: Vec<&str> = CONTENT_SECURITY_POLICY.split(';').map(str::trim).collect();
        for d in [
            "default-src 'none'",
            "script-src 'none'",
            "object-src 'none'",
            "frame-src 'none'",
            "connect-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(directives.contains(&d), "missing {d}");
        }
        // No source list names another host or allows data:/blob:.
        for d in &directives {
            for source in d.split_whitespace().skip(1) {
                assert!(matches!(source, "'none'" | "'self'" | "'unsafe-inline'"), "{d}");
            }
        }
        let names: Vec<&str> = SECURITY_HEADERS.iter().map(|(n, _)| *n).collect();
        for n in [
            "X-Content-Type-Options",
            "Referrer-Policy",
            "X-Frame-Options",
            "Cross-Origin-Opener-Policy",
            "Cross-Origin-Resource-Policy",
            "Permissions-Policy",
        ] {
            assert!(names.contains(&n), "missing {n}");
        }
    }
}
