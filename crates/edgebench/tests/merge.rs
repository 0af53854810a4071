//! `edgebench merge`: two real tiny campaigns (native, hello, cold start and
//! latency, 2 trials each) merged as two hosts. Both ran on this machine:
//! they are told apart only by the names given on the command line (or,
//! for `compare`, by a `host_label` written into a copy's environment);
//! no sample is made up. Nothing here asserts on speed.

mod common;

use common::{edgebench, run_campaign, small_options};
use edgebench::campaign::Metric;
use edgebench::Workload;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

/// A real campaign of native × hello: cold starts and latency, 2 trials.
fn tiny_campaign(dir: &Path, seed: u64) -> String {
    let mut options = small_options(&["native"], &[Workload::HELLO], dir);
    options.metrics = vec![Metric::ColdStart, Metric::LatencyKeepalive, Metric::LatencyNewconn];
    options.reps = 2;
    options.seed = seed;
    let (_, samples) = run_campaign(options);
    assert!(samples.iter().any(|s| s.ok && s.metric == "cold_start"), "a real cold start was measured");
    campaign_id(dir)
}

fn campaign_id(dir: &Path) -> String {
    let conn = Connection::open(dir.join("results.sqlite")).unwrap();
    conn.query_row("SELECT id FROM campaigns", [], |r| r.get(0)).unwrap()
}

