//! Labels on everything the backend creates, so that it can be found again:
//! `edgebench=1`, `edgebench.campaign=<id>`, and on containers the process
//! that owns them (a leftover is a container whose owner is gone).

use std::collections::HashMap;

pub const MARK: &str = "edgebench";
pub const CAMPAIGN: &str = "edgebench.campaign";
pub const OWNER: &str = "edgebench.owner";

pub fn for_campaign(campaign: &str) -> HashMap<String, String> {
    HashMap::from([(MARK.to_string(), "1".to_string()), (CAMPAIGN.to_string(), campaign.to_string())])
}

/// Labels of a container made by this process.
pub fn for_container(campaign: &str) -> HashMap<String, String> {
    let mut labels = for_campaign(campaign);
    labels.insert(OWNER.to_string(), owner_of(std::process::id()).unwrap_or_default());
    labels
}

/// An API filter: everything edgebench made.
pub fn marked_filter() -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{MARK}=1")])])
}

/// An API filter: everything one campaign made.
pub fn campaign_filter(campaign: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{CAMPAIGN}={campaign}")])])
}

/// `pid:start time` (start time tells a pid reused by another process apart).
fn owner_of(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces); starttime is field 22.
    let start = stat[stat.rfind(')')? + 2..].split_whitespace().nth(19)?.to_string();
    Some(format!("{pid}:{start}"))
}

/// Whether the process that made a container (its owner label) still runs.
pub fn owner_alive(owner: Option<&str>) -> bool {
    let Some((pid, _)) = owner.and_then(|o| o.split_once(':')) else { return false };
    pid.parse::<u32>().ok().and_then(owner_of).as_deref() == owner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_owns_its_containers_and_dead_ones_do_not() {
        let labels = for_container("c1");
        assert!(owner_alive(labels.get(OWNER).map(String::as_str)));
        assert_eq!(labels[CAMPAIGN], "c1");
        let me = std::process::id();
        assert!(!owner_alive(Some(&format!("{me}:1"))), "same pid, other start time");
        assert!(!owner_alive(None));
        assert!(!owner_alive(Some("garbage")));
    }
}
