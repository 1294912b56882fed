//! WebAssembly plugins end to end: the example plugins (built by
//! `plugins/build`) shape a real archive; hostile plugins (built here from
//! tests/plugins/hostile) misbehave inside an archive run, and the archive
//! goes on while the policy, the log and the counters say what happened.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use hlsvault_testkit::archive::{check_timeline, hour_playlists, Playlist};
use hlsvault_testkit::encoders::{ad_break, upper_hex};
use hlsvault_testkit::{
    capture, count_pid, make_ts, output_shown, write_pcap, StreamSpec, Wrap, DST,
};

/// Ten seconds before 10:00 UTC: the captures cross an hour.
fn start() -> SystemTime {
    humantime::parse_rfc3339("2026-11-21T09:59:50Z").unwrap()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An example plugin, as `plugins/build` left it.
fn example(name: &str) -> PathBuf {
    let p = repo().join("plugins/dist").join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run plugins/build (scripts/test does)",
        p.display()
    );
    p
}

/// The hostile plugin, built once per test run.
fn hostile() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = repo().join("tests/plugins");
        let out = output_shown(
            Command::new("cargo")
                .args([
                    "build",
                    "--quiet",
                    "--locked",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                ])
                .current_dir(&dir),
        );
        assert!(out.status.success(), "building the hostile plugin failed");
        dir.join("target/wasm32-wasip2/release/hostile.wasm")
    })
}

