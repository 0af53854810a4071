//! Workloads that are not edgebench's, declared in a campaign file: a
//! `wasi:http` component from another project (the `wasip2` crate's own
//! `http-proxy` example, built here) on every Wasm host, and a static binary
//! written in another style (tests/fixtures/user_server.rs, std only) on
//! native and Docker. Each is measured with the same metrics and checked
//! against its declared answers like the built-in workloads; the runtimes
//! without an artifact for it say so.

mod common;

use common::{available, children_left, edgebench, samples};
use edgebench::store::Store;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn target_dir() -> PathBuf {
    edgebench::artifacts::Artifacts::from_env().target_dir
}

/// The `wasip2` crate's `examples/http-proxy.rs` (Bytecode Alliance's
/// bindings, answering "Hello, WASI!"), built as a component into `dir`.
fn foreign_component(dir: &Path) -> PathBuf {
    let workspace = edgebench::artifacts::Artifacts::from_env().source;
    let meta = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(meta.status.success(), "{}", String::from_utf8_lossy(&meta.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).unwrap();
    let package =
        meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == "wasip2").expect("wasip2 in the lockfile");
    let example =
        Path::new(package["manifest_path"].as_str().unwrap()).parent().unwrap().join("examples/http-proxy.rs");
    assert!(example.exists(), "{} is in the wasip2 package", example.display());
    let project = dir.join("foreign-proxy");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"foreign-proxy\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\n\
             crate-type = [\"cdylib\"]\npath = {:?}\n\n[dependencies]\nwasip2 = \"={}\"\n\n[workspace]\n",
            example.display().to_string(),
            package["version"].as_str().unwrap()
        ),
    )
    .unwrap();
    // Our lockfile: the versions edgebench's own build already fetched.
    std::fs::copy(workspace.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let target = target_dir().join("user-workload-test");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success());
    let built = target.join("wasm32-wasip2/release/foreign_proxy.wasm");
    let component = dir.join("proxy.wasm");
    std::fs::copy(built, &component).unwrap();
    component
}

/// tests/fixtures/user_server.rs as a static binary in `dir`.
fn user_binary(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/user_server.rs");
    let binary = dir.join("user-server");
    let status = Command::new("rustc")
        .args(["--edition", "2021", "-O", "--target", "x86_64-unknown-linux-musl", "-C", "target-feature=+crt-static"])
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .status()
        .unwrap();
    assert!(status.success(), "rustc {}", source.display());
    binary
}

const PROXY: &str = r#"
[workload.proxy]
description = "the wasip2 crate's http-proxy example"
component = "proxy.wasm"
[workload.proxy.probe]
expect_body = "Hello, WASI!"
[[workload.proxy.conformance]]
method = "POST"
path = "/anything?x=1"
body = "ignored"
headers = { x-user = "edge" }
expect_body_regex = "^Hello, WASI!$"
"#;

const GREETER: &str = r#"
[workload.greeter]
binary = "user-server"
args = ["--listen", "{addr}"]
[workload.greeter.probe]
expect_body = "greetings from a user binary\n"
[workload.greeter.latency]
path = "/count"
expect_body_regex = "^served [0-9]+\n$"
[[workload.greeter.conformance]]
path = "/nope"
expect_status = 404
expect_body = "nothing here\n"
"#;

