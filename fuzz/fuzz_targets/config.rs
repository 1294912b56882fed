//! The configuration file, as an operator (or a typo) writes it.
//!
//! Input: the file's bytes. Loading never panics: it gives a config, or
//! problems that each name the file, a key and a reason.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One file per fuzzing process, rewritten for each input.
fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        std::env::temp_dir().join(format!("hlsvault-fuzz-config-{}.toml", std::process::id()))
    })
}

fuzz_target!(|input: &[u8]| {
    let path = file();
    std::fs::write(path, input).expect("temp dir writable");
    match hlsvault::config::load(path) {
        Ok(config) => assert!(!config.streams.is_empty()),
        Err(e) => {
            assert!(!e.problems.is_empty());
            for p in &e.problems {
                assert!(!p.key.is_empty() && !p.reason.is_empty(), "{p:?}");
            }
            assert!(e
                .to_string()
                .contains(path.to_str().expect("utf-8 temp dir")));
        }
    }
});