fn run(config: &Path) -> (bool, String, String) {
    let out = output_shown(
        Command::new(env!("CARGO_BIN_EXE_hlsvault"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("HLSVAULT_LOG", "info")
            .env("XDG_CACHE_HOME", config.parent().unwrap().join("cache")),
    );
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Every segment file under `dir`, read.
fn segments(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for (path, p) in hour_playlists(dir) {
        assert!(p.ended, "{path:?} is closed");
        for e in &p.entries {
            out.push((e.path.clone(), std::fs::read(&e.path).unwrap()));
        }
    }
    out
}

#[test]
fn the_example_plugins_shape_a_real_archive() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A constant-rate multiplex: padded with null packets.
    let ts = d.join("cbr.ts");
    make_ts(
        &ts,
        &StreamSpec {
            seconds: 20.0,
            muxrate: Some(1_500_000),
            ..StreamSpec::default()
        },
    )
    .unwrap();
    let nulls_sent = count_pid(&std::fs::read(&ts).unwrap(), 8191);
    assert!(
        nulls_sent > 1000,
        "ffmpeg padded the multiplex: {nulls_sent}"
    );
    let pcap = d.join("cbr.pcap");
    write_pcap(&pcap, start(), &[Wrap::new(&ts, DST)], false).unwrap();
    let config = d.join("hlsvault.toml");
    std::fs::write(
        &config,
        format!(
            r##"
[storage]
root = "{archive}"
urls = "public"
public_base_url = "https://origin.example/archive"

[plugins.nulls]
path = "{drop}"
# Room for a debug build on a busy machine: this test is not about deadlines.
timeout = "500ms"
config = {{ pids = 8191 }}

[plugins.names]
path = "{namer}"
config = {{ template = "{{stream}}-{{YYYY}}{{MM}}{{DD}}T{{hh}}{{mm}}{{ss}}Z-{{sequence:6}}.ts" }}

[plugins.tags]
path = "{tags}"
config = {{ header = "#X-CHANNEL:Demo 1", entry = "#EXT-X-DATERANGE:ID=\"{{stream}}-{{sequence}}\",START-DATE=\"{{start}}\",DURATION={{duration}}", live = false }}

[plugins.cdn]
path = "{signer}"
config = {{ base_url = "https://cdn.example.com/archive", secret = "s3cret" }}

[[streams]]
name = "ch1"
plugins = ["nulls", "names", "tags", "cdn"]
null_packets = "keep"
[streams.source]
kind = "pcap-file"
path = "{pcap}"
group = "{group}"
port = {port}

[[streams]]
name = "plain"
null_packets = "keep"
[streams.source]
kind = "pcap-file"
path = "{pcap}"
group = "{group}"
port = {port}
"##,
            archive = d.join("archive").display(),
            drop = example("drop-pids").display(),
            namer = example("segment-namer").display(),
            tags = example("playlist-tags").display(),
            signer = example("cdn-token-signer").display(),
            pcap = pcap.display(),
            group = DST.ip(),
            port = DST.port(),
        ),
    )
    .unwrap();
    let check = output_shown(
        Command::new(env!("CARGO_BIN_EXE_hlsvault"))
            .args(["check", "--config", config.to_str().unwrap()])
            .env("XDG_CACHE_HOME", d.join("cache")),
    );
    assert!(check.status.success(), "check accepts the plugins");
    // The cache is private, and a planted or tampered artifact is never
    // run: it does not verify, and the plugin is compiled again.
    use std::os::unix::fs::PermissionsExt;
    let cache = d.join("cache/hlsvault/plugins");
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let artifact = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .expect("a cached plugin");
    let mut planted = std::fs::read(&artifact).unwrap();
    let middle = planted.len() / 2;
    planted[middle] ^= 0xff;
    std::fs::write(&artifact, &planted).unwrap();
    let again = output_shown(
        Command::new(env!("CARGO_BIN_EXE_hlsvault"))
            .args(["check", "--config", config.to_str().unwrap()])
            .env("XDG_CACHE_HOME", d.join("cache")),
    );
    assert!(again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("does not verify"), "{said}");
    assert_ne!(std::fs::read(&artifact).unwrap(), planted, "compiled again");
    let (ok, stdout, _) = run(&config);
    assert!(ok, "the run is clean");

    // drop-pids: the plugin's stream has no null packets; the plain one
    // keeps every one, and the summary counts what was dropped.
    let ch1 = segments(&d.join("archive/ch1"));
    let plain = segments(&d.join("archive/plain"));
    assert_eq!(ch1.len(), plain.len());
    let nulls =
        |segs: &[(PathBuf, Vec<u8>)]| segs.iter().map(|s| count_pid(&s.1, 8191)).sum::<usize>();
    assert_eq!(nulls(&ch1), 0);
    assert!(nulls(&plain) > 1000, "{}", nulls(&plain));
    let dropped_line = stdout
        .lines()
        .find(|l| l.starts_with("ch1:"))
        .unwrap()
        .to_string();
    assert!(
        dropped_line.contains(" TS packets dropped by packet filter plugins"),
        "{dropped_line}"
    );
    // Everything else is the same media: same packets but the nulls.
    for ((_, a), (_, b)) in ch1.iter().zip(&plain) {
        assert_eq!(a.len(), b.len() - count_pid(b, 8191) * 188);
    }

    // segment-namer: names from the template, in their hour's folder.
    let hours = hour_playlists(&d.join("archive/ch1"));
    assert_eq!(hours.len(), 2, "the capture crosses 10:00");
    let mut sequence = 0;
    for (path, p) in &hours {
        for e in &p.entries {
            let stamp = humantime::format_rfc3339_seconds(e.pdt.unwrap()).to_string();
            let compact: String = stamp
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == 'T')
                .collect();
            assert_eq!(
                e.uri,
                format!("ch1-{compact}Z-{sequence:06}.ts"),
                "{path:?}"
            );
            assert!(e.path.exists());
            sequence += 1;
        }
    }
    // The archive still plays: every segment decodes, EXTINF matches PTS.
    let entries: Vec<_> = hours.iter().flat_map(|(_, p)| p.entries.clone()).collect();
    check_timeline(&entries, "video", 0.04);

    // playlist-tags: the header tag and a DATERANGE per entry in the hours,
    // nothing in the live window (live = false).
    let text = std::fs::read_to_string(&hours[0].0).unwrap();
    assert!(text.contains("\n#X-CHANNEL:Demo 1\n"), "{text}");
    let dateranges = text.matches("#EXT-X-DATERANGE:ID=\"ch1-").count();
    assert_eq!(dateranges, hours[0].1.entries.len(), "{text}");
    assert!(text.contains("#EXT-X-DATERANGE:ID=\"ch1-0\",START-DATE=\"2026-11-21T09:59:5"));
    let live = std::fs::read_to_string(d.join("archive/ch1/live.m3u8")).unwrap();
    assert!(
        !live.contains("DATERANGE") && !live.contains("X-CHANNEL"),
        "{live}"
    );
    // ffprobe reads the tagged playlist as a whole.
    let secs = hlsvault_testkit::probe_duration(hours[0].0.to_str().unwrap()).unwrap();
    let listed: f64 = hours[0].1.entries.iter().map(|e| e.extinf).sum();
    assert!((secs - listed).abs() < 0.1, "{secs} vs {listed}");

    // cdn-token-signer: hours.log hands out CDN URLs whose token is the
    // HMAC-SHA256 of path and expiry under the shared secret.
    let log = std::fs::read_to_string(d.join("archive/ch1/hours.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.starts_with("2026-11-21T09 "))
        .unwrap();
    let url = line.split_once(' ').unwrap().1;
    let (signed, token) = url.rsplit_once("&token=").unwrap();
    let path_and_query = signed.strip_prefix("https://cdn.example.com").unwrap();
    assert!(
        path_and_query.starts_with("/archive/ch1/2026/11/21/09/index.m3u8?expires="),
        "{url}"
    );
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(path_and_query.as_bytes());
    assert_eq!(token, hex::encode(mac.finalize().into_bytes()));
    let expires: u64 = path_and_query.rsplit_once('=').unwrap().1.parse().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expires > now + 6 * 86_400 && expires <= now + 7 * 86_400 + 60,
        "{expires}"
    );
    // `hlsvault sign` renews the hour's URL the same way, signer included.
    let out = output_shown(
        Command::new(env!("CARGO_BIN_EXE_hlsvault"))
            .args(["sign", "--config", config.to_str().unwrap()])
            .args(["--stream", "ch1", "--hour", "2026-11-21T09"])
            .env("XDG_CACHE_HOME", d.join("cache")),
    );
    assert!(out.status.success(), "sign succeeds");
    let renewed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        renewed
            .starts_with("https://cdn.example.com/archive/ch1/2026/11/21/09/index.m3u8?expires=")
            && renewed.contains("&token="),
        "{renewed}"
    );
    let log = std::fs::read_to_string(d.join("archive/ch1/hours.log")).unwrap();
    assert!(log.contains(&format!("2026-11-21T09 {renewed}\n")), "{log}");

    // The plain stream keeps the host's URLs.
    let plain_log = std::fs::read_to_string(d.join("archive/plain/hours.log")).unwrap();
    assert!(plain_log.contains("https://origin.example/archive/plain/2026/11/21/09/index.m3u8"));

    // Per-plugin figures in the summary.
    assert_no_call_failed(&stdout, &["nulls", "names", "tags", "cdn"]);
}

/// The run's summary (`stdout`) has a line for each plugin of `names`,
/// and none failed a call.
fn assert_no_call_failed(stdout: &str, names: &[&str]) {
    for name in names {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("plugin {name}: ")))
            .unwrap_or_else(|| panic!("no summary for {name}: {stdout}"));
        assert!(line.contains(" 0 failed"), "{line}");
    }
}

