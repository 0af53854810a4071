//! Opens the HTML report of a real (small) campaign in headless Chromium:
//! fails on console messages, missing plots or missing sections, and keeps a
//! screenshot under target/ as an artifact.
//!
//! Skipped, with the reason printed, when Chromium (Debian package
//! `chromium`) or the native workload artifact is missing, unless
//! EDGEBENCH_REQUIRE contains `chromium`.

mod common;

use edgebench::artifacts::Artifacts;
use edgebench::campaign::{Campaign, Metric, Options};
use edgebench::Workload;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Skips the test (or fails it when Chromium is required).
fn skip(why: &str) {
    common::skip("chromium", why);
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| edgebench::runtime::which(name))
}

/// Runs Chromium headless on `page` with `extra` arguments; returns stdout
/// and stderr. A fresh profile, no network services, at most 120 s.
fn run_chromium(chromium: &Path, page: &Path, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .spawn()
        .expect("starting chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait().unwrap() {
            Some(status) => {
                let stderr = std::fs::read_to_string(err.path()).unwrap_or_default();
                assert!(status.success(), "chromium failed ({status}): {stderr}");
                break;
            }
            None if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("chromium did not finish within 120 s");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    (std::fs::read_to_string(out.path()).unwrap(), std::fs::read_to_string(err.path()).unwrap())
}

/// A real campaign: the native server only, 2 trials, a few requests,
/// short throughput runs and small scaling experiments.
fn small_campaign(artifacts: Artifacts, dir: &Path) {
    let mut options = Options {
        runtimes: Some(vec!["native".into()]),
        workloads: vec![Workload::HELLO],
        metrics: Metric::DEFAULT.iter().copied().chain([Metric::Throughput, Metric::Scaling]).collect(),
        reps: 2,
        requests: 30,
        warmup_requests: 5,
        warm_starts: 2,
        seed: 9,
        out: Some(dir.to_path_buf()),
        warmup: true,
        ..Options::default()
    };
    options.load.duration_ms = 150;
    options.load.search_steps = 3;
    options.scaling.max_concurrent = 2;
    options.scaling.max_instances = 2;
    let mut campaign = Campaign::create(options, artifacts).expect("creating the campaign");
    campaign.run(&AtomicBool::new(false)).expect("running the campaign");
}

#[test]
fn report_html_renders_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        return skip("chromium is not installed (Debian: apt-get install chromium)");
    };
    let artifacts = Artifacts::from_env();
    if !artifacts.native_server().exists() {
        return skip(&format!(
            "the native workload server is not built ({}): run `edgebench build`",
            artifacts.native_server().display()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    small_campaign(artifacts, dir.path());
    let page = edgebench::report::write(dir.path()).unwrap();
    assert_eq!(page.file_name().unwrap(), "report.html");

    let (dom, log) = run_chromium(&chromium, &page, &["--dump-dom".into()]);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    for section in ["summary", "key", "plots", "metrics", "quality", "throughput", "scaling", "firewall", "methods"] {
        assert!(dom.contains(&format!("id=\"{section}\"")), "section {section} is missing");
    }
    // Cold-start strip, two latency ECDFs (keep-alive, new connection), memory bars.
    // Throughput: one open-loop curve; scaling: cold start and creation rate against K.
    let plots = dom.matches("<svg").count();
    assert!(plots >= 7, "{plots} plots rendered, expected at least 7");
    assert!(dom.contains("objective: p99 &lt; 10 ms"), "the throughput curve has its objective");
    assert!(dom.contains("stopped by"), "the density table is there");
    assert!(!dom.contains("plot failed"), "a plot failed to render");
    for external in ["<img", "<link", "<script", "src=\"http", "href=\"http"] {
        assert!(!dom.contains(external), "the page loads something: {external}");
    }
    assert!(dom.contains("native (static-musl)"), "the measured runtime is named");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_browser");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let _ = std::fs::remove_file(&png);
    run_chromium(
        &chromium,
        &page,
        &[format!("--screenshot={}", png.display()), "--window-size=1280,4000".into(), "--hide-scrollbars".into()],
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "screenshot {} is missing or blank ({size} bytes)", png.display());
    std::fs::copy(&page, shots.join("report.html")).unwrap();
    eprintln!("report_browser: screenshot kept at {}", png.display());
}
