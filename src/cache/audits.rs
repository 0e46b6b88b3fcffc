//! Audits in the proxy: each candidate wheel is downloaded once (hash-checked, into the
//! content-addressed file cache), audited off the async threads, and its report stored under the
//! cache folder keyed by the wheel's sha256 and the auditor's version. The download is also the
//! prefetch: when pip asks for the wheel a moment later it is served from the cache.
//!
//! One audit per digest runs at a time however many requests want it (single-flight), and at
//! most `jobs` run at once, taken from a queue in the order they were asked for. A failed attempt (upstream down, bytes not as promised) is not a
//! report: it is remembered briefly, so a page request does not hammer a broken upstream, and
//! then tried again.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::ShownFile;
use super::download::{Transfer, deadline_for};
use super::files::FileCache;
use crate::audit::{self, Report};
use crate::upstream::Upstreams;

/// The result of one attempt: a report, or why no report could be made.
pub type Outcome = Result<Arc<Report>, Arc<str>>;

/// How long a failed attempt is remembered before the next request tries again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

pub enum Status {
    Done(Arc<Report>),
    Running(watch::Receiver<Option<Outcome>>),
    Error(Arc<str>),
}

enum Slot {
    Done(Arc<Report>),
    Running(watch::Receiver<Option<Outcome>>),
    Error { at: Instant, why: Arc<str> },
}

/// An audit waiting for a worker.
struct Job {
    sha256: String,
    file: ShownFile,
    done: watch::Sender<Option<Outcome>>,
}

pub struct Audits {
    reports_dir: PathBuf,
    files: Arc<FileCache>,
    upstreams: Arc<Upstreams>,
    metrics: Arc<crate::metrics::Metrics>,
    jobs: usize,
    limits: audit::Limits,
    slots: Mutex<HashMap<String, Slot>>,
    /// Jobs in the order they were asked for: callers ask for the wheels that matter most
    /// first, and a plain queue keeps that order (tasks racing for a semaphore would not).
    queue: Mutex<VecDeque<Job>>,
    ready: Notify,
    workers: Once,
}

impl Audits {
    pub fn new(
        cache_dir: &Path,
        upstreams: Arc<Upstreams>,
        jobs: usize,
        metrics: Arc<crate::metrics::Metrics>,
        files: Arc<FileCache>,
    ) -> Arc<Self> {
        let slug: String = audit::AUDITOR
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Arc::new(Self {
            reports_dir: cache_dir.join("audits").join(slug),
            files,
            upstreams,
            metrics,
            jobs: jobs.max(1),
            limits: audit::Limits::default(),
            slots: Mutex::new(HashMap::new()),
            queue: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            workers: Once::new(),
        })
    }

    pub fn file_path(&self, sha256: &str) -> PathBuf {
        self.files.path(sha256)
    }

    fn report_path(&self, sha256: &str) -> PathBuf {
        self.reports_dir
            .join(&sha256[..2])
            .join(format!("{sha256}.json"))
    }

    /// What is known of `sha256`'s audit, starting it if nothing is. Callers list wheels
    /// newest first, and the job queue is fair, so the newest start first.
    pub fn status(self: &Arc<Self>, sha256: &str, file: &ShownFile) -> Status {
        if let Some(known) = self.known(sha256) {
            return known;
        }
        // A stored report is read from disk with the table unlocked: other pages' lookups
        // must not wait for this one's file system.
        let stored = self.load(sha256);
        let Ok(mut slots) = self.slots.lock() else {
            return Status::Error("audit table poisoned".into());
        };
        if let Some(known) = Self::known_in(&slots, sha256) {
            return known;
        }
        if let Some(report) = stored {
            slots.insert(sha256.to_owned(), Slot::Done(report.clone()));
            return Status::Done(report);
        }
        let (tx, rx) = watch::channel(None);
        slots.insert(sha256.to_owned(), Slot::Running(rx.clone()));
        drop(slots);
        if let Ok(mut queue) = self.queue.lock() {
            queue.push_back(Job {
                sha256: sha256.to_owned(),
                file: file.clone(),
                done: tx,
            });
        }
        self.start_workers();
        self.ready.notify_one();
        Status::Running(rx)
    }

    /// Starts the worker tasks on first use (inside the runtime that serves requests).
    fn start_workers(self: &Arc<Self>) {
        self.workers.call_once(|| {
            for _ in 0..self.jobs {
                let me = self.clone();
                tokio::spawn(async move { me.work().await });
            }
        });
    }

    async fn work(self: Arc<Self>) {
        loop {
            let ready = self.ready.notified();
            let job = self.queue.lock().ok().and_then(|mut q| q.pop_front());
            let Some(job) = job else {
                ready.await;
                continue;
            };
            let outcome = self.attempt(&job.sha256, &job.file).await;
            if let Ok(mut slots) = self.slots.lock() {
                let slot = match &outcome {
                    Ok(r) => Slot::Done(r.clone()),
                    Err(why) => Slot::Error {
                        at: Instant::now(),
                        why: why.clone(),
                    },
                };
                slots.insert(job.sha256.clone(), slot);
            }
            let _ = job.done.send(Some(outcome));
        }
    }

    fn known(&self, sha256: &str) -> Option<Status> {
        match self.slots.lock() {
            Ok(slots) => Self::known_in(&slots, sha256),
            Err(_) => Some(Status::Error("audit table poisoned".into())),
        }
    }

    /// What the table already says: a report, an audit under way, or a recent failure.
    fn known_in(slots: &HashMap<String, Slot>, sha256: &str) -> Option<Status> {
        match slots.get(sha256) {
            Some(Slot::Done(r)) => Some(Status::Done(r.clone())),
            Some(Slot::Running(rx)) => Some(Status::Running(rx.clone())),
            Some(Slot::Error { at, why }) if at.elapsed() < RETRY_AFTER => {
                Some(Status::Error(why.clone()))
            }
            _ => None,
        }
    }

