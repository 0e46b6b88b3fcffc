//! Which wheels are worth fetching and auditing, and when: audit work follows what installers
//! can install, not the size of the index (issue 15).
//!
//! A page request plans its project's wheels in three kinds:
//!
//! - **waited for**: the wheels the asking client can install, newest version first. Under
//!   `listing = "held"` the answer waits (up to `--audit-deadline`) until one final,
//!   non-yanked version has a wheel that passed (a version whose wheels all fail gives way to
//!   the next); pre-releases and yanked files, which installers take only when asked to, are
//!   held, unless the project has nothing else. Under `listing = "audited"` it waits for all
//!   of them.
//! - **background**: for each environment of the policy's declared fleet and each one seen
//!   before, the wheels it can install of its newest final version (every version under
//!   `"audited"`), queued behind the waited-for work of every project.
//! - **the rest** is not fetched. Under `"held"` it is listed all the same, its download held
//!   until its audit passes (a wheel that fails is refused with its finding and hidden from
//!   then on); under `"audited"` it is not listed.
//!
//! A client whose User-Agent says nothing usable (not pip or uv, or an unknown system) is
//! planned as the declared fleet and the environments seen before would be; with none of
//! those, as every platform, newest final version first.

mod environment;
mod known;

pub use environment::{Environment, EnvironmentError, Implementation};
pub use known::{FORGET_AFTER, KnownEnvironments, MAX_KNOWN};

use crate::cache::ShownFile;
use crate::cache::audits::Cause;
use crate::dist::WheelFilename;

/// How a page lists wheels whose audit has not ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Listing {
    /// Listed; the download waits for the audit, and is refused if it fails.
    #[default]
    Held,
    /// Not listed until it passed (strict).
    Audited,
}

impl Listing {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "held" => Some(Self::Held),
            "audited" => Some(Self::Audited),
            _ => None,
        }
    }
}

/// The policy's `[audit]` `listing` and `fleet`.
#[derive(Clone, Debug, Default)]
pub struct AuditDemand {
    pub listing: Listing,
    /// The environments the gateway serves, declared so their wheels are audited before
    /// anyone asks.
    pub fleet: Vec<Environment>,
}

/// A wheel a page shows, with what planning needs to know of it.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub sha256: String,
    pub file: ShownFile,
    pub wheel: Option<WheelFilename>,
    /// A final release, not yanked: a version installers pick without being asked to.
    pub settles: bool,
}

/// The audit work of one page answer, as indices into the page's candidates (newest first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The asking client's installable wheels, one group per version, newest first.
    pub waited: Vec<Vec<usize>>,
    /// Queued behind every waiting request, with why.
    pub background: Vec<(usize, Cause)>,
    /// Whether some environment (asking, declared or seen) can install the wheel; the others
    /// are not fetched unless downloaded.
    pub demanded: Vec<bool>,
}

