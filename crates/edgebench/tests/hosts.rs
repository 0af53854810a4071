//! The test harness's namespace hosts: each answers `ssh` from the controller
//! namespace, in its own network namespace, and nothing of them is left after drop.

mod common;

use common::hosts::{self, NamespaceHosts};
use std::path::Path;
use std::process::Command;

#[test]
fn namespace_hosts_answer_ssh_from_the_controller_and_leave_nothing() {
    if !hosts::available() {
        return;
    }
    let h = NamespaceHosts::start(2).expect("namespace hosts");
    assert_eq!(h.len(), 2);
    assert_ne!(h.host_addr(0), h.host_addr(1));
    let names = [h.controller_netns().to_string(), h.host_netns(0).to_string(), h.host_netns(1).to_string()];
    let pids = [h.sshd_pid(0), h.sshd_pid(1)];
    let dir = h.dir().to_path_buf();
    let listed = String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    for n in &names {
        assert!(listed.lines().any(|l| l.split_whitespace().next() == Some(n.as_str())), "{n} not in {listed}");
    }

    for i in 0..2 {
        let target = format!("root@{}", h.host_addr(i));
        let out = h
            .in_controller(Command::new("ssh").arg("-F").arg(h.ssh_config()).args([&target, "true"]))
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh {target} true: {}", String::from_utf8_lossy(&out.stderr));
        // The session runs inside that host's namespace: its address is there.
        let out = h
            .in_controller(Command::new("ssh").arg("-F").arg(h.ssh_config()).args([&target, "ip", "-br", "-4", "addr"]))
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh {target} ip addr: {}", String::from_utf8_lossy(&out.stderr));
        let addrs = String::from_utf8_lossy(&out.stdout);
        assert!(addrs.contains(&format!("{}/30", h.host_addr(i))), "host {i}'s addresses: {addrs}");
        assert!(!addrs.contains(&format!("{}/30", h.host_addr(1 - i))), "host {i} sees host {}'s: {addrs}", 1 - i);
    }
    // Each host's key was accepted once and recorded in the temp dir's known_hosts.
    let known = std::fs::read_to_string(dir.join("known_hosts")).unwrap();
    assert_eq!(known.lines().count(), 2, "{known}");

    drop(h);
    let listed = String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    for n in &names {
        assert!(!listed.lines().any(|l| l.split_whitespace().next() == Some(n.as_str())), "{n} left: {listed}");
    }
    for pid in pids {
        assert!(pid > 0 && !Path::new(&format!("/proc/{pid}")).exists(), "sshd {pid} left");
    }
    assert!(!dir.exists(), "{} left", dir.display());
    let left = common::children_left();
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn dropped_on_panic_too() {
    if !hosts::available() {
        return;
    }
    let h = NamespaceHosts::start(1).expect("namespace hosts");
    let names = [h.controller_netns().to_string(), h.host_netns(0).to_string()];
    let pid = h.sshd_pid(0);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _hosts = h;
        panic!("a test fails while its hosts run (expected here)");
    }));
    assert!(result.is_err());
    let listed = String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    for n in &names {
        assert!(!listed.lines().any(|l| l.split_whitespace().next() == Some(n.as_str())), "{n} left: {listed}");
    }
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "sshd {pid} left");
}
