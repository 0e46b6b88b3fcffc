//! The installer environments pipwall has seen, with when each was last seen, kept in
//! `<cache-dir>/environments.json` so a restart does not forget whom it audits for.
//!
//! Environments come from clients' User-Agents, which clients make up: the table is bounded
//! ([`MAX_KNOWN`], the least recently seen dropped first) and forgets an environment not seen
//! for [`FORGET_AFTER`], so a client inventing environments cannot make pipwall fetch
//! everything, and a machine retired from the fleet stops costing downloads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::{SignedDuration, Timestamp};

use super::Environment;

/// At most this many environments are remembered.
pub const MAX_KNOWN: usize = 64;

/// An environment not seen for this long is forgotten (90 days).
pub const FORGET_AFTER: SignedDuration = SignedDuration::from_hours(90 * 24);

/// A last-seen time is written to disk again only when it moved by this much.
const REWRITE_AFTER: SignedDuration = SignedDuration::from_hours(1);

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    environment: String,
    /// RFC 3339.
    last_seen: String,
}

pub struct KnownEnvironments {
    path: Option<PathBuf>,
    seen: Mutex<HashMap<Environment, Timestamp>>,
    /// Bumped whenever the set changes (not when a time moves), so callers can tell cheaply
    /// whether there is a new environment to audit for.
    generation: AtomicU64,
    /// One writer at a time; a write that finds another under way leaves it to that one's
    /// next turn.
    writing: tokio::sync::Mutex<()>,
}

impl KnownEnvironments {
    /// Nothing remembered, and nothing written: for commands without a cache folder.
    pub fn in_memory() -> Self {
        Self {
            path: None,
            seen: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// The environments remembered in `cache_dir`. An unreadable file is logged and started
    /// afresh: it only orders and scopes work, it decides nothing.
    pub fn open(cache_dir: &Path) -> Self {
        let path = cache_dir.join("environments.json");
        let mut seen = HashMap::new();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Vec<Entry>>(&bytes) {
                Ok(entries) => {
                    let now = Timestamp::now();
                    for e in entries {
                        let Ok(last_seen) = e.last_seen.parse::<Timestamp>() else {
                            continue;
                        };
                        match e.environment.parse::<Environment>() {
                            Ok(env) if now.duration_since(last_seen) < FORGET_AFTER => {
                                seen.insert(env, last_seen);
                            }
                            Ok(_) => {}
                            Err(err) => {
                                tracing::warn!(file = %path.display(), error = %err, "skipping an environment");
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "known environments unreadable; starting afresh");
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "known environments unreadable; starting afresh");
            }
        }
        let me = Self {
            path: Some(path),
            seen: Mutex::new(seen),
            generation: AtomicU64::new(0),
            writing: tokio::sync::Mutex::new(()),
        };
        me.bound();
        me
    }

    /// Notes that a client of `env` asked at `now`. Returns whether it should be written to
    /// disk (new, or its time moved by more than an hour).
    pub fn saw(&self, env: &Environment, now: Timestamp) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        match seen.get_mut(env) {
            Some(at) => {
                let moved = now.duration_since(*at) > REWRITE_AFTER;
                if moved {
                    *at = now;
                }
                moved
            }
            None => {
                seen.insert(env.clone(), now);
                drop(seen);
                self.bound();
                self.generation.fetch_add(1, Ordering::Relaxed);
                true
            }
        }
    }

    /// Drops the least recently seen past [`MAX_KNOWN`] and those not seen for
    /// [`FORGET_AFTER`].
    fn bound(&self) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let now = Timestamp::now();
        seen.retain(|_, at| now.duration_since(*at) < FORGET_AFTER);
        if seen.len() > MAX_KNOWN {
            let mut by_age: Vec<(Timestamp, Environment)> =
                seen.iter().map(|(e, t)| (*t, e.clone())).collect();
            by_age.sort();
            for (_, env) in by_age.into_iter().take(seen.len() - MAX_KNOWN) {
                seen.remove(&env);
            }
        }
    }

    /// Every remembered environment, in a stable order.
    pub fn all(&self) -> Vec<Environment> {
        let mut out: Vec<Environment> = self
            .seen
            .lock()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Every remembered environment with when it was last seen (seconds since the epoch),
    /// for the shared state.
    pub fn entries(&self) -> Vec<(String, f64)> {
        self.seen
            .lock()
            .map(|s| {
                s.iter()
                    .map(|(e, t)| (e.to_string(), t.as_millisecond() as f64 / 1000.0))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds what other replicas saw (canonical text, seconds since the epoch); a later time
    /// wins, text that does not read as an environment is skipped, and the bounds hold.
    pub fn merge(&self, theirs: &[(String, f64)]) {
        let mut added = false;
        if let Ok(mut seen) = self.seen.lock() {
            for (text, secs) in theirs {
                let Ok(env) = text.parse::<Environment>() else {
                    continue;
                };
                let Ok(at) = Timestamp::from_millisecond((secs * 1000.0) as i64) else {
                    continue;
                };
                match seen.get_mut(&env) {
                    Some(mine) => *mine = (*mine).max(at),
                    None => {
                        seen.insert(env, at);
                        added = true;
                    }
                }
            }
        }
        if added {
            self.bound();
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Writes the table (to a temporary file, then renamed over the old one, so a crash
    /// leaves one or the other whole).
    pub async fn save(&self) -> std::io::Result<()> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let Ok(_writing) = self.writing.try_lock() else {
            return Ok(());
        };
        let entries: Vec<Entry> = {
            let seen = self
                .seen
                .lock()
                .map_err(|_| std::io::Error::other("environment table poisoned"))?;
            let mut entries: Vec<Entry> = seen
                .iter()
                .map(|(e, t)| Entry {
                    environment: e.to_string(),
                    last_seen: t.to_string(),
                })
                .collect();
            entries.sort_by(|a, b| a.environment.cmp(&b.environment));
            entries
        };
        let bytes = serde_json::to_vec_pretty(&entries).map_err(std::io::Error::other)?;
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(std::io::Error::other)?
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(minor: u16) -> Environment {
        Environment::declared(&format!("3.{minor}"), "manylinux_2_28_x86_64", None).unwrap()
    }

    #[tokio::test]
    async fn remembered_across_a_restart_and_forgotten_when_old() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownEnvironments::open(dir.path());
        let now = Timestamp::now();
        assert!(known.saw(&env(11), now));
        assert!(!known.saw(&env(11), now));
        assert!(known.saw(&env(12), now - SignedDuration::from_hours(24 * 91)));
        known.save().await.unwrap();
        let again = KnownEnvironments::open(dir.path());
        assert_eq!(again.all(), vec![env(11)]);
    }

    #[test]
    fn bounded() {
        let known = KnownEnvironments::in_memory();
        let now = Timestamp::now();
        for minor in 0..(MAX_KNOWN as u16 + 10) {
            known.saw(
                &env(minor),
                now + SignedDuration::from_secs(i64::from(minor)),
            );
        }
        let all = known.all();
        assert_eq!(all.len(), MAX_KNOWN);
        assert!(!all.contains(&env(0)), "the least recently seen go first");
        assert!(all.contains(&env(MAX_KNOWN as u16 + 9)));
    }

    #[test]
    fn an_unreadable_file_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("environments.json"), b"{not json").unwrap();
        assert!(KnownEnvironments::open(dir.path()).is_empty());
    }
}