impl Plan {
    /// Plans `candidates` (newest version first) for a client of `asking` (`None`: it did
    /// not say), the policy's `fleet` and the environments `seen` before.
    pub fn new(
        candidates: &[Candidate],
        asking: Option<&Environment>,
        demand: &AuditDemand,
        seen: &[Environment],
    ) -> Self {
        let fleet = &demand.fleet;
        let installs =
            |env: &Environment, c: &Candidate| c.wheel.as_ref().is_some_and(|w| env.may_install(w));
        let versions = version_groups(candidates);
        let mut waited: Vec<Vec<usize>> = Vec::new();
        match asking {
            Some(env) => {
                for group in &versions {
                    let mine: Vec<usize> = group
                        .iter()
                        .copied()
                        .filter(|&i| installs(env, &candidates[i]))
                        .collect();
                    if !mine.is_empty() {
                        waited.push(mine);
                    }
                }
            }
            // Nothing known to plan by: every platform, newest version first (under
            // "audited", the newest version only: its answer would otherwise wait for the
            // whole project).
            None if fleet.is_empty() && seen.is_empty() => match demand.listing {
                Listing::Held => waited.clone_from(&versions),
                Listing::Audited => waited.extend(versions.first().cloned()),
            },
            None => {
                for group in &versions {
                    let any: Vec<usize> = group
                        .iter()
                        .copied()
                        .filter(|&i| {
                            fleet
                                .iter()
                                .chain(seen)
                                .any(|env| installs(env, &candidates[i]))
                        })
                        .collect();
                    if !any.is_empty() {
                        waited.push(any);
                    }
                }
            }
        }
        let settles = |g: &Vec<usize>| g.iter().any(|&i| candidates[i].settles);
        if demand.listing == Listing::Held && waited.iter().any(settles) {
            // Installers pick a pre-release or a yanked file only when asked to, or when there
            // is nothing else: those are held, audited when such a client downloads one.
            waited.retain(settles);
        }
        let mut demanded = vec![false; candidates.len()];
        for &i in waited.iter().flatten() {
            demanded[i] = true;
        }
        let mut background = Vec::new();
        let mut queued = vec![false; candidates.len()];
        let others = fleet
            .iter()
            .map(|e| (e, Cause::Fleet))
            .chain(seen.iter().map(|e| (e, Cause::Background)));
        for (env, cause) in others {
            let theirs: Vec<Vec<usize>> = versions
                .iter()
                .map(|group| {
                    group
                        .iter()
                        .copied()
                        .filter(|&i| installs(env, &candidates[i]))
                        .collect::<Vec<usize>>()
                })
                .filter(|g| !g.is_empty())
                .collect();
            let picked: Vec<&Vec<usize>> = match demand.listing {
                // The newest version they would pick unasked (a final, not yanked one, if
                // there is any): older ones are fetched when a client downloads one.
                Listing::Held => theirs
                    .iter()
                    .find(|g| settles(g))
                    .or_else(|| theirs.first())
                    .into_iter()
                    .collect(),
                Listing::Audited => theirs.iter().collect(),
            };
            for &i in picked.into_iter().flatten() {
                demanded[i] = true;
                if !queued[i] {
                    queued[i] = true;
                    background.push((i, cause));
                }
            }
        }
        // Everything any environment can install counts as demanded (it will be fetched when
        // that environment asks), whether or not it is queued now.
        for (i, c) in candidates.iter().enumerate() {
            if !demanded[i] {
                demanded[i] = fleet.iter().chain(seen).any(|env| installs(env, c));
            }
        }
        Self {
            waited,
            background,
            demanded,
        }
    }
}