#[test]
fn a_policy_plugin_of_0_2_0_sees_the_markers_and_one_built_against_0_1_0_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ts = d.join("break.ts");
    let (out, back) = ad_break(&ts).unwrap();
    let pcap = d.join("break.pcap");
    write_pcap(&pcap, start(), &[Wrap::new(&ts, DST)], false).unwrap();
    let config = d.join("hlsvault.toml");
    std::fs::write(
        &config,
        format!(
            r##"
[storage]
root = "{archive}"

[plugins.ads]
path = "{markers}"
timeout = "500ms"
config = {{ cue_out = "#EXT-OATCLS-SCTE35:{{base64}}\n#X-AD:EVENT={{event}},AT={{at}},DURATION={{duration}},HEX={{hex}}", live = false }}

[plugins.tags]
path = "{tags}"
timeout = "500ms"
config = {{ entry = "#X-ENTRY:{{stream}}-{{sequence}}", live = false }}

[[streams]]
name = "ch1"
plugins = ["ads", "tags"]
[streams.source]
kind = "pcap-file"
path = "{pcap}"
group = "{group}"
port = {port}
"##,
            archive = d.join("archive").display(),
            markers = example("marker-tags").display(),
            tags = example("playlist-tags").display(),
            pcap = pcap.display(),
            group = DST.ip(),
            port = DST.port(),
        ),
    )
    .unwrap();
    let (ok, stdout, stderr) = run(&config);
    assert!(ok, "the run is clean: {stderr}");
    let entries: Vec<_> = hour_playlists(&d.join("archive/ch1"))
        .into_iter()
        .flat_map(|(_, p)| p.entries)
        .collect();
    // The 0.1.0 build tags every entry, as before 0.2.0.
    for (sequence, e) in entries.iter().enumerate() {
        let own = format!("#X-ENTRY:ch1-{sequence}");
        assert_eq!(
            e.tags.iter().filter(|t| **t == own).count(),
            1,
            "{:?}",
            e.tags
        );
    }
    // The 0.2.0 build is told both markers: the cue-out's tags (its
    // template) and the cue-in's (the default), on the entries whose
    // DATERANGE the host wrote, after it.
    let with = |attribute: &str| {
        entries
            .iter()
            .find(|e| e.dateranges.iter().any(|r| r.contains_key(attribute)))
            .unwrap_or_else(|| panic!("an entry with {attribute}"))
    };
    let (out_entry, in_entry) = (with("SCTE35-OUT"), with("SCTE35-IN"));
    let oatcls = |e: &hlsvault_testkit::archive::Entry| -> Vec<u8> {
        let tag = e
            .tags
            .iter()
            .find_map(|t| t.strip_prefix("#EXT-OATCLS-SCTE35:"));
        decode_base64(tag.unwrap_or_else(|| panic!("no OATCLS tag in {:?}", e.tags)))
    };
    assert_eq!(oatcls(out_entry), out);
    assert_eq!(oatcls(in_entry), back);
    let range = &out_entry.dateranges[0];
    let ad = format!(
        "#X-AD:EVENT=77,AT={},DURATION=6.000,HEX=0x{}",
        range["START-DATE"],
        upper_hex(&out)
    );
    let position = |e: &hlsvault_testkit::archive::Entry, prefix: &str| {
        e.tags.iter().position(|t| t.starts_with(prefix)).unwrap()
    };
    assert!(out_entry.tags.contains(&ad), "{:?}", out_entry.tags);
    assert!(
        position(out_entry, "#EXT-X-DATERANGE") < position(out_entry, "#EXT-OATCLS-SCTE35"),
        "the host's marker tags come first: {:?}",
        out_entry.tags
    );
    let oatcls_tags = entries
        .iter()
        .flat_map(|e| &e.tags)
        .filter(|t| t.starts_with("#EXT-OATCLS-SCTE35:"))
        .count();
    assert_eq!(oatcls_tags, 2, "one per marker");
    // live = false: the live window has none of either plugin's tags.
    let live = std::fs::read_to_string(d.join("archive/ch1/live.m3u8")).unwrap();
    assert!(!live.contains("#X-") && !live.contains("OATCLS"), "{live}");
    check_timeline(&entries, "video", 0.04);
    assert_no_call_failed(&stdout, &["ads", "tags"]);
}

