//! A secret (credentials, tokens) that never shows in logs or errors.

use std::fmt;

use serde::Deserialize;

/// A secret: never shown by `Debug` (and so never in logs or errors).
///
/// ```
/// let key = hlsvault_store::Secret::new("wJalrXUtnFEMI");
/// assert_eq!(format!("{key:?}"), "Secret(***)");
/// assert_eq!(key.expose(), "wJalrXUtnFEMI");
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