    /// The outcome of `sha256`'s audit, waiting for it as long as it takes.
    pub async fn wait(self: &Arc<Self>, sha256: &str, file: &ShownFile) -> Outcome {
        match self.status(sha256, file) {
            Status::Done(r) => Ok(r),
            Status::Error(why) => Err(why),
            Status::Running(mut rx) => match rx.wait_for(Option::is_some).await {
                Ok(v) => v
                    .clone()
                    .unwrap_or_else(|| Err("audit ended without a result".into())),
                Err(_) => Err("audit task ended without a result".into()),
            },
        }
    }

    /// A stored report, if one was made for these bytes by these rules.
    fn load(&self, sha256: &str) -> Option<Arc<Report>> {
        let bytes = std::fs::read(self.report_path(sha256)).ok()?;
        let report: Report = serde_json::from_slice(&bytes).ok()?;
        (report.sha256 == sha256 && report.auditor == audit::AUDITOR).then(|| Arc::new(report))
    }

    async fn attempt(self: &Arc<Self>, sha256: &str, file: &ShownFile) -> Outcome {
        let _running = self.metrics.audit_started();
        let outcome = self.attempt_inner(sha256, file).await;
        self.metrics.audit_finished(match &outcome {
            Ok(r) if r.verdict == audit::Verdict::Pass => "pass",
            Ok(_) => "fail",
            Err(_) => "error",
        });
        outcome
    }

    async fn attempt_inner(self: &Arc<Self>, sha256: &str, file: &ShownFile) -> Outcome {
        let started = Instant::now();
        let path = self.file_path(sha256);
        if tokio::fs::metadata(&path).await.is_err() {
            self.download(sha256, file).await.map_err(|e| {
                tracing::warn!(file = %file.filename, error = %e, "could not fetch a wheel to audit");
                Arc::<str>::from(e)
            })?;
        }
        let limits = self.limits.clone();
        let filename = file.filename.clone();
        let sha = sha256.to_owned();
        let audit_path = path.clone();
        let report = tokio::task::spawn_blocking(move || {
            audit::audit_file(&audit_path, &filename, Some(&sha), &limits)
        })
        .await
        .map_err(|e| Arc::<str>::from(format!("audit task failed: {e}")))?
        .map_err(|e| Arc::<str>::from(format!("cannot read the cached wheel: {e}")))?;
        tracing::info!(
            file = %file.filename,
            verdict = ?report.verdict,
            findings = report.findings.len(),
            ms = started.elapsed().as_millis() as u64,
            "audited"
        );
        let (report, settled) = self.with_provenance(report, sha256, file).await;
        let report = Arc::new(report);
        if !settled {
            // A provenance that could not be fetched is tried again by the next audit after a
            // restart, not remembered as missing.
            return Ok(report);
        }
        if let Err(e) = self.store(&report).await {
            tracing::warn!(error = %e, "could not store an audit report; it will be made again after a restart");
        }
        Ok(report)
    }

    /// Adds what the file's provenance proves (when the index lists one) to its report, and says
    /// whether that is settled: false when fetching the provenance failed other than "not found".
    async fn with_provenance(
        &self,
        mut report: audit::Report,
        sha256: &str,
        file: &ShownFile,
    ) -> (audit::Report, bool) {
        use crate::attest::{self, ProvenanceFacts, TrustRoot};
        let Some(href) = &file.provenance else {
            return (report, true);
        };
        let problem = |p: String| ProvenanceFacts {
            verified: Vec::new(),
            problems: vec![p],
        };
        let (facts, settled) = match file.url.sibling(href) {
            Err(e) => (
                problem(format!("the provenance link is not a URL: {e}")),
                true,
            ),
            Ok(url) => match self
                .upstreams
                .fetch_small(&url, attest::MAX_PROVENANCE_BYTES)
                .await
            {
                // "Not found" is an answer; anything else may pass, so it is asked again later.
                Err(e) => {
                    let settled = matches!(e, crate::upstream::UpstreamError::NotFound { .. });
                    (
                        problem(format!("the provenance could not be fetched: {e}")),
                        settled,
                    )
                }
                Ok(bytes) => {
                    let verified = TrustRoot::public_good().and_then(|root| {
                        attest::verify_provenance(&bytes, &file.filename, sha256, root)
                    });
                    match verified {
                        Ok(facts) => (facts, true),
                        Err(e) => (problem(e.to_string()), true),
                    }
                }
            },
        };
        tracing::info!(
            file = %file.filename,
            verified = facts.verified.len(),
            problems = facts.problems.len(),
            "provenance checked"
        );
        report.provenance = Some(facts);
        (report, settled)
    }

    /// Fetches the file into the store through the one hash-checked path.
    async fn download(&self, sha256: &str, file: &ShownFile) -> Result<(), String> {
        let url = file
            .url
            .resolve()
            .map_err(|e| format!("the index's link is not a valid URL: {e}"))?;
        let body = self
            .upstreams
            .open_file(&url)
            .await
            .map_err(|e| crate::error::chain(&e))?;
        Transfer {
            expected: sha256.to_owned(),
            files: self.files.clone(),
            deadline: deadline_for(body.len.or(file.size)),
            store_required: true,
        }
        .run(body.stream, None)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    async fn store(&self, report: &Report) -> std::io::Result<()> {
        let path = self.report_path(&report.sha256);
        let json = serde_json::to_vec(report).map_err(std::io::Error::other)?;
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut tmp, &json)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)?
    }
}