/// `text` as base64, decoded by coreutils' `base64`.
fn decode_base64(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("base64")
        .arg("--decode")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{text:?} is base64");
    out.stdout
}

/// One stream per misbehaviour, all from the same capture in one run
/// replayed in real time (datagrams come one by one, as live), and a
/// stream without plugins beside them.
#[test]
fn hostile_plugins_never_stop_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pcap = capture(d, "a", 12.0, start()).unwrap();
    let cases = [
        ("looping", "loop", "fail-open"),
        ("bomb", "bomb", "fail-open"),
        ("trapping", "trap", "fail-open"),
        ("dotdot", "dotdot", "fail-open"),
        ("multiline", "multiline", "fail-open"),
        ("same", "same", "fail-open"),
        ("key", "key", "fail-open"),
        ("closed", "trap", "fail-closed"),
    ];
    let mut text = format!("[storage]\nroot = \"{}\"\n", d.join("archive").display());
    for (name, mode, policy) in cases {
        // A short deadline for the loop; the others get room enough that
        // a busy machine (two cores, seven streams, a loop burning its
        // deadline) never makes them time out instead of failing their way.
        let timeout = if mode == "loop" { "5ms" } else { "200ms" };
        text.push_str(&format!(
            "[plugins.{name}]\npath = \"{}\"\non_error = \"{policy}\"\ntimeout = \"{timeout}\"\nmemory = \"8MiB\"\nconfig = {{ mode = \"{mode}\" }}\n",
            hostile().display()
        ));
    }
    for name in cases.iter().map(|c| c.0).chain(["clean"]) {
        let plugins = match name {
            "clean" => String::new(),
            n => format!("plugins = [\"{n}\"]\n"),
        };
        text.push_str(&format!(
            "[[streams]]\nname = \"{name}\"\n{plugins}[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"{}\"\nport = {}\npace = \"realtime\"\n",
            pcap.display(),
            DST.ip(),
            DST.port()
        ));
    }
    let config = d.join("hlsvault.toml");
    std::fs::write(&config, text).unwrap();
    let (ok, stdout, stderr) = run(&config);
    assert!(ok, "the run ends well");
    let summary = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no summary for {name}"))
            .to_string()
    };
    let plugin = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("plugin {name}: ")))
            .unwrap_or_else(|| panic!("no plugin summary for {name}"))
            .to_string()
    };
    let clean = segments(&d.join("archive/clean"));
    assert!(clean.len() >= 3);

    // Fail-open: every stream archived all of it, byte for byte.
    for name in [
        "looping",
        "bomb",
        "trapping",
        "dotdot",
        "multiline",
        "same",
        "key",
    ] {
        let got = segments(&d.join("archive").join(name));
        assert_eq!(got.len(), clean.len(), "{name}: {}", summary(name));
        for ((_, a), (_, b)) in got.iter().zip(&clean) {
            assert!(a == b, "{name}: a segment differs");
        }
        let p = plugin(name);
        assert!(!p.contains(" 0 failed"), "{name} failures are counted: {p}");
    }
    // Each failure says what it was, naming the plugin and the stream.
    let logged = |plugin: &str, what: &str| {
        stderr.lines().any(|l| {
            l.contains(&format!("plugin={plugin}"))
                && l.contains(&format!("stream={plugin}"))
                && l.contains(what)
        })
    };
    assert!(logged("looping", "ran past its deadline (5ms)"), "{stderr}");
    assert!(
        plugin("looping").contains("past their deadline") && !plugin("looping").contains("(0 past")
    );
    assert!(
        logged("bomb", "plugin went past its memory limit (8.0 MiB)"),
        "{stderr}"
    );
    assert!(logged("trapping", "plugin trapped"), "{stderr}");
    assert!(
        logged("dotdot", "invalid result") && logged("dotdot", "\"..\" part"),
        "{stderr}"
    );
    assert!(
        logged("multiline", "invalid result") && logged("multiline", "not a single line"),
        "{stderr}"
    );
    // A name already in the hour would overwrite a segment: refused.
    assert!(
        logged("same", "invalid result") && logged("same", "already a segment of this hour"),
        "{stderr}"
    );
    // A tag that changes how media is fetched: refused.
    assert!(
        logged("key", "invalid result") && logged("key", "#EXT-X-KEY changes how the media"),
        "{stderr}"
    );
    for (path, _) in hour_playlists(&d.join("archive/key")) {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("EXT-X-KEY"), "{text}");
    }
    assert!(logged("trapping", "fail-open: built-in behaviour used"));
    // Repeated failures suspend the plugin (with backoff), and say so.
    assert!(logged("trapping", "suspended"), "{stderr}");

    // The namer could not escape: default names, nothing outside the archive.
    let names: Vec<String> = hour_playlists(&d.join("archive/dotdot"))
        .iter()
        .flat_map(|(_, p)| p.entries.iter().map(|e| e.uri.clone()))
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains("..") && n.ends_with(".ts")),
        "{names:?}"
    );
    assert!(!d.join("escape.ts").exists() && !d.join("archive/escape.ts").exists());
    // The tag could not smuggle an entry in.
    for (path, _) in hour_playlists(&d.join("archive/multiline")) {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("evil.ts") && !text.contains("EXT-X-FOO"),
            "{text}"
        );
        Playlist::read(&path);
    }

    // Fail-closed: the filter's batches were dropped, so nothing was
    // archived for that stream, and the summary says why.
    let closed = summary("closed");
    assert!(closed.starts_with("closed: 0 segments"), "{closed}");
    assert!(
        closed.contains("TS packets dropped by packet filter plugins"),
        "{closed}"
    );
    assert!(
        logged("closed", "fail-closed: its output dropped"),
        "{stderr}"
    );

    // The clean stream beside them is whole.
    let entries: Vec<_> = hour_playlists(&d.join("archive/clean"))
        .iter()
        .flat_map(|(_, p)| p.entries.clone())
        .collect();
    check_timeline(&entries, "video", 0.04);
}