/// Indices of `candidates` grouped by version, in their order (newest first).
fn version_groups(candidates: &[Candidate]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut last: Option<&pep440_rs::Version> = None;
    for (i, c) in candidates.iter().enumerate() {
        let version = c.wheel.as_ref().map(|w| &w.version);
        match (groups.last_mut(), version == last && version.is_some()) {
            (Some(g), true) => g.push(i),
            _ => groups.push(vec![i]),
        }
        last = version;
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(filename: &str) -> Candidate {
        let wheel = WheelFilename::parse_any(filename).ok();
        Candidate {
            sha256: format!("{:064x}", filename.len()),
            file: ShownFile {
                filename: filename.to_owned(),
                url: crate::index::FileUrl::Resolved(Box::new(
                    url::Url::parse("https://example.invalid/x.whl").unwrap(),
                )),
                size: None,
                core_metadata: crate::index::CoreMetadata::Absent,
                provenance: None,
            },
            settles: wheel.as_ref().is_some_and(|w| !w.version.any_prerelease()),
            wheel,
        }
    }

    fn big() -> Vec<Candidate> {
        let mut out = Vec::new();
        for v in ["3.0rc1", "2.1", "2.0", "1.0"] {
            for plat in [
                "manylinux_2_17_x86_64",
                "manylinux_2_17_aarch64",
                "win_amd64",
                "macosx_11_0_arm64",
            ] {
                for py in ["cp311", "cp312"] {
                    out.push(candidate(&format!("big-{v}-{py}-{py}-{plat}.whl")));
                }
            }
        }
        out
    }

    fn names(c: &[Candidate], idx: &[usize]) -> Vec<String> {
        idx.iter().map(|&i| c[i].file.filename.clone()).collect()
    }

    fn linux311() -> Environment {
        Environment::declared("3.11", "manylinux_2_28_x86_64", None).unwrap()
    }

    #[test]
    fn a_client_waits_for_its_own_wheels_only() {
        let c = big();
        let plan = Plan::new(&c, Some(&linux311()), &AuditDemand::default(), &[]);
        assert_eq!(plan.waited.len(), 3, "one group per final version");
        assert_eq!(
            names(&c, &plan.waited[0]),
            ["big-2.1-cp311-cp311-manylinux_2_17_x86_64.whl"],
            "the pre-release is held: pip takes it only when asked to"
        );
        assert!(plan.background.is_empty());
        assert_eq!(plan.demanded.iter().filter(|d| **d).count(), 3);
    }

    #[test]
    fn a_project_of_pre_releases_only_is_waited_for_as_it_is() {
        let c: Vec<Candidate> = ["0.2b1", "0.1a1"]
            .iter()
            .map(|v| candidate(&format!("pre-{v}-py3-none-any.whl")))
            .collect();
        let plan = Plan::new(
            &c,
            Some(&linux311()),
            &AuditDemand::default(),
            &[linux311()],
        );
        assert_eq!(plan.waited, vec![vec![0], vec![1]]);
        assert_eq!(plan.background, vec![(0, Cause::Background)]);
    }

    #[test]
    fn the_fleet_and_seen_environments_queue_their_newest_final_version() {
        let c = big();
        let demand = AuditDemand {
            listing: Listing::Held,
            fleet: vec![Environment::declared("3.12", "win_amd64", None).unwrap()],
        };
        let plan = Plan::new(&c, Some(&linux311()), &demand, &[linux311()]);
        let queued: Vec<(String, Cause)> = plan
            .background
            .iter()
            .map(|&(i, cause)| (c[i].file.filename.clone(), cause))
            .collect();
        assert_eq!(
            queued,
            [
                ("big-2.1-cp312-cp312-win_amd64.whl".to_owned(), Cause::Fleet),
                (
                    "big-2.1-cp311-cp311-manylinux_2_17_x86_64.whl".to_owned(),
                    Cause::Background
                ),
            ],
            "the newest final version of each; the pre-release waits for a client to ask"
        );
        // Every version the two can install is demanded; aarch64 and macOS wheels are not.
        assert_eq!(plan.demanded.iter().filter(|d| **d).count(), 8);
    }

    #[test]
    fn strict_listing_queues_every_version_a_fleet_can_install() {
        let c = big();
        let demand = AuditDemand {
            listing: Listing::Audited,
            fleet: vec![Environment::declared("3.12", "win_amd64", None).unwrap()],
        };
        let plan = Plan::new(&c, None, &demand, &[]);
        assert_eq!(plan.background.len(), 4);
        assert_eq!(
            plan.waited.len(),
            4,
            "an unknown client is planned as the fleet"
        );
    }

    #[test]
    fn with_nothing_known_an_unknown_client_waits_for_the_newest_versions() {
        let c = big();
        let plan = Plan::new(&c, None, &AuditDemand::default(), &[]);
        assert_eq!(plan.waited.len(), 3, "every final version, newest first");
        assert_eq!(plan.waited[0], (8..16).collect::<Vec<_>>());
        assert!(plan.background.is_empty());
        let strict = AuditDemand {
            listing: Listing::Audited,
            fleet: Vec::new(),
        };
        let plan = Plan::new(&c, None, &strict, &[]);
        assert_eq!(plan.waited, vec![(0..8).collect::<Vec<_>>()]);
    }
}
