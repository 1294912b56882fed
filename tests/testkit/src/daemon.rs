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
        Self::start_with_env(bin, config, dir, tag, &[])
    }

    /// As [`Daemon::start`], with `env` added to its environment.
    pub fn start_with_env(
        bin: &str,
        config: &Path,
        dir: &Path,
        tag: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let log = dir.join(format!("{tag}.log"));
        let out = dir.join(format!("{tag}.out"));
        let child = Command::new(bin)
            .args(["run", "--config", config.to_str().unwrap()])
            .env("HLSVAULT_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, log, out }
    }

    /// CPU time it has used so far (user and system).
    pub fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command (which may hold spaces), from the state:
        // utime is the 12th, stime the 13th, in clock ticks (100 a second).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let ticks = field(11) + field(12);
        Duration::from_millis(ticks * 10)
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, ...).
    pub fn signal(&self, signal: i32) {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// SIGKILL, and waits for it to be gone; returns its log.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
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
    pub fn stop(self) -> String {
        let (status, out) = self.stop_with_status();
        assert!(status.success(), "exit status after SIGTERM: {status}");
        out
    }

    /// SIGTERM; returns how it exited and the summary on standard output.
    pub fn stop_with_status(mut self) -> (std::process::ExitStatus, String) {
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
        (status, out)
    }
}

impl Drop for Daemon {
    /// A test that failed leaves no process behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