/// Writes `d/hlsvault.toml`: stream ch1 replays `pcap` in real time
/// through `[plugins.tags]` at `plugin`, which tags every entry `entry`
/// (with a deadline a loaded debug build always meets: deadlines are not
/// the point of these tests).
fn tags_config(d: &Path, pcap: &Path, plugin: &Path, entry: &str) -> PathBuf {
    let config = d.join("hlsvault.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n[plugins.tags]\npath = \"{}\"\ntimeout = \"500ms\"\nconfig = {{ entry = \"{entry}\" }}\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"2s\"\nplugins = [\"tags\"]\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"{}\"\nport = {}\npace = \"realtime\"\n",
            d.join("archive").display(),
            plugin.display(),
            pcap.display(),
            DST.ip(),
            DST.port()
        ),
    )
    .unwrap();
    config
}

/// Starts `hlsvault run` on `config`, logging to `d/run.log`.
fn spawn_run(d: &Path, config: &Path) -> hlsvault_testkit::KillOnDrop {
    hlsvault_testkit::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_hlsvault"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("HLSVAULT_LOG", "info")
            .env("XDG_CACHE_HOME", d.join("cache"))
            .stdout(std::fs::File::create(d.join("run.out")).unwrap())
            .stderr(std::fs::File::create(d.join("run.log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Waits for the run to end well; its log.
fn finished(d: &Path, mut run: hlsvault_testkit::KillOnDrop) -> String {
    let status = run.0.wait().unwrap();
    let log = std::fs::read_to_string(d.join("run.log")).unwrap();
    assert!(status.success(), "{log}");
    log
}

/// The `#X-BUILD:` tag of ch1's every entry, in order (checking that each
/// names its entry's sequence), after checking that all the media is
/// there without a break.
fn build_tags(d: &Path) -> Vec<Option<String>> {
    let mut tags = Vec::new();
    for (path, p) in hour_playlists(&d.join("archive/ch1")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut tag = None;
        for line in text.lines() {
            if let Some(t) = line.strip_prefix("#X-BUILD:") {
                let (build, seq) = t.split_once(' ').unwrap();
                assert_eq!(seq, tags.len().to_string(), "{text}");
                tag = Some(build.to_string());
            } else if !line.starts_with('#') && !line.is_empty() {
                tags.push(tag.take());
            }
        }
        assert!(p.entries.iter().all(|e| !e.discontinuity), "{text}");
    }
    let entries: Vec<_> = hour_playlists(&d.join("archive/ch1"))
        .iter()
        .flat_map(|(_, p)| p.entries.clone())
        .collect();
    let listed: f64 = entries.iter().map(|e| e.extinf).sum();
    assert!(listed > 15.5, "all the media is archived: {listed} s");
    check_timeline(&entries, "video", 0.04);
    tags
}

#[test]
fn a_replaced_plugin_file_swaps_in_at_a_segment_boundary_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pcap = capture(d, "a", 16.0, start()).unwrap();
    // Built before the run starts: the run is timed.
    let next_build = std::fs::read(hostile()).unwrap();
    std::fs::create_dir(d.join("plugins")).unwrap();
    let live_path = d.join("plugins/tags.wasm");
    std::fs::copy(example("playlist-tags"), &live_path).unwrap();
    // Deployments replace a file by renaming a new one over it.
    let replace = |from: &[u8]| {
        let tmp = d.join("plugins/.tags.wasm.new");
        std::fs::write(&tmp, from).unwrap();
        std::fs::rename(&tmp, &live_path).unwrap();
    };
    let config = tags_config(d, &pcap, &live_path, "#X-BUILD:one {sequence}");
    let run = spawn_run(d, &config);
    // A third in: a file that is not a plugin; the running build stays.
    std::thread::sleep(std::time::Duration::from_secs(5));
    replace(b"not a component");
    // Two thirds in: another plugin (the hostile one, behaving: no tags).
    std::thread::sleep(std::time::Duration::from_secs(5));
    replace(&next_build);
    let stderr = finished(d, run);
    // Once: reading the file back is not a change.
    assert_eq!(
        stderr
            .matches("plugin file changed but cannot be loaded; the running build stays")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("swapped in at a segment boundary"),
        "{stderr}"
    );
    // Every entry is there, in order, without a break; the tags of the
    // first build stop at an entry boundary and never come back.
    let tags = build_tags(d);
    let first_untagged = tags
        .iter()
        .position(Option::is_none)
        .expect("the swap happened");
    assert!(first_untagged >= 3, "the first build ran a while: {tags:?}");
    assert!(tags[..first_untagged]
        .iter()
        .all(|t| t.as_deref() == Some("one")));
    assert!(
        tags[first_untagged..].iter().all(Option::is_none),
        "{tags:?}"
    );
}

#[test]
fn a_changed_plugin_table_swaps_in_without_restarting_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pcap = capture(d, "a", 16.0, start()).unwrap();
    let plugin = example("playlist-tags");
    let config = tags_config(d, &pcap, &plugin, "#X-BUILD:one {sequence}");
    let run = spawn_run(d, &config);
    // Halfway: the plugin's config values change in the config file.
    std::thread::sleep(std::time::Duration::from_secs(8));
    tags_config(d, &pcap, &plugin, "#X-BUILD:two {sequence}");
    let log = finished(d, run);
    assert!(log.contains("plugin table changed"), "{log}");
    assert!(
        log.contains("restarted=[]"),
        "the stream did not restart: {log}"
    );
    // One pass over the capture: the first values up to an entry, the new
    // ones from there on.
    let tags = build_tags(d);
    let switch = tags
        .iter()
        .position(|t| t.as_deref() == Some("two"))
        .expect("the swap happened");
    assert!(switch >= 2, "{tags:?}");
    assert!(
        tags[..switch].iter().all(|t| t.as_deref() == Some("one")),
        "{tags:?}"
    );
    assert!(
        tags[switch..].iter().all(|t| t.as_deref() == Some("two")),
        "{tags:?}"
    );
}

#[test]
fn check_says_which_plugin_cannot_be_used_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pcap = capture(d, "a", 2.0, start()).unwrap();
    std::fs::write(d.join("junk.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let config = d.join("hlsvault.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n[plugins.gone]\npath = \"{}\"\n[plugins.junk]\npath = \"{}\"\n[plugins.ok]\npath = \"{}\"\n[[streams]]\nname = \"ch1\"\nplugins = [\"gone\", \"junk\", \"ok\"]\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"{}\"\nport = {}\n",
            d.join("archive").display(),
            d.join("gone.wasm").display(),
            d.join("junk.wasm").display(),
            example("drop-pids").display(),
            pcap.display(),
            DST.ip(),
            DST.port()
        ),
    )
    .unwrap();
    for cmd in ["check", "run"] {
        let out = output_shown(
            Command::new(env!("CARGO_BIN_EXE_hlsvault"))
                .args([cmd, "--config", config.to_str().unwrap()])
                .env("XDG_CACHE_HOME", d.join("cache")),
        );
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("plugins.gone.path: ") && err.contains("gone.wasm: cannot read"),
            "{err}"
        );
        assert!(
            err.contains("plugins.junk.path: ")
                && err.contains("junk.wasm: not a WebAssembly component"),
            "{err}"
        );
        assert!(!err.contains("plugins.ok"), "{err}");
    }
    assert!(
        !d.join("archive").exists(),
        "nothing archived with a bad config"
    );
    // inspect names the hooks of a good one and refuses a bad one.
    let inspect = |p: &Path| {
        output_shown(Command::new(env!("CARGO_BIN_EXE_hlsvault")).args([
            "plugin",
            "inspect",
            p.to_str().unwrap(),
        ]))
    };
    let good = inspect(&example("drop-pids"));
    let text = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success());
    assert!(text.contains("hooks:\n  packet-filter\n"), "{text}");
    assert!(text.contains("contract: hlsvault:plugin@0.2.0\n"), "{text}");
    assert!(text.contains("hlsvault:plugin/host@0.2.0"), "{text}");
    // playlist-tags is built against 0.1.0, which the host still serves.
    let old = inspect(&example("playlist-tags"));
    let text = String::from_utf8_lossy(&old.stdout);
    assert!(text.contains("contract: hlsvault:plugin@0.1.0\n"), "{text}");
    assert!(text.contains("hlsvault:plugin/host@0.1.0"), "{text}");
    assert_eq!(inspect(&d.join("junk.wasm")).status.code(), Some(2));
}

