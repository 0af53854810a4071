//! `edgebench merge SOURCE... --out DIR`: campaigns run on several hosts,
//! one directory each, into one fleet directory: `DIR/results.sqlite` (every
//! row of every campaign, and table `hosts`), `DIR/hosts/<host>/` (a copy of
//! each host's campaign with its own report) and the fleet report.
//!
//! Every input is checked before anything is written.

use crate::campaign::CAMPAIGN_FILE;
use crate::environment;
use crate::report::fleet::HOSTS_DIR;
use crate::store::{check_host_name, Store, RESULTS_FILE};
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};

/// A source campaign, checked, with the host it is merged as.
#[derive(Debug)]
pub struct Source {
    /// As given on the command line.
    pub arg: String,
    pub dir: PathBuf,
    pub host: String,
    /// Where the host name came from (said when two clash).
    pub named_by: &'static str,
    pub campaign: String,
}

/// `PATH=HOST` → (PATH, Some(HOST)); `PATH` → (PATH, None). A directory whose
/// own name holds `=` is taken whole when it exists and the split one does not.
pub fn split_source(arg: &str) -> (PathBuf, Option<String>) {
    match arg.rsplit_once('=') {
        Some((path, host)) if !Path::new(arg).is_dir() || Path::new(path).is_dir() => {
            (PathBuf::from(path), Some(host.to_string()))
        }
        _ => (PathBuf::from(arg), None),
    }
}

/// Checks one source: a campaign directory holding one campaign (not a
/// fleet), and a safe host name, given or recorded.
fn source(arg: &str) -> Result<Source> {
    let (dir, given) = split_source(arg);
    if let Some(host) = &given {
        if let Err(e) = check_host_name(host) {
            bail!("merge source {arg}: {e:#}: give PATH=NAME with a name such as host-a");
        }
    }
    if !dir.is_dir() {
        bail!(
            "merge source {arg}: {} is not a directory: give campaign directories written by `edgebench run`, each as \
             PATH or PATH=HOST",
            dir.display()
        );
    }
    let store = Store::open_read_only(&dir).with_context(|| format!("merge source {arg}"))?;
    if store.is_fleet()? {
        bail!(
            "merge source {arg}: {} is itself a merged fleet: give the host campaigns it holds ({}) instead",
            dir.display(),
            dir.join(HOSTS_DIR).join("NAME").display()
        );
    }
    let campaign = store.campaign()?.with_context(|| {
        format!(
            "merge source {arg}: {} holds no campaign (its {RESULTS_FILE} is empty: was `edgebench run` stopped before \
             it began?): leave it out",
            dir.display()
        )
    })?;
    if store.campaign_count()? != 1 {
        bail!(
            "merge source {arg}: {} holds several campaigns: give directories written by `edgebench run`",
            dir.display()
        );
    }
    let env = &campaign.environment;
    let (host, named_by) = match given {
        Some(host) => (host, "given as PATH=HOST"),
        None => {
            let named_by = if env["host_label"].is_string() {
                "from its environment's host_label"
            } else if env["target"].is_object() {
                "from the hostname of its remote target"
            } else {
                "from its environment's hostname"
            };
            let host = environment::host_name(env).with_context(|| {
                format!("merge source {arg}: {} records no host name: give it one: {arg}=NAME", dir.display())
            })?;
            if let Err(e) = check_host_name(&host) {
                bail!("merge source {arg}: {e:#} ({named_by}): give it one: {arg}=NAME");
            }
            (host, named_by)
        }
    };
    Ok(Source { arg: arg.to_string(), dir, host, named_by, campaign: campaign.id })
}

/// Checks every input: `--out` new or empty, each source a campaign, no
/// campaign twice, no host twice. Nothing is written.
pub fn plan(args: &[String], out: &Path) -> Result<Vec<Source>> {
    if args.is_empty() {
        bail!("merge needs at least one campaign directory: edgebench merge DIR1=host-a DIR2=host-b --out FLEET");
    }
    if out.exists() && !out.is_dir() {
        bail!("--out {}: not a directory: give a new or empty directory", out.display());
    }
    if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("--out {} exists and is not empty: give a new or empty directory for the fleet", out.display());
    }
    let sources: Vec<Source> = args.iter().map(|a| source(a)).collect::<Result<_>>()?;
    for (i, s) in sources.iter().enumerate() {
        for earlier in &sources[..i] {
            if earlier.campaign == s.campaign {
                bail!(
                    "campaign {} is given twice ({} and {}): give each campaign once",
                    s.campaign,
                    earlier.arg,
                    s.arg
                );
            }
            if earlier.host == s.host {
                bail!(
                    "{a} and {b} both have host name {:?} ({a}: {}; {b}: {}): give each a name: PATH=NAME",
                    s.host,
                    earlier.named_by,
                    s.named_by,
                    a = earlier.arg,
                    b = s.arg,
                );
            }
        }
    }
    Ok(sources)
}

/// Writes the fleet into `out` (new or empty, as [`plan`] checked): the
/// merged results file, each host's copy and report, and the fleet report.
/// Returns the fleet's report.html. On failure, what was written is removed.
pub fn merge(sources: &[Source], out: &Path) -> Result<PathBuf> {
    let existed = out.exists();
    let result = write(sources, out);
    if result.is_err() {
        // Only what this merge wrote: `out` was new or empty.
        let _ = if existed { clear(out) } else { std::fs::remove_dir_all(out) };
    }
    result
}

fn clear(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(path)?;
        } else {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

fn write(sources: &[Source], out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut fleet = Store::create_fleet(&out.join(RESULTS_FILE))?;
    for s in sources {
        let host_dir = out.join(HOSTS_DIR).join(&s.host);
        std::fs::create_dir_all(&host_dir).with_context(|| format!("creating {}", host_dir.display()))?;
        let copy = host_dir.join(RESULTS_FILE);
        Store::open_read_only(&s.dir)?.copy_to(&copy)?;
        // The copy is brought to the current schema (as `--resume` would
        // bring its source), so that every column lines up in the merge.
        drop(Store::open(&copy)?);
        let settings = s.dir.join(CAMPAIGN_FILE);
        if settings.is_file() {
            std::fs::copy(&settings, host_dir.join(CAMPAIGN_FILE))
                .with_context(|| format!("copying {}", settings.display()))?;
        }
        let source = s.dir.canonicalize().unwrap_or_else(|_| s.dir.clone());
        fleet.absorb(&copy, &s.host, &source.display().to_string())?;
    }
    drop(fleet);
    crate::report::fleet::write_to(out, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_may_name_its_host_after_the_last_equals_sign() {
        assert_eq!(split_source("runs/a=host-a"), (PathBuf::from("runs/a"), Some("host-a".into())));
        assert_eq!(split_source("runs/a"), (PathBuf::from("runs/a"), None));
        assert_eq!(split_source("x=y=z"), (PathBuf::from("x=y"), Some("z".into())));
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("k=v");
        std::fs::create_dir(&odd).unwrap();
        assert_eq!(split_source(odd.to_str().unwrap()), (odd.clone(), None), "an existing directory named k=v");
    }
}