/// Rows of `table` per campaign in the results file of `dir`.
fn rows_by_campaign(dir: &Path, table: &str) -> BTreeMap<String, i64> {
    let conn = Connection::open(dir.join("results.sqlite")).unwrap();
    let column = if table == "campaigns" { "id" } else { "campaign" };
    let mut stmt = conn.prepare(&format!("SELECT {column}, count(*) FROM {table} GROUP BY {column}")).unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The binary, whatever its exit code.
fn edgebench_any(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgebench"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// A copy of the campaign in `from` whose environment records `host_label`:
/// the same samples, said to come from another host.
fn labelled_copy(from: &Path, to: &Path, label: &str) {
    std::fs::create_dir(to).unwrap();
    let conn = Connection::open(from.join("results.sqlite")).unwrap();
    conn.execute("VACUUM INTO ?1", [s(&to.join("results.sqlite"))]).unwrap();
    let copy = Connection::open(to.join("results.sqlite")).unwrap();
    copy.execute("UPDATE campaigns SET environment = json_set(environment, '$.host_label', ?1)", [label]).unwrap();
}

#[test]
fn two_hosts_merge_into_one_fleet_that_reports_within_and_across_hosts() {
    let root = tempfile::tempdir().unwrap();
    let (a, b, fleet) = (root.path().join("a"), root.path().join("b"), root.path().join("fleet"));
    let (id_a, id_b) = (tiny_campaign(&a, 41), tiny_campaign(&b, 42));
    assert_ne!(id_a, id_b);

    let out = edgebench(
        &["merge", &format!("{}=host-a", s(&a)), &format!("{}=host-b", s(&b)), "--out", s(&fleet)],
        root.path(),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("report.html"));

    // One dataset: every row of both campaigns, sample ids unique, and the host dimension.
    for table in ["campaigns", "runtimes", "samples", "runs", "trials"] {
        let merged = rows_by_campaign(&fleet, table);
        for (dir, id) in [(&a, &id_a), (&b, &id_b)] {
            let source = rows_by_campaign(dir, table);
            assert!(source[id] > 0, "{table} of {id}");
            assert_eq!(merged.get(id), source.get(id), "{table}: every row of campaign {id}");
        }
        assert_eq!(merged.len(), 2, "{table}: both campaigns and nothing else");
    }
    let conn = Connection::open(fleet.join("results.sqlite")).unwrap();
    let (ids, distinct): (i64, i64) = conn
        .query_row("SELECT count(id), count(DISTINCT id) FROM samples", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(ids, distinct);
    let hosts: Vec<(String, String, String)> = conn
        .prepare("SELECT campaign, host, source FROM hosts ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let canonical = |p: &Path| p.canonicalize().unwrap().display().to_string();
    assert_eq!(
        hosts,
        vec![(id_a.clone(), "host-a".into(), canonical(&a)), (id_b.clone(), "host-b".into(), canonical(&b))]
    );
    // The samples of each host, value for value.
    let values = |conn: &Connection, id: &str| -> Vec<Option<f64>> {
        conn.prepare("SELECT value FROM samples WHERE campaign = ?1 ORDER BY id")
            .unwrap()
            .query_map([id], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(values(&conn, &id_a), values(&Connection::open(a.join("results.sqlite")).unwrap(), &id_a));
    drop(conn);

    // Each host: a copy of its campaign and its own report, runtimes compared within it.
    for (host, dir, id) in [("host-a", &a, &id_a), ("host-b", &b, &id_b)] {
        let h = fleet.join("hosts").join(host);
        for file in ["results.sqlite", "campaign.toml", "report.md", "report.html", "summary.csv", "report.json"] {
            assert!(h.join(file).is_file(), "{host}/{file}");
        }
        assert_eq!(read(&h.join("campaign.toml")), read(&dir.join("campaign.toml")));
        assert_eq!(campaign_id(&h), *id);
        assert!(read(&h.join("report.md")).contains(&format!("campaign {id}")));
        assert_eq!(read(&h.join("summary.csv")), read(&dir.join("summary.csv")), "{host}: the same figures as its own");
    }

    // The fleet report: both hosts, their reports, and cross-host ratios said to be across machines.
    let md = read(&fleet.join("report.md"));
    for needle in [
        "host-a",
        "host-b",
        &id_a,
        &id_b,
        "## Hosts",
        "## Within each host",
        "## Same runtime across hosts",
        "hosts/host-a/report.md",
        "hosts/host-b/report.html",
        "across different machines",
        "not a runtime effect alone",
    ] {
        assert!(md.contains(needle), "fleet report.md lacks {needle:?}:\n{md}");
    }
    let across = &md[md.find("## Same runtime across hosts").unwrap()..];
    assert!(across.contains("| hello | native (static-musl) | cold_start | host-a |"), "{across}");
    assert!(across.contains("of host-a |"), "host-b's ratio to host-a:\n{across}");
    let html = read(&fleet.join("report.html"));
    assert!(html.contains("These ratios are across different machines") && html.contains("not a runtime effect alone"));
    assert!(html.contains("href=\"hosts/host-b/report.html\"") && !html.contains("<script"));

    let json: serde_json::Value = serde_json::from_str(&read(&fleet.join("fleet.json"))).unwrap();
    assert_eq!(json["format"], "edgebench-fleet");
    assert_eq!(json["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(json["hosts"][1]["host"], "host-b");
    assert!(json["across_hosts"]["caption"].as_str().unwrap().contains("across different machines"));
    let rows = json["across_hosts"]["rows"].as_array().unwrap();
    let cold = rows.iter().find(|r| r["metric"] == "cold_start").expect("cold start on both hosts");
    assert_eq!(cold["reference_host"], "host-a");
    assert!(cold["hosts"][0]["ratio_to_reference"].is_null());
    let ratio = cold["hosts"][1]["ratio_to_reference"][0].as_f64().unwrap();
    let (ma, mb) = (cold["hosts"][0]["median"].as_f64().unwrap(), cold["hosts"][1]["median"].as_f64().unwrap());
    assert!((ratio - mb / ma).abs() < 1e-9 * ratio, "{ratio} = {mb} / {ma}");

    let csv = read(&fleet.join("summary.csv"));
    assert!(csv.starts_with("host,runtime,variant,workload,metric,"));
    let per_host = |host: &str| csv.lines().filter(|l| l.starts_with(&format!("{host},"))).count();
    let own = |dir: &Path| read(&dir.join("summary.csv")).lines().count() - 1;
    assert_eq!((per_host("host-a"), per_host("host-b")), (own(&a), own(&b)));

    // `report` on the fleet makes all of it again from the fleet's results.sqlite.
    let before = (md.clone(), read(&fleet.join("fleet.json")), read(&fleet.join("hosts/host-b/report.md")));
    for file in ["report.md", "report.html", "fleet.json", "summary.csv", "hosts/host-b/report.md"] {
        std::fs::remove_file(fleet.join(file)).unwrap();
    }
    edgebench(&["report", s(&fleet)], root.path());
    let after =
        (read(&fleet.join("report.md")), read(&fleet.join("fleet.json")), read(&fleet.join("hosts/host-b/report.md")));
    assert_eq!(before, after);
    assert!(fleet.join("report.html").is_file() && fleet.join("summary.csv").is_file());
    let elsewhere = root.path().join("again");
    edgebench(&["report", s(&fleet), "--out", s(&elsewhere)], root.path());
    assert_eq!(read(&elsewhere.join("report.md")), before.0);
    assert!(elsewhere.join("hosts/host-a/report.html").is_file());

    // `compare`: the two host directories ran on this one machine: not across hosts.
    let (host_a, host_b) = (fleet.join("hosts/host-a"), fleet.join("hosts/host-b"));
    let same =
        edgebench_any(&["compare", s(&host_a), s(&host_b), "--out", s(&root.path().join("cmp-same"))], root.path());
    assert!(matches!(same.status.code(), Some(0 | 3)), "{}", String::from_utf8_lossy(&same.stderr));
    assert!(!String::from_utf8_lossy(&same.stdout).contains("ACROSS HOSTS"));
    assert!(!read(&root.path().join("cmp-same/compare.md")).contains("ACROSS HOSTS"));
    // A copy labelled as another host: said at the top of every format.
    let labelled = root.path().join("b-labelled");
    labelled_copy(&b, &labelled, "lab-2");
    let cmp = root.path().join("cmp-across");
    let across = edgebench_any(&["compare", s(&a), s(&labelled), "--out", s(&cmp)], root.path());
    let stdout = String::from_utf8_lossy(&across.stdout);
    assert!(stdout.starts_with("ACROSS HOSTS"), "{stdout}");
    assert!(stdout.contains("B lab-2") && stdout.contains("mixes host effects"), "{stdout}");
    let compare_md = read(&cmp.join("compare.md"));
    assert!(compare_md.lines().nth(2).is_some_and(|l| l.contains("ACROSS HOSTS")), "{compare_md}");
    assert!(read(&cmp.join("compare.html")).contains("<p class=\"flag\">ACROSS HOSTS"));
    let compare_json: serde_json::Value = serde_json::from_str(&read(&cmp.join("compare.json"))).unwrap();
    assert_eq!(compare_json["across_hosts"], true);
    assert!(compare_json["across_hosts_warning"].as_str().unwrap().contains("lab-2"));

    // Without names, each campaign is its recorded host: this machine's hostname, and the label.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    if edgebench::store::check_host_name(&hostname).is_ok() && hostname != "lab-2" {
        let named = root.path().join("fleet-named");
        edgebench(&["merge", s(&a), s(&labelled), "--out", s(&named)], root.path());
        assert!(named.join("hosts").join(&hostname).join("report.html").is_file());
        assert!(named.join("hosts/lab-2/report.html").is_file());
    } else {
        eprintln!("skipped: this machine's hostname {hostname:?} is no directory name to merge under");
    }
}

#[test]
fn every_bad_merge_is_refused_with_what_to_do_exit_2_and_nothing_written() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    tiny_campaign(&a, 43);
    tiny_campaign(&b, 44);
    let fleet = root.path().join("fleet");
    edgebench(&["merge", &format!("{}=one", s(&a)), &format!("{}=two", s(&b)), "--out", s(&fleet)], root.path());
    let user = root.path().join("user");
    std::fs::create_dir(&user).unwrap();
    std::fs::write(user.join("notes.txt"), "mine").unwrap();
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let file = root.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let out = root.path().join("new-fleet");
    let (a, b) = (s(&a), s(&b));
    let named = |dir: &str, host: &str| format!("{dir}={host}");
    let o = s(&out);
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (vec!["--out".into(), o.into()], vec!["<SOURCE>"]),
        (
            vec![named(a, "x"), "--out".into(), s(&user).into()],
            vec!["exists and is not empty", "new or empty directory"],
        ),
        (vec![named(a, "x"), "--out".into(), s(&file).into()], vec!["not a directory", "new or empty directory"]),
        (
            vec![named(s(&root.path().join("missing")), "x"), "--out".into(), o.into()],
            vec!["missing", "not a directory", "PATH=HOST"],
        ),
        (vec![named(s(&file), "x"), "--out".into(), o.into()], vec!["a-file", "not a directory"]),
        (vec![named(s(&empty), "x"), "--out".into(), o.into()], vec!["empty", "results.sqlite", "edgebench run"]),
        (vec![named(s(&fleet), "x"), "--out".into(), o.into()], vec!["itself a merged fleet", "hosts"]),
        (
            vec![named(a, "../evil"), "--out".into(), o.into()],
            vec!["\"../evil\"", "not a safe directory name", "PATH=NAME"],
        ),
        (vec![named(a, ""), "--out".into(), o.into()], vec!["not a safe directory name", "PATH=NAME"]),
        (vec![named(a, "x"), named(a, "y"), "--out".into(), o.into()], vec!["given twice", "each campaign once"]),
        (
            vec![a.into(), b.into(), "--out".into(), o.into()],
            vec!["both have host name", "give each a name: PATH=NAME"],
        ),
        (vec![named(a, "h"), named(b, "h"), "--out".into(), o.into()], vec!["\"h\"", "give each a name: PATH=NAME"]),
    ];
    let before = common::snapshot(root.path());
    let mut wrong = Vec::new();
    for (args, says) in &cases {
        let mut all = vec!["merge"];
        all.extend(args.iter().map(String::as_str));
        let out = edgebench_any(&all, root.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let missing: Vec<_> = says.iter().filter(|s| !stderr.contains(**s)).collect();
        if out.status.code() != Some(2) || !missing.is_empty() || stderr.contains("panicked") {
            wrong.push(format!("{all:?}: exit {:?}, missing {missing:?} in:\n{stderr}", out.status.code()));
        }
        assert_eq!(before, common::snapshot(root.path()), "{all:?} created, changed or deleted files");
    }
    // A fleet is not one campaign: `compare` says which directories to give, `run --resume` refuses.
    let out = edgebench_any(&["run", "--no-build", "--resume", s(&fleet)], root.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) || !stderr.contains("merged fleet") || !stderr.contains("merge again") {
        wrong.push(format!("run --resume of a fleet: exit {:?}:\n{stderr}", out.status.code()));
    }
    assert_eq!(before, common::snapshot(root.path()), "run --resume of a fleet changed files");
    let out = edgebench_any(&["compare", s(&fleet), s(&fleet.join("hosts/one"))], root.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) || !stderr.contains("merged fleet") || !stderr.contains("hosts") {
        wrong.push(format!("compare of a fleet: exit {:?}:\n{stderr}", out.status.code()));
    }
    assert!(wrong.is_empty(), "{} of {} cases wrong:\n{}", wrong.len(), cases.len() + 2, wrong.join("\n"));
}