#[test]
fn a_packet_filter_sees_204_byte_packets_as_188() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ts = d.join("cbr.ts");
    let spec = StreamSpec {
        seconds: 8.0,
        muxrate: Some(1_500_000),
        ..StreamSpec::default()
    };
    make_ts(&ts, &spec).unwrap();
    let nulls_sent = count_pid(&std::fs::read(&ts).unwrap(), 8191);
    let mut parity = Wrap::new(&ts, DST);
    parity.packets = hlsvault_testkit::PacketFormat::ReedSolomon;
    let pcap = d.join("parity.pcap");
    write_pcap(&pcap, start(), &[parity], false).unwrap();
    let config = d.join("hlsvault.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n[plugins.nulls]\npath = \"{}\"\ntimeout = \"500ms\"\nconfig = {{ pids = \"8191\" }}\n[[streams]]\nname = \"ch1\"\nplugins = [\"nulls\"]\nnull_packets = \"keep\"\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"{}\"\nport = {}\n",
            d.join("archive").display(),
            example("drop-pids").display(),
            pcap.display(),
            DST.ip(),
            DST.port()
        ),
    )
    .unwrap();
    let (ok, stdout, _) = run(&config);
    assert!(ok, "the run is clean");
    let line = stdout.lines().find(|l| l.starts_with("ch1:")).unwrap();
    assert!(
        line.contains(&format!(
            "; {nulls_sent} TS packets dropped by packet filter plugins"
        )),
        "{line}"
    );
    let segs = segments(&d.join("archive/ch1"));
    assert!(!segs.is_empty());
    assert!(segs.iter().all(|s| count_pid(&s.1, 8191) == 0));
}
