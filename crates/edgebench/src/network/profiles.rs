//! Firewall profiles: each a named nftables ruleset, built as nftables JSON
//! with serde_json from the parsed profile (no rule text is ever made from
//! user input), applied as one atomic transaction.
//!
//! - `off`: no table at all.
//! - `host`: a typical stateful host firewall: input policy drop; accept
//!   established/related and loopback; accept the service ports; ICMP
//!   accepted at most 10/s.
//! - `rules-N`: `host` with N non-matching rules (`ip saddr A drop` for N
//!   addresses of 198.18.0.0/15, the benchmarking range) evaluated before the
//!   service accept: the linear case.
//! - `set-N`: the same N addresses as one nftables set looked up by one rule.
//! - `-notrack` suffix: the same rules without connection tracking (a raw
//!   `notrack` chain; no `ct state` rule), so every packet, not only a
//!   connection's first, walks the whole chain.

use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::net::Ipv4Addr;

/// The rule counts of `rules-N` and `set-N`.
pub const SIZES: [usize; 4] = [10, 100, 1000, 10000];

/// First address of the non-matching rules (RFC 2544 benchmarking range,
/// never a source of our traffic).
const BLOCKLIST_BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Off,
    Host,
    Rules(usize),
    Set(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Profile {
    pub kind: Kind,
    /// Connection tracking on (the default) or off (`-notrack`).
    pub conntrack: bool,
}

/// Where the profile's rules are placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Inside the project's server namespace: the input chain's policy is
    /// drop, as on a real host.
    Namespace,
    /// In the host namespace, for traffic on loopback (e.g. Docker's published
    /// ports): only packets to our service ports enter the profile's chain;
    /// everything else of the host passes our table untouched. No loopback
    /// accept (the service traffic itself comes in on `lo`) and no ICMP rule
    /// (ICMP has no port to match narrowly).
    HostLoopback,
    /// In a micro-VM's own namespace, which routes between the client's veth
    /// and the guest's tap: the forward chain's policy is drop, as on a host
    /// in front of the guest; what the guest sends (in on `guest_if`) passes,
    /// as a host's own output would.
    Forward { guest_if: &'static str },
    /// In the ruleset of a host the client reaches over a real interface (a
    /// remote target): only packets in on `ifname` to our service ports
    /// enter the profile's chain, at prerouting (priority -150, after
    /// conntrack and before Docker's DNAT), so a container's published port
    /// is behind the same rules as a process's. Everything else of the host
    /// passes our table untouched; no ICMP rule, as on loopback.
    HostInterface { ifname: String },
}

/// Where and for which ports a profile is built.
#[derive(Clone, Debug)]
pub struct Target {
    /// Our table (family `inet`), e.g. `eb-1a2b3c`.
    pub table: String,
    pub scope: Scope,
    /// The service ports, inclusive.
    pub ports: (u16, u16),
}

impl Profile {
    pub const OFF: Profile = Profile { kind: Kind::Off, conntrack: true };

    pub fn parse(name: &str) -> Result<Profile> {
        let (base, conntrack) = match name.strip_suffix("-notrack") {
            Some(base) => (base, false),
            None => (name, true),
        };
        let kind = match base {
            "off" if conntrack => Some(Kind::Off),
            "host" => Some(Kind::Host),
            _ => base
                .split_once('-')
                .and_then(|(what, n)| Some((what, n.parse::<usize>().ok().filter(|n| SIZES.contains(n))?)))
                .and_then(|(what, n)| match what {
                    "rules" => Some(Kind::Rules(n)),
                    "set" => Some(Kind::Set(n)),
                    _ => None,
                }),
        };
        match kind {
            Some(kind) => Ok(Profile { kind, conntrack }),
            None => bail!("unknown firewall profile {name:?}: valid profiles are {}", Profile::all_names().join(", ")),
        }
    }

    /// Parses `--firewall P1,P2,...` (order kept, duplicates dropped).
    pub fn parse_list(list: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let canonical = Profile::parse(name)?.name();
            if !out.contains(&canonical) {
                out.push(canonical);
            }
        }
        if out.is_empty() {
            bail!("--firewall names no profile: valid profiles are {}", Profile::all_names().join(", "));
        }
        Ok(out)
    }

    pub fn all_names() -> Vec<String> {
        let mut kinds = vec![Kind::Host];
        kinds.extend(SIZES.iter().map(|&n| Kind::Rules(n)));
        kinds.extend(SIZES.iter().map(|&n| Kind::Set(n)));
        let mut names = vec!["off".to_string()];
        for conntrack in [true, false] {
            names.extend(kinds.iter().map(|&kind| Profile { kind, conntrack }.name()));
        }
        names
    }

    pub fn name(&self) -> String {
        let base = match self.kind {
            Kind::Off => return "off".into(),
            Kind::Host => "host".to_string(),
            Kind::Rules(n) => format!("rules-{n}"),
            Kind::Set(n) => format!("set-{n}"),
        };
        if self.conntrack {
            base
        } else {
            format!("{base}-notrack")
        }
    }

    /// The non-matching entries of `rules-N` / `set-N`.
    fn blocklist(n: usize) -> Vec<String> {
        let base = u32::from(BLOCKLIST_BASE);
        (1..=n as u32).map(|i| Ipv4Addr::from(base + i).to_string()).collect()
    }

    /// Rules evaluated before the service accept, besides the blocklist.
    pub fn rule_count(&self) -> usize {
        match self.kind {
            Kind::Rules(n) => n,
            Kind::Set(_) => 1,
            _ => 0,
        }
    }

    /// The nftables JSON batch that replaces our table with this profile in
    /// one transaction (for `off`: that removes our table).
    pub fn batch(&self, target: &Target) -> Value {
        let mut commands = replace_table(&target.table);
        if self.kind == Kind::Off {
            commands.pop(); // add + delete: no table left
            return json!({ "nftables": commands });
        }
        let t = &target.table;
        let ports = json!({ "range": [target.ports.0, target.ports.1] });
        let rule = |chain: &str, expr: Value| json!({"add": {"rule": {"family": "inet", "table": t, "chain": chain, "expr": expr}}});
        let chain = |name: &str, hook: Option<(&str, i32, &str)>| {
            let mut c = json!({"family": "inet", "table": t, "name": name});
            if let Some((hook, prio, policy)) = hook {
                c["type"] = "filter".into();
                c["hook"] = hook.into();
                c["prio"] = prio.into();
                c["policy"] = policy.into();
            }
            json!({"add": {"chain": c}})
        };
        let on_lo = |dir: &str| json!({"match": {"op": "==", "left": {"meta": {"key": dir}}, "right": "lo"}});
        let dport =
            json!({"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": ports}});
        let sport =
            json!({"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "sport"}}, "right": ports}});
        let saddr = |right: Value| json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": right}});

        if let Kind::Set(n) = self.kind {
            commands.push(json!({"add": {"set": {
                "family": "inet", "table": t, "name": "blocklist", "type": "ipv4_addr", "elem": Profile::blocklist(n)
            }}}));
        }
        // The chain the profile's verdicts live in.
        let on_if =
            |dir: &str, ifname: &str| json!({"match": {"op": "==", "left": {"meta": {"key": dir}}, "right": ifname}});
        let profile_chain = match &target.scope {
            Scope::Namespace => {
                commands.push(chain("input", Some(("input", 0, "drop"))));
                "input"
            }
            Scope::HostLoopback => {
                commands.push(chain("input", Some(("input", 0, "accept"))));
                commands.push(chain("profile", None));
                commands.push(rule("input", json!([on_lo("iif"), dport.clone(), {"jump": {"target": "profile"}}])));
                "profile"
            }
            Scope::HostInterface { ifname } => {
                commands.push(chain("prerouting", Some(("prerouting", -150, "accept"))));
                commands.push(chain("profile", None));
                commands.push(rule(
                    "prerouting",
                    json!([on_if("iifname", ifname), dport.clone(), {"jump": {"target": "profile"}}]),
                ));
                "profile"
            }
            Scope::Forward { guest_if } => {
                commands.push(chain("forward", Some(("forward", 0, "drop"))));
                let from_guest =
                    json!({"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": guest_if}});
                commands.push(rule("forward", json!([from_guest, {"accept": null}])));
                "forward"
            }
        };
        if !self.conntrack {
            // Raw priority: before conntrack would see the packet.
            commands.push(chain("notrack_pre", Some(("prerouting", -300, "accept"))));
            commands.push(chain("notrack_out", Some(("output", -300, "accept"))));
            match &target.scope {
                Scope::Namespace | Scope::Forward { .. } => {
                    commands.push(rule("notrack_pre", json!([{"notrack": null}])));
                    commands.push(rule("notrack_out", json!([{"notrack": null}])));
                }
                Scope::HostLoopback => {
                    for (c, dir) in [("notrack_pre", "iif"), ("notrack_out", "oif")] {
                        for port_match in [&dport, &sport] {
                            commands.push(rule(c, json!([on_lo(dir), port_match, {"notrack": null}])));
                        }
                    }
                }
                Scope::HostInterface { ifname } => {
                    for (c, dir) in [("notrack_pre", "iifname"), ("notrack_out", "oifname")] {
                        for port_match in [&dport, &sport] {
                            commands.push(rule(c, json!([on_if(dir, ifname), port_match, {"notrack": null}])));
                        }
                    }
                }
            }
        } else {
            commands.push(rule(
                profile_chain,
                json!([{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]),
            ));
        }
        if target.scope == Scope::Namespace {
            commands.push(rule(profile_chain, json!([on_lo("iif"), {"accept": null}])));
        }
        match self.kind {
            Kind::Rules(n) => {
                for addr in Profile::blocklist(n) {
                    commands.push(rule(profile_chain, json!([saddr(addr.into()), {"drop": null}])));
                }
            }
            Kind::Set(_) => commands.push(rule(profile_chain, json!([saddr("@blocklist".into()), {"drop": null}]))),
            Kind::Host | Kind::Off => {}
        }
        commands.push(rule(profile_chain, json!([dport, {"accept": null}])));
        match &target.scope {
            Scope::Namespace | Scope::Forward { .. } => {
                for proto in ["icmp", "ipv6-icmp"] {
                    commands.push(rule(
                        profile_chain,
                        json!([
                            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": proto}},
                            {"limit": {"rate": 10, "per": "second"}},
                            {"accept": null}
                        ]),
                    ));
                }
            }
            // The policy of the host's chain stays accept: an explicit drop
            // ends our ports' chain instead.
            Scope::HostLoopback | Scope::HostInterface { .. } => {
                commands.push(rule(profile_chain, json!([{"drop": null}])))
            }
        }
        json!({ "nftables": commands })
    }
}

/// `add table` (a no-op if it exists) then `delete table`, then `add table`:
/// the idiom that replaces a table atomically whether or not it exists.
fn replace_table(table: &str) -> Vec<Value> {
    let t = json!({"table": {"family": "inet", "name": table}});
    vec![json!({ "add": t.clone() }), json!({ "delete": t.clone() }), json!({ "add": t })]
}

/// The batch that removes our table if it exists.
pub fn removal(table: &str) -> Value {
    Profile::OFF.batch(&Target { table: table.into(), scope: Scope::Namespace, ports: (0, 0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_list_the_valid_ones() {
        for name in Profile::all_names() {
            assert_eq!(Profile::parse(&name).unwrap().name(), name);
        }
        assert_eq!(Profile::parse("set-1000-notrack").unwrap(), Profile { kind: Kind::Set(1000), conntrack: false });
        for bad in ["rules-7", "rules-", "set-abc", "off-notrack", "fw", "host-nat"] {
            let err = Profile::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("unknown firewall profile {bad:?}")) && err.contains("rules-10000"), "{err}");
        }
        assert_eq!(Profile::parse_list("off, host,off,rules-100").unwrap(), vec!["off", "host", "rules-100"]);
        assert!(Profile::parse_list(" , ").is_err());
    }

    #[test]
    fn batches_hold_the_rules_each_profile_promises() {
        let target = Target { table: "eb-test".into(), scope: Scope::Namespace, ports: (20000, 20003) };
        let count = |p: &str, what: &str| {
            let batch = Profile::parse(p).unwrap().batch(&target);
            batch["nftables"].as_array().unwrap().iter().filter(|c| c["add"].get(what).is_some()).count()
        };
        // host: ct, lo, service port, 2 × ICMP.
        assert_eq!(count("host", "rule"), 5);
        assert_eq!(count("rules-100", "rule"), 105);
        assert_eq!(count("set-100", "rule"), 6);
        assert_eq!(count("set-100", "set"), 1);
        // notrack: no ct rule, one notrack rule per raw chain.
        assert_eq!(count("host-notrack", "rule"), 6);
        assert_eq!(count("host-notrack", "chain"), 3);
        assert_eq!(count("off", "rule") + count("off", "chain"), 0);
        let text = Profile::parse("host-notrack").unwrap().batch(&target).to_string();
        assert!(!text.contains("\"ct\""), "no conntrack expression: {text}");
        let blocklist = Profile::blocklist(10000);
        assert_eq!((blocklist[0].as_str(), blocklist[9999].as_str()), ("198.18.0.1", "198.18.39.16"));
    }

    #[test]
    fn the_host_scope_enters_the_profile_only_for_our_ports() {
        let target = Target { table: "eb-test".into(), scope: Scope::HostLoopback, ports: (20000, 20003) };
        let batch = Profile::parse("host").unwrap().batch(&target);
        let commands = batch["nftables"].as_array().unwrap();
        let input = commands.iter().find(|c| c["add"]["chain"]["name"] == "input").unwrap();
        assert_eq!(input["add"]["chain"]["policy"], "accept", "the host's own traffic is never dropped");
        let jumps: Vec<&Value> = commands.iter().filter(|c| c["add"]["rule"]["chain"] == "input").collect();
        assert_eq!(jumps.len(), 1);
        let expr = jumps[0]["add"]["rule"]["expr"].to_string();
        assert!(expr.contains("20000") && expr.contains("\"jump\"") && expr.contains("\"lo\""), "{expr}");
    }

    #[test]
    fn a_remote_targets_scope_enters_the_profile_only_on_its_interface_before_nat() {
        let scope = Scope::HostInterface { ifname: "eth0".into() };
        let target = Target { table: "eb-test".into(), scope, ports: (20000, 20003) };
        let batch = Profile::parse("rules-10").unwrap().batch(&target);
        let commands = batch["nftables"].as_array().unwrap();
        let hook = commands.iter().find(|c| c["add"]["chain"]["name"] == "prerouting").unwrap();
        assert_eq!(hook["add"]["chain"]["policy"], "accept", "the host's own traffic is never dropped");
        assert_eq!(hook["add"]["chain"]["prio"], -150, "after conntrack (-200), before DNAT (-100)");
        let jumps: Vec<&Value> = commands.iter().filter(|c| c["add"]["rule"]["chain"] == "prerouting").collect();
        assert_eq!(jumps.len(), 1);
        let expr = jumps[0]["add"]["rule"]["expr"].to_string();
        assert!(expr.contains("iifname") && expr.contains("\"eth0\"") && expr.contains("20000"), "{expr}");
        // ct, 10 blocklist drops, the service accept, the final drop; no ICMP rule.
        let in_profile = commands.iter().filter(|c| c["add"]["rule"]["chain"] == "profile").count();
        assert_eq!(in_profile, 13);
        let untracked = Profile::parse("host-notrack").unwrap().batch(&target).to_string();
        assert!(untracked.contains("oifname") && !untracked.contains("\"ct\""), "{untracked}");
    }
}
