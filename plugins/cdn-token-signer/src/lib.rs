//! `cdn-token-signer`: signs playback URLs the way CDNs check them: the
//! object's path on the CDN, an expiry time and an HMAC-SHA256 token over
//! both in the query. Config: `base_url` (the CDN, e.g.
//! `https://cdn.example.com/archive`), `secret` (shared with the CDN),
//! and optionally `token_param` (default `token`) and `expires_param`
//! (default `expires`). The token is the lowercase hex HMAC-SHA256, under
//! `secret`, of `PATH?EXPIRES_PARAM=EXPIRES`, where PATH is the URL's path.

wit_bindgen::generate!({ path: "../../wit", world: "url-signer" });

use exports::hlsvault::plugin::signer::{Guest, SignRequest};
use hlsvault::plugin::host;

/// What the signer needs from its config.
pub struct Settings {
    pub base_url: String,
    pub secret: String,
    pub token_param: String,
    pub expires_param: String,
}

/// The signed URL of `key`, valid until `expires` (Unix seconds), with
/// `hmac` computing HMAC-SHA256(key, data).
pub fn sign(
    s: &Settings,
    key: &str,
    expires: u64,
    hmac: impl Fn(&[u8], &[u8]) -> Vec<u8>,
) -> String {
    let base = s.base_url.trim_end_matches('/');
    let path_start = base.find("://").map_or(0, |i| {
        base[i + 3..].find('/').map_or(base.len(), |p| i + 3 + p)
    });
    let path = format!("{}/{key}", &base[path_start..]);
    let signed = format!("{path}?{}={expires}", s.expires_param);
    let token: String = hmac(s.secret.as_bytes(), signed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}{signed}&{}={token}", &base[..path_start], s.token_param)
}

struct Signer;

impl Guest for Signer {
    fn sign(request: SignRequest) -> String {
        let (Some(base_url), Some(secret)) = (host::config("base_url"), host::config("secret"))
        else {
            host::log(host::Level::Error, "base_url and secret are required");
            // Not a URL: the host refuses it and applies on_error.
            return String::new();
        };
        let settings = Settings {
            base_url,
            secret,
            token_param: host::config("token_param").unwrap_or_else(|| "token".into()),
            expires_param: host::config("expires_param").unwrap_or_else(|| "expires".into()),
        };
        let url = sign(
            &settings,
            &request.key,
            request.expires_at,
            host::hmac_sha256,
        );
        url.replace("&token=", &format!("&{}=", settings.token_param))
    }
}

export!(Signer);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_covers_the_path_and_the_expiry() {
        let s = Settings {
            base_url: "https://cdn.example.com/archive/".into(),
            secret: "k".into(),
            token_param: "token".into(),
            expires_param: "expires".into(),
        };
        let seen = std::cell::RefCell::new(Vec::new());
        let url = sign(&s, "ch1/2026/11/24/22/index.m3u8", 1_800_000_000, |k, d| {
            seen.borrow_mut()
                .push((k.to_vec(), String::from_utf8(d.to_vec()).unwrap()));
            vec![0xab, 0x01]
        });
        assert_eq!(
            url,
            "https://cdn.example.com/archive/ch1/2026/11/24/22/index.m3u8?expires=1800000000&token=ab01"
        );
        assert_eq!(
            seen.borrow()[0],
            (
                b"k".to_vec(),
                "/archive/ch1/2026/11/24/22/index.m3u8?expires=1800000000".to_string()
            )
        );
    }
}
