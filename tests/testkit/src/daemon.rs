//! A running `hlsvault run` for live tests: its log in a file, waited
//! on for what it says, stopped with SIGTERM and required to exit 0.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Longest wait for anything a test expects to happen.
const PATIENCE: Duration = Duration::from_secs(40);

/// A running `hlsvault run`, its log going to a file.
pub struct Daemon {
    child: Child,
    log: PathBuf,
    out: PathBuf,
}

impl Daemon {
    /// `bin run --config CONFIG`, logging to `dir/TAG.log`.
    pub fn start(bin: &str, config: &Path, dir: &Path, tag: &str) -> Self {
        let log = dir.join(format!("{tag}.log"));
        let out = dir.join(format!("{tag}.out"));
        let child = Command::new(bin)
            .args(["run", "--config", config.to_str().unwrap()])
            .env("HLSVAULT_LOG", "info")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, log, out }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `pattern` at least `count` times.
    pub fn wait_for(&mut self, pattern: &str, count: usize) {
        let until = Instant::now() + PATIENCE;
        while Instant::now() < until {
            if self.log().matches(pattern).count() >= count {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "hlsvault exited ({status}) while waiting for {pattern:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("no {count}× {pattern:?} in the log:\n{}", self.log());
    }

    /// SIGTERM; returns the summary on standard output once it has exited 0.
    pub fn stop(mut self) -> String {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("hlsvault did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = std::fs::read_to_string(&self.out).unwrap();
        eprintln!("stdout:\n{out}\nstderr:\n{}", self.log());
        assert!(status.success(), "exit status after SIGTERM: {status}");
        out
    }
}