fn study(dir: &Path, runtimes: &[&str], workloads: &[&str], declared: &str) -> PathBuf {
    let list = |xs: &[&str]| xs.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(", ");
    let text = format!(
        "runtimes = [{}]\nworkloads = [{}]\nreps = 2\nrequests = 30\nwarm_starts = 3\ncpus = \"shared\"\n\
         settle_max_ms = 0\n{declared}",
        list(runtimes),
        list(workloads)
    );
    let path = dir.join("study.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// (runtime, workload) → the metrics with at least one ok sample.
fn measured(dir: &Path) -> std::collections::BTreeMap<(String, String), BTreeSet<String>> {
    let mut out = std::collections::BTreeMap::<_, BTreeSet<String>>::new();
    for s in samples(dir).into_iter().filter(|s| s.ok && s.phase != "prepare") {
        out.entry((s.runtime.clone(), s.workload.clone())).or_default().insert(s.metric.clone());
    }
    out
}

/// The metrics of the built-in `hello` each runtime measured are measured
/// for the user workload too (per-campaign extras such as the daemon's
/// memory, taken once, aside).
fn assert_same_metrics(dir: &Path, runtimes: &[&str], user: &str) {
    let m = measured(dir);
    for r in runtimes {
        let ours = m.get(&(r.to_string(), "hello".into())).unwrap_or_else(|| panic!("{r} measured hello: {m:?}"));
        let theirs = m.get(&(r.to_string(), user.into())).unwrap_or_else(|| panic!("{r} measured {user}: {m:?}"));
        let missing: Vec<_> = ours.difference(theirs).filter(|x| !x.starts_with("daemon_")).collect();
        assert!(missing.is_empty(), "{r}: {user} lacks {missing:?} that hello has");
        assert!(theirs.contains("cold_start") && theirs.contains("latency_keepalive"), "{r} {user}: {theirs:?}");
    }
}

fn not_measured_notes(dir: &Path) -> Vec<(String, String, String)> {
    let store = Store::open_read_only(dir).unwrap();
    let id = store.campaign().unwrap().unwrap().id;
    let rows = store.runtimes(&id).unwrap();
    rows.iter().flat_map(|r| r.workloads_not_run().into_iter().map(|(w, why)| (r.runtime.clone(), w, why))).collect()
}

#[test]
fn a_foreign_component_is_measured_like_ours_on_every_wasm_host() {
    let dir = tempfile::tempdir().unwrap();
    foreign_component(dir.path());
    let mut runtimes = vec!["wasmtime-embedded", "native"];
    for optional in ["wasmtime", "wasmcloud"] {
        if available(optional) {
            runtimes.push(optional);
        }
    }
    let selection: Vec<String> = runtimes
        .iter()
        .map(|r| if *r == "wasmcloud" { "wasmcloud:deploy-cold".into() } else { r.to_string() })
        .collect();
    let selection: Vec<&str> = selection.iter().map(String::as_str).collect();
    let file = study(dir.path(), &selection, &["hello", "proxy"], PROXY);
    let out = dir.path().join("c");
    let run = edgebench(
        &["run", "--no-build", "--campaign", file.to_str().unwrap(), "--out", out.to_str().unwrap()],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    let wasm_hosts: Vec<&str> = runtimes.iter().copied().filter(|r| *r != "native").collect();
    for r in &wasm_hosts {
        assert!(stderr.contains(&format!("{r} ")) && stderr.contains("proxy: answers as declared"), "{stderr}");
    }
    assert_same_metrics(&out, &wasm_hosts, "proxy");
    let notes = not_measured_notes(&out);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!((notes[0].0.as_str(), notes[0].1.as_str()), ("native", "proxy"));
    assert!(notes[0].2.contains("no artifact for this runtime") && notes[0].2.contains("static Linux binary"));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("**native** (static-musl), workload proxy: not measured: this workload has no artifact"));
    // The resolved campaign holds the definition, with absolute paths: it runs again anywhere.
    let resolved = std::fs::read_to_string(out.join(edgebench::campaign::CAMPAIGN_FILE)).unwrap();
    assert!(
        resolved.contains("[workload.proxy]")
            && resolved.contains(&dir.path().join("proxy.wasm").display().to_string())
    );
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn a_user_binary_is_measured_like_ours_on_native_and_docker() {
    let dir = tempfile::tempdir().unwrap();
    user_binary(dir.path());
    let mut runtimes = vec!["native", "wasmtime-embedded"];
    if available("docker") {
        runtimes.push("docker");
    }
    let selection: Vec<&str> = runtimes.iter().map(|r| if *r == "docker" { "docker:host" } else { r }).collect();
    let file = study(dir.path(), &selection, &["hello", "greeter"], GREETER);
    let out = dir.path().join("c");
    let run = edgebench(
        &["run", "--no-build", "--campaign", file.to_str().unwrap(), "--out", out.to_str().unwrap()],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("native static-musl greeter: answers as declared"), "{stderr}");
    let binary_runtimes: Vec<&str> = runtimes.iter().copied().filter(|r| *r != "wasmtime-embedded").collect();
    assert_same_metrics(&out, &binary_runtimes, "greeter");
    let notes = not_measured_notes(&out);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!((notes[0].0.as_str(), notes[0].1.as_str()), ("wasmtime-embedded", "greeter"));
    assert!(notes[0].2.contains("wasi:http component"));
    assert_eq!(children_left(), Vec::<String>::new());
    // The docker CLI needs a daemon that outlives the campaign (the test command starts one).
    let daemon = Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    if runtimes.contains(&"docker") && daemon {
        the_users_image_tarball_is_measured_on_docker(dir.path());
    } else if runtimes.contains(&"docker") {
        common::skip("docker", "the image-tarball case needs a running dockerd (docker save/tag/rmi)");
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("the docker CLI");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The user's server as an image of their own (`docker save`), declared as `oci`.
fn the_users_image_tarball_is_measured_on_docker(dir: &Path) {
    const THEIRS: &str = "edgebench-test/user-greeter:1";
    let built = docker(&["image", "ls", "edgebench-user-greeter", "--format", "{{.Repository}}:{{.Tag}}"]);
    let built = built.lines().next().expect("the campaign built the greeter image");
    docker(&["tag", built, THEIRS]);
    docker(&["save", "-o", dir.join("greeter.tar").to_str().unwrap(), THEIRS]);
    docker(&["rmi", THEIRS]);
    let declared = GREETER
        .replace("[workload.greeter", "[workload.image")
        .replace("binary = \"user-server\"", "oci = \"greeter.tar\"");
    let file = study(dir, &["docker:host", "native"], &["hello", "image"], &declared);
    let out = dir.join("image");
    let run =
        edgebench(&["run", "--no-build", "--campaign", file.to_str().unwrap(), "--out", out.to_str().unwrap()], dir);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(&format!("loaded {THEIRS}")) && stderr.contains("docker host image: answers as declared"),
        "{stderr}"
    );
    assert_same_metrics(&out, &["docker"], "image");
    let notes = not_measured_notes(&out);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!((notes[0].0.as_str(), notes[0].1.as_str()), ("native", "image"));
    docker(&["rmi", THEIRS]);
    assert_eq!(children_left(), Vec::<String>::new());
    eprintln!("measured the user's image tarball on docker");
}

#[test]
fn a_user_workload_that_does_not_answer_as_declared_is_reported_before_any_trial() {
    let dir = tempfile::tempdir().unwrap();
    user_binary(dir.path());
    let wrong = GREETER.replace("nothing here\\n", "something else");
    let file = study(dir.path(), &["native"], &["greeter"], &wrong);
    let out = dir.path().join("c");
    let run = edgebench(
        &["run", "--no-build", "--campaign", file.to_str().unwrap(), "--out", out.to_str().unwrap()],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    let said = stderr.find("greeter: does not answer as declared").unwrap_or_else(|| panic!("{stderr}"));
    assert!(stderr[said..].contains("GET /nope") && stderr[said..].contains("something else"), "{stderr}");
    let all = samples(&out);
    let trials: Vec<_> = all.iter().filter(|s| s.metric == "cold_start").collect();
    assert_eq!(trials.len(), 2, "both trials are recorded: {all:#?}");
    assert!(trials.iter().all(|s| !s.ok && s.error.contains("the check before the trials failed")), "{trials:#?}");
}
