//! Learning mode (`pipwall serve --learn FILE`): pipwall records which projects it served files
//! of and writes them as a `[projects] allow` list, a policy fragment `--policy` takes. Run a
//! build or a test suite through pipwall once, review the file, and from then on serve only
//! what that run used.
//!
//! A project is learned when a page of it listed at least one file, or a file of it was
//! downloaded; the versions downloaded go into a comment beside each name, for the person who
//! reviews the list (PEP 440 specifiers cannot say "this version or that one", so they are not
//! made a rule). The file is written on SIGHUP and when pipwall stops, merged with what the
//! file already lists, through a temporary file renamed over it so a reader never sees half.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::dist::ProjectName;
use crate::dist::filename::{DistFilename, project_of};

/// Marks the comment that carries a project's downloaded versions; read back when merging.
const DOWNLOADED: &str = "# downloaded: ";
/// Marks each run's line in the header; earlier runs' lines are kept.
const RUN: &str = "# learned ";

#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a learned policy fragment ({why}); give --learn a new file or one it wrote", path.display())]
    NotAFragment { path: PathBuf, why: String },
}

/// What one run saw so far, shared by every request.
#[derive(Debug)]
pub struct Learner {
    path: PathBuf,
    started: jiff::Timestamp,
    /// Where the files came from and under which policy, for the header.
    from: String,
    /// Normalized name → versions downloaded.
    seen: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl Learner {
    /// Checks now that an existing file can be merged with, so a mistyped path to some other
    /// file fails at start rather than at the first write.
    pub fn new(path: PathBuf, from: String) -> Result<Self, LearnError> {
        read_existing(&path)?;
        Ok(Self {
            path,
            started: jiff::Timestamp::now(),
            from,
            seen: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A page of `project` listed files.
    pub fn page(&self, project: &ProjectName) {
        if let Ok(mut seen) = self.seen.lock()
            && !seen.contains_key(project.as_str())
        {
            seen.insert(project.as_str().to_owned(), BTreeSet::new());
        }
    }

    /// A file is being served: its project, and its version when the name says.
    pub fn download(&self, filename: &str) {
        let Some(project) = project_of(filename) else {
            return;
        };
        let version = DistFilename::parse(filename, &project)
            .ok()
            .and_then(|d| d.version().map(ToString::to_string));
        if let Ok(mut seen) = self.seen.lock() {
            let versions = seen.entry(project.as_str().to_owned()).or_default();
            versions.extend(version);
        }
    }

    /// What this run saw, as (project, version) pairs, the version empty for a project
    /// whose page was listed: for the shared state, so every replica's file holds the
    /// cluster's.
    pub fn snapshot(&self) -> Vec<(String, String)> {
        let Ok(seen) = self.seen.lock() else {
            return Vec::new();
        };
        seen.iter()
            .flat_map(|(name, versions)| {
                std::iter::once((name.clone(), String::new()))
                    .chain(versions.iter().map(|v| (name.clone(), v.clone())))
            })
            .collect()
    }

    /// Adds what other replicas saw (pairs as [`Learner::snapshot`] makes them). Names
    /// that are not normalized project names are skipped: the rows are read back from a
    /// database others write to.
    pub fn absorb(&self, pairs: &[(String, String)]) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        for (name, version) in pairs {
            if ProjectName::new(name).map_or(true, |p| p.as_str() != name) {
                continue;
            }
            let versions = seen.entry(name.clone()).or_default();
            if !version.is_empty() && version.parse::<pep440_rs::Version>().is_ok() {
                versions.insert(version.clone());
            }
        }
    }

    /// Writes the file: what it listed, plus what this run saw. Returns how many projects it
    /// lists; nothing is written while that is none, since an empty allow-list allows every
    /// project.
    pub fn write(&self) -> Result<usize, LearnError> {
        let existing = read_existing(&self.path)?;
        let mut projects = existing.projects;
        if let Ok(seen) = self.seen.lock() {
            for (name, versions) in seen.iter() {
                projects
                    .entry(name.clone())
                    .or_default()
                    .extend(versions.iter().cloned());
            }
        }
        if projects.is_empty() {
            return Ok(0);
        }
        let run = format!(
            "{RUN}from {} to {}, {}",
            self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            self.from
        );
        let text = render(&existing.runs, &run, &projects);
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let write_err = |source| LearnError::Write {
            path: self.path.clone(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
        // A temporary file is owner-only; the fragment is a policy others read, so it keeps the
        // mode of the file it replaces, or gets the usual one.
        let mode = std::fs::metadata(&self.path).map(|m| m.permissions());
        #[cfg(unix)]
        let mode = mode.or_else(|_| {
            use std::os::unix::fs::PermissionsExt;
            Ok::<_, std::io::Error>(std::fs::Permissions::from_mode(0o644))
        });
        if let Ok(mode) = mode {
            tmp.as_file().set_permissions(mode).map_err(write_err)?;
        }
        tmp.write_all(text.as_bytes()).map_err(write_err)?;
        tmp.as_file().sync_all().map_err(write_err)?;
        tmp.persist(&self.path).map_err(|e| write_err(e.error))?;
        Ok(projects.len())
    }
}

/// An earlier file's names (with the versions its comments list) and its run lines.
#[derive(Default)]
struct Existing {
    projects: BTreeMap<String, BTreeSet<String>>,
    runs: Vec<String>,
}

fn read_existing(path: &Path) -> Result<Existing, LearnError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::default()),
        Err(source) => {
            return Err(LearnError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let bad = |why: String| LearnError::NotAFragment {
        path: path.to_owned(),
        why,
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
    if let Some(key) = table.keys().find(|k| *k != "projects") {
        return Err(bad(format!("it sets `{key}`")));
    }
    let mut out = Existing::default();
    let projects = table.get("projects").and_then(toml::Value::as_table);
    if let Some(key) = projects.and_then(|t| t.keys().find(|k| *k != "allow")) {
        return Err(bad(format!("it sets [projects] `{key}`")));
    }
    let allow = projects
        .and_then(|t| t.get("allow"))
        .and_then(toml::Value::as_array);
    for item in allow.into_iter().flatten() {
        let raw = item
            .as_str()
            .ok_or_else(|| bad("an allow entry is not a string".into()))?;
        let name = ProjectName::new(raw).map_err(|e| bad(format!("`{raw}`: {e}")))?;
        out.projects.entry(name.as_str().to_owned()).or_default();
    }
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(RUN) {
            out.runs.push(line.to_owned());
            continue;
        }
        // `"name", # downloaded: 1.0, 1.1` as `render` writes it.
        let Some((head, versions)) = line.split_once(DOWNLOADED) else {
            continue;
        };
        let Some(name) = head
            .trim()
            .strip_prefix('"')
            .and_then(|h| h.split_once('"'))
            .and_then(|(n, _)| ProjectName::new(n).ok())
        else {
            continue;
        };
        if let Some(slot) = out.projects.get_mut(name.as_str()) {
            slot.extend(
                versions
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty() && *v != "none")
                    .map(str::to_owned),
            );
        }
    }
    Ok(out)
}

fn render(runs: &[String], run: &str, projects: &BTreeMap<String, BTreeSet<String>>) -> String {
    let mut out = String::from(
        "# Written by `pipwall serve --learn`: the projects pipwall served files of, as an\n\
         # allow-list. Review it, then give it to `pipwall serve --policy` (with your other\n\
         # policy files) to serve only these projects. Beside each name, the versions downloaded.\n",
    );
    for line in runs.iter().map(String::as_str).chain([run]) {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("\n[projects]\nallow = [\n");
    for (name, versions) in projects {
        let listed = if versions.is_empty() {
            "none".to_owned()
        } else {
            versions.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(out, "    \"{name}\", {DOWNLOADED}{listed}");
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ProjectName {
        ProjectName::new(s).unwrap()
    }

    #[test]
    fn writes_merges_and_loads_as_a_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("learned.toml");
        let first = Learner::new(path.clone(), "upstream a".into()).unwrap();
        assert_eq!(
            first.write().unwrap(),
            0,
            "nothing learned, nothing written"
        );
        assert!(!path.exists());
        first.page(&name("Demo"));
        first.download("demo-1.0-py3-none-any.whl");
        first.download("demo-1.1.tar.gz");
        first.download("Other_Thing-2.0-py3-none-any.whl");
        first.download("not a distribution");
        assert_eq!(first.write().unwrap(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(
                "    \"demo\", # downloaded: 1.0, 1.1\n    \"other-thing\", # downloaded: 2.0\n"
            ),
            "{text}"
        );

        let second = Learner::new(path.clone(), "upstream b".into()).unwrap();
        second.page(&name("zope.interface"));
        second.download("demo-1.2-py3-none-any.whl");
        assert_eq!(second.write().unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"demo\", # downloaded: 1.0, 1.1, 1.2\n"),
            "{text}"
        );
        assert!(
            text.contains("\"zope-interface\", # downloaded: none\n"),
            "{text}"
        );
        assert_eq!(text.matches(RUN).count(), 2, "{text}");
        assert!(
            text.contains("upstream a") && text.contains("upstream b"),
            "{text}"
        );

        let (p, warnings) = crate::policy::load_files(&[path]).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(p.allow.find("other-thing").is_some());
        assert!(p.allow.find("numpy").is_none());
    }

    #[test]
    fn refuses_a_file_it_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "[cooldown]\nmin-age = \"7d\"\n",
            "[projects]\ndeny = [\"x\"]\n",
            "[projects]\nallow = [{ name = \"x\" }]\n",
            "[projects\n",
            "[projects]\nallow = [\"a b\"]\n",
        ] {
            let path = dir.path().join("policy.toml");
            std::fs::write(&path, text).unwrap();
            let err = Learner::new(path, String::new()).unwrap_err();
            assert!(
                matches!(err, LearnError::NotAFragment { .. }),
                "{text}: {err}"
            );
        }
        let err = Learner::new(dir.path().to_owned(), String::new()).unwrap_err();
        assert!(matches!(err, LearnError::Read { .. }), "{err}");
    }
}
