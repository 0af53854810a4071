//! Bad input, table-driven, through the binary: every case gets a message that
//! names what is wrong and what to do, exit code 2, no panic, and nothing
//! created or deleted (the working directory and a directory of the user's
//! are compared before and after). The other exit codes are checked where
//! they are cheap to reach: 0, and 3 when `compare` finds a change.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The places the cases point at, made once.
struct Fixtures {
    /// The working directory of every case (a default `results/` would appear here).
    cwd: tempfile::TempDir,
    /// A directory of the user's: files that must survive every case.
    user: PathBuf,
    /// Directories holding a results file that is not one.
    corrupt: PathBuf,
    empty: PathBuf,
    foreign: PathBuf,
    /// A directory holding a results file (as a campaign's does).
    campaign: PathBuf,
    /// A plain file.
    file: PathBuf,
    /// A workspace with no artifacts built.
    no_artifacts: PathBuf,
    /// Campaign files: an unknown key, a bad value, a runtime variant that does not exist.
    typo: PathBuf,
    zero: PathBuf,
    wrong_variant: PathBuf,
    /// User workloads declared wrong, each in a file of its own.
    workloads: Vec<(PathBuf, &'static [&'static str])>,
}

impl Fixtures {
    fn new() -> Fixtures {
        let cwd = tempfile::tempdir().unwrap();
        let root = cwd.path().join("fixtures");
        let dir = |name: &str| {
            let d = root.join(name);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        let user = dir("user");
        std::fs::write(user.join("thesis.tex"), "my work").unwrap();
        std::fs::create_dir(user.join("work")).unwrap();
        std::fs::write(user.join("work").join("data.csv"), "1,2,3").unwrap();
        let corrupt = dir("corrupt");
        std::fs::write(
            corrupt.join("results.sqlite"),
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        let empty = dir("empty");
        std::fs::write(empty.join("results.sqlite"), b"").unwrap();
        let foreign = dir("foreign");
        let conn = rusqlite::Connection::open(foreign.join("results.sqlite")).unwrap();
        conn.execute_batch("CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('la');").unwrap();
        drop(conn);
        let campaign = dir("campaign");
        std::fs::write(campaign.join("results.sqlite"), b"").unwrap();
        let file = root.join("a-file");
        std::fs::write(&file, "not a directory").unwrap();
        let no_artifacts = dir("no-artifacts");
        let studies = dir("studies");
        let study = |name: &str, text: &str| {
            std::fs::write(studies.join(name), text).unwrap();
            studies.join(name)
        };
        let typo = study("typo.toml", "workloads = [\"hello\"]\nrepz = 4\n");
        let zero = study("zero.toml", "runtimes = [\"native\"]\nreps = 0\n");
        let wrong_variant = study("variant.toml", "runtimes = [\"native:glibc\"]\n");
        std::fs::write(studies.join("mine.wasm"), b"\0asm").unwrap();
        let probe = "[workload.mine.probe]\n";
        let workloads = vec![
            (study("w-none.toml", &format!("[workload.mine]\n{probe}")), &["w-none.toml, line 1", "no artifact"][..]),
            (
                study("w-missing.toml", &format!("[workload.mine]\nbinary = \"nope\"\n{probe}")),
                &["w-missing.toml, line 2", "workload.mine.binary", "cannot read", "relative to the campaign file"][..],
            ),
            (
                study("w-key.toml", &format!("[workload.mine]\ncomponnet = \"mine.wasm\"\n{probe}")),
                &["w-key.toml", "line 2", "componnet", "unknown field"][..],
            ),
            (
                study("w-builtin.toml", "[workload.hello]\ncomponent = \"mine.wasm\"\n[workload.hello.probe]\n"),
                &["w-builtin.toml", "built-in workload"][..],
            ),
            (
                study("w-regex.toml", &format!("[workload.mine]\ncomponent = \"mine.wasm\"\n{probe}expect_body_regex = \"(\"\n")),
                &["w-regex.toml, line 4", "workload.mine.probe.expect_body_regex", "not a regular expression"][..],
            ),
            (
                study(
                    "w-both.toml",
                    &format!("[workload.mine]\ncomponent = \"mine.wasm\"\n{probe}expect_body = \"a\"\nexpect_body_regex = \"a\"\n"),
                ),
                &["w-both.toml", "not both"][..],
            ),
            (
                study("w-abi.toml", "[workload.mine]\nwasi_p1 = { wasmtime = \"mine.wasm\" }\n[workload.mine.probe]\n"),
                &["w-abi.toml", "unknown socket ABI", "wasmedge, wamr"][..],
            ),
            (
                study("w-path.toml", &format!("[workload.mine]\ncomponent = \"mine.wasm\"\n{probe}path = \"no-slash\"\n")),
                &["w-path.toml, line 4", "workload.mine.probe.path", "starting with `/`"][..],
            ),
            (
                study("w-unlisted.toml", &format!("workloads = [\"theirs\"]\n[workload.mine]\ncomponent = \"mine.wasm\"\n{probe}")),
                &["theirs", "hello, cpu, echo, kv, mine"][..],
            ),
        ];
        Fixtures {
            cwd,
            user,
            corrupt,
            empty,
            foreign,
            campaign,
            file,
            no_artifacts,
            typo,
            zero,
            wrong_variant,
            workloads,
        }
    }

    fn p(path: &Path) -> String {
        path.display().to_string()
    }
}

struct Case {
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    code: i32,
    /// Each must appear in stderr (the message names the input and what to do).
    says: Vec<&'static str>,
}

fn case(args: &[&str], says: &[&'static str]) -> Case {
    Case { args: args.iter().map(|s| s.to_string()).collect(), env: Vec::new(), code: 2, says: says.to_vec() }
}

/// A `run` that would start a real (small, quick) campaign if its bad input were let through.
fn run(extra: &[&str], says: &[&'static str]) -> Case {
    let mut args = vec!["run", "--no-build", "--runtimes", "native", "--workloads", "hello", "--reps", "1"];
    args.extend_from_slice(&["--metrics", "cold_start"]);
    // A later occurrence of an option wins in clap only where it is allowed twice; ours are
    // not, so the base options are left out where a case sets them itself.
    let set: Vec<&str> = extra.iter().filter(|a| a.starts_with("--")).copied().collect();
    let mut base = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if set.contains(&args[i]) && i + 1 < args.len() && !args[i + 1].starts_with("--") {
            i += 2;
            continue;
        }
        base.push(args[i]);
        i += 1;
    }
    base.extend_from_slice(extra);
    case(&base, says)
}

fn cases(f: &Fixtures) -> Vec<Case> {
    let p = Fixtures::p;
    let (user, corrupt, empty, foreign, campaign, file) =
        (p(&f.user), p(&f.corrupt), p(&f.empty), p(&f.foreign), p(&f.campaign), p(&f.file));
    let (typo, zero, wrong_variant) = (p(&f.typo), p(&f.zero), p(&f.wrong_variant));
    let missing = p(&f.cwd.path().join("no-such-dir"));
    let workload_files: Vec<String> = f.workloads.iter().map(|(path, _)| p(path)).collect();
    let fleet = p(&f.cwd.path().join("fleet"));
    let source = |dir: &str, host: &str| format!("{dir}={host}");
    let (m_missing, m_user, m_corrupt, m_unsafe) =
        (source(&missing, "h"), source(&user, "h"), source(&corrupt, "h"), source(&campaign, "a/b"));
    let mut c = vec![
        // Numbers: 0, negative, NaN, infinite, huge, not a number.
        run(&["--reps", "0"], &["--reps", "at least 1"]),
        run(&["--reps", "-1"], &["--reps"]),
        run(&["--reps", "ten"], &["--reps", "ten"]),
        run(&["--reps", "99999999999999999999"], &["--reps", "99999999999999999999"]),
        run(&["--reps", "NaN"], &["--reps", "NaN"]),
        run(&["--precision", "five"], &["--precision", "five", "5%"]),
        run(&["--precision", "0%"], &["--precision", "between 0% and 100%"]),
        run(&["--precision", "NaN"], &["--precision", "NaN"]),
        run(&["--budget", "10 parsecs"], &["--budget", "10 parsecs", "10m"]),
        run(&["--budget", "0m"], &["--budget", "positive"]),
        run(&["--reps", "8", "--max-reps", "5", "--precision", "5%"], &["--max-reps 5 is below --reps 8"]),
        run(&["--requests", "0"], &["--requests", "at least 1"]),
        run(&["--requests", "-5"], &["--requests"]),
        run(&["--warm-starts", "-1"], &["--warm-starts"]),
        run(&["--seed", "-1"], &["--seed"]),
        run(&["--seed", "1e3"], &["--seed", "1e3"]),
        run(&["--seed", "18446744073709551615"], &["--seed", "at most 9223372036854775807"]),
        run(&["--connections", "0"], &["--connections", "at least 1"]),
        run(&["--load-duration-ms", "0"], &["--load-duration-ms", "at least 1"]),
        run(&["--slo-p99-ms", "NaN"], &["--slo-p99-ms", "positive"]),
        run(&["--slo-p99-ms", "inf"], &["--slo-p99-ms", "positive"]),
        run(&["--slo-p99-ms", "-1"], &["--slo-p99-ms"]),
        run(&["--slo-p99-ms", "0"], &["--slo-p99-ms", "positive"]),
        run(&["--slo-p99-ms", "1e400"], &["--slo-p99-ms", "positive"]),
        run(&["--scaling-max", "0"], &["--scaling-max", "at least 1"]),
        run(&["--density-max", "0"], &["--density-max", "at least 1"]),
        run(&["--memory-budget-mib", "0"], &["--memory-budget-mib", "at least 1"]),
        run(&["--settle-max-ms", "-1"], &["--settle-max-ms"]),
        run(&["--ready-timeout-ms", "0"], &["--ready-timeout-ms", "positive"]),
        // Names: unknown, empty, duplicated.
        run(&["--runtimes", "wasmtimee"], &["wasmtimee", "known runtimes are"]),
        run(&["--runtimes", ","], &["--runtimes names nothing"]),
        run(&["--runtimes", "native,native"], &["--runtimes", "\"native\" twice"]),
        run(&["--workloads", "helo"], &["helo", "hello, cpu, echo, kv", "[workload.NAME]"]),
        run(&["--workloads", ""], &["--workloads names nothing"]),
        run(&["--workloads", "hello,kv,hello"], &["--workloads", "\"hello\" twice"]),
        run(&["--metrics", "latencyy"], &["latencyy", "cold_start"]),
        run(&["--metrics", " , "], &["--metrics names nothing"]),
        run(&["--metrics", "cold_start,cold_start"], &["--metrics", "twice"]),
        run(&["--firewall", "wall"], &["wall"]),
        run(&["--firewall", "rules-7"], &["rules-7"]),
        run(&["--firewall", "off,off"], &["--firewall", "twice"]),
        run(&["--cpus", "5-9/10-12"], &["--cpus"]),
        run(&["--cpus", "bananas"], &["bananas"]),
        run(&["--cpus", "0/0"], &["--cpus"]),
        run(&["--runtimes", "native:glibc"], &["native has no variant \"glibc\"", "static-musl"]),
        run(&["--runtimes", "native,native:static-musl"], &["--runtimes", "both native"]),
        run(&["--baseline", "nativ"], &["--baseline", "\"nativ\" is not a runtime", "wasmtime-embedded"]),
        run(&["--baseline", "docker"], &["--baseline", "not among the runtimes measured", "native"]),
        // Campaign files: the file, line and key; a flag given beside the file overrides it.
        run(&["--campaign", &typo], &["typo.toml", "line 2", "repz", "unknown field"]),
        case(&["run", "--no-build", "--campaign", &zero], &["`reps` in", "zero.toml", "at least 1"]),
        case(&["run", "--no-build", "--campaign", &wrong_variant], &["`runtimes` in", "variant.toml", "no variant"]),
        run(&["--campaign", &missing], &["reading the campaign file", "no-such-dir"]),
        case(&["run", "--resume", &campaign, "--campaign", &zero], &["--campaign", "--resume"]),
        // Paths.
        run(&["--out", &file], &["not a directory"]),
        run(&["--out", &user], &["holds files but no campaign"]),
        run(&["--out", &campaign], &["already holds a campaign", "--resume"]),
        run(&["--firecracker-bin", &missing], &["--firecracker-bin", "not an executable"]),
        run(&["--firecracker-bin", &file], &["--firecracker-bin", "not an executable"]),
        run(&["--vm-kernel", &missing], &["--vm-kernel", "no such file"]),
        // Resume: missing, not a campaign, conflicting flags.
        case(&["run", "--resume", &missing], &["no-such-dir", "results.sqlite"]),
        case(&["run", "--resume", &user], &["results.sqlite", "edgebench run"]),
        case(&["run", "--resume", &corrupt], &["not an edgebench results file"]),
        case(&["run", "--resume", &empty], &["not an edgebench results file"]),
        case(&["run", "--resume", &foreign], &["not an edgebench results file"]),
        case(&["run", "--resume", &campaign, "--reps", "3"], &["--reps", "--resume"]),
        case(&["run", "--resume", &campaign, "--seed", "3"], &["--seed"]),
        case(&["run", "--resume", &campaign, "--firewall", "host"], &["--firewall"]),
        case(&["run", "--allow-changed-artifacts"], &["--resume"]),
        // A remote target: the URL, and what is not run there (refused before connecting).
        run(&["--target", "http://edge-1"], &["--target", "only ssh://", "ssh://[user@]host[:port]"]),
        run(&["--target", "ssh://edge-1:99999"], &["--target", "port", "ssh://[user@]host[:port]"]),
        run(&["--target", "ssh://@edge-1"], &["--target", "user"]),
        run(&["--target", "ssh://127.0.0.1", "--firewall", "host,rules-7"], &["rules-7", "valid profiles"]),
        run(&["--target", "ssh://127.0.0.1", "--metrics", "scaling"], &["scaling", "remote target"]),
        run(&["--ssh-config", "/dev/null"], &["--ssh-config", "--target"]),
        case(&["run", "--frobnicate"], &["--frobnicate"]),
        case(&[], &["Usage"]),
        case(&["benchmark"], &["benchmark"]),
        // report and compare: missing, not a campaign, corrupt, empty, foreign.
        case(&["report", &missing], &["no-such-dir"]),
        case(&["report", &user], &["results.sqlite", "edgebench run"]),
        case(&["report", &corrupt], &["corrupt", "not an edgebench results file"]),
        case(&["report", &empty], &["not an edgebench results file"]),
        case(&["report", &foreign], &["foreign", "not an edgebench results file"]),
        case(&["report", &file], &["a-file"]),
        case(&["compare", &missing, &user], &["no-such-dir", "not a directory"]),
        case(&["compare", &corrupt, &foreign], &["not an edgebench results file"]),
        case(&["compare", &user], &["<B>"]),
        // merge: no source, a source that is not a campaign, an unsafe host name, an --out in use.
        case(&["merge", "--out", &fleet], &["<SOURCE>"]),
        case(&["merge", &campaign], &["--out"]),
        case(&["merge", &m_missing, "--out", &fleet], &["no-such-dir", "not a directory", "PATH=HOST"]),
        case(&["merge", &m_user, "--out", &fleet], &["results.sqlite", "edgebench run"]),
        case(&["merge", &m_corrupt, "--out", &fleet], &["not an edgebench results file"]),
        case(&["merge", &m_unsafe, "--out", &fleet], &["\"a/b\"", "not a safe directory name", "PATH=NAME"]),
        case(&["merge", &m_user, "--out", &user], &["exists and is not empty"]),
        // conformance: a name it cannot check is not a pass.
        case(&["conformance", "--runtimes", "wasmtimee"], &["wasmtimee", "known runtimes are"]),
        case(&["conformance", "--runtimes", ","], &["--runtimes names no runtime"]),
        // build --target: the architectures it cross-builds for, named.
        case(&["build", "--target", "armv7"], &["armv7", "valid targets are aarch64 (or aarch64-unknown-linux-musl)"]),
        case(
            &["build", "--target", "aarch64-unknown-linux-gnu"],
            &["aarch64-unknown-linux-gnu", "valid targets are aarch64"],
        ),
    ];
    // Missing artifacts, with --no-build.
    let mut no_artifacts = run(&[], &["is missing", "edgebench build"]);
    no_artifacts.env.push(("EDGEBENCH_SOURCE", p(&f.no_artifacts)));
    c.push(no_artifacts);
    // User workloads declared wrong: named with the file and key before anything runs.
    for (file, (_, says)) in workload_files.iter().zip(&f.workloads) {
        c.push(case(&["run", "--no-build", "--campaign", file], says));
    }
    c
}

#[test]
fn every_bad_input_is_named_with_what_to_do_exit_2_and_nothing_is_touched() {
    let f = Fixtures::new();
    let before = common::snapshot(f.cwd.path());
    let cases = cases(&f);
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for c in &cases {
        let out = Command::new(env!("CARGO_BIN_EXE_edgebench"))
            .args(&c.args)
            .envs(c.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("RUST_BACKTRACE")
            .current_dir(f.cwd.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code().unwrap_or(-1);
        let missing: Vec<_> = c.says.iter().filter(|s| !stderr.contains(**s)).collect();
        if code != c.code || !missing.is_empty() || stderr.contains("panicked") {
            wrong.push(format!("{:?}: exit {code} (want {}), missing {missing:?} in:\n{stderr}", c.args, c.code));
        }
        let after = common::snapshot(f.cwd.path());
        assert_eq!(before, after, "{:?} created, changed or deleted files", c.args);
    }
    eprintln!("{} bad inputs checked", cases.len());
    assert!(wrong.is_empty(), "{} of {} cases wrong:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

/// `compare` exits 0 when nothing changed and 3 when a cell changed (B is a
/// copy of a real campaign whose cold starts under one firewall profile are
/// edited to 100× their value (far beyond the spread between trials, so that the
/// ranks separate fully however noisy the host): compare's verdict is under test here, not a
/// runtime), and compares each profile's cells with the same profile's.
#[test]
fn compare_exits_0_without_changes_and_3_with_them_profile_by_profile() {
    common::artifacts();
    let firewall = match edgebench::network::available() {
        Ok(_) => "off,host",
        Err(why) => {
            common::skip("nftables", &format!("compare is checked without firewall profiles: {why}"));
            "off"
        }
    };
    let edited_profile = firewall.rsplit(',').next().unwrap();
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    let edgebench = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_edgebench")).args(args).env_remove("RUST_BACKTRACE").output().unwrap()
    };
    let out = edgebench(&[
        "run",
        "--no-build",
        "--runtimes",
        "native",
        "--workloads",
        "hello",
        "--metrics",
        "cold_start",
        "--reps",
        "6",
        "--no-warmup",
        "--settle-max-ms",
        "50",
        "--seed",
        "7",
        "--firewall",
        firewall,
        "--out",
        a.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let copy = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let conn = rusqlite::Connection::open(a.join("results.sqlite")).unwrap();
        conn.execute("VACUUM INTO ?1", [dir.join("results.sqlite").to_str().unwrap()]).unwrap();
        dir
    };
    let same = copy("same");
    let unchanged = edgebench(&["compare", a.to_str().unwrap(), same.to_str().unwrap()]);
    assert_eq!(unchanged.status.code(), Some(0), "{}", String::from_utf8_lossy(&unchanged.stderr));

    let b = copy("b");
    let edited = rusqlite::Connection::open(b.join("results.sqlite")).unwrap();
    edited
        .execute(
            "UPDATE samples SET value = value * 100 WHERE metric = 'cold_start' AND firewall = ?1",
            [edited_profile],
        )
        .unwrap();
    drop(edited);
    let changed = edgebench(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(changed.status.code(), Some(3), "{stdout}\n{}", String::from_utf8_lossy(&changed.stderr));
    assert!(stdout.contains("CHANGED: higher"), "{stdout}");
    assert!(String::from_utf8_lossy(&changed.stderr).contains("changed significantly"));

    let json = edgebench(&["compare", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert_eq!(json.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("compare --json prints JSON");
    assert_eq!(
        v,
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(b.join("compare.json")).unwrap()).unwrap()
    );
    let rows = v["comparison"]["rows"].as_array().unwrap();
    let cold: Vec<_> = rows.iter().filter(|r| r["metric"] == "cold_start").collect();
    assert_eq!(cold.len(), firewall.split(',').count(), "one cold-start row per profile: {cold:?}");
    for r in cold {
        let want = if r["firewall"] == edited_profile { "changed" } else { "not_significant" };
        assert_eq!(r["verdict"], want, "{r}");
    }
}
