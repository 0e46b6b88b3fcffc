//! Audits: each candidate wheel is downloaded once (hash-checked, into the content-addressed
//! file store), audited off the async threads, and its report stored under the cache folder.
//! A verdict depends on the bytes *and* on the filename (name and version are checked against
//! `.dist-info`, tags against the binaries), so a report is keyed by both, and by the
//! auditor's version: the same bytes listed under another name are audited as that name.
//! Stored reports are sealed with a key kept in the cache folder (HMAC-SHA256): a report
//! edited on disk no longer verifies and is made again rather than trusted. The download is also the
//! prefetch: when pip asks for the wheel a moment later it is served from the cache.
//!
//! One audit per digest and name runs at a time however many requests want it (single-flight).
//! Jobs wait in one queue per project, served in turn, so a project with thousands of wheels
//! queued never holds back another's few; within a project they keep the order they were asked
//! for (newest first). Downloads (network-bound) and audits (CPU-bound) have separate limits:
//! `downloads` wheels are fetched at once, and of those `jobs` are parsed at once. A failed attempt (upstream down, bytes not as promised) is not a
//! report: it is remembered briefly, so a page request does not hammer a broken upstream, and
//! then tried again.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};

use super::ShownFile;
use super::download::{Transfer, deadline_for};
use super::files::FileCache;
use crate::audit::{self, Report};
use crate::state::{Claim, SharedState, StateError};
use crate::upstream::Upstreams;

/// Why an attempt made no verdict.
#[derive(Clone, Debug)]
pub struct Failure {
    why: Arc<str>,
    /// The shared state (`--state`) failed, not the wheel: asked again soon after it
    /// returns, and told to clients as "unavailable", not as a bad upstream.
    pub shared_state: bool,
}

impl Failure {
    /// The wheel could not be fetched or read.
    fn of_wheel(why: impl Into<Arc<str>>) -> Self {
        Self {
            why: why.into(),
            shared_state: false,
        }
    }

    /// How long the failure is remembered before the next request tries again.
    fn retry_after(&self) -> Duration {
        if self.shared_state {
            STATE_RETRY_AFTER
        } else {
            RETRY_AFTER
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl From<StateError> for Failure {
    fn from(e: StateError) -> Self {
        Self {
            why: Arc::from(format!("no verdict: {e}")),
            shared_state: true,
        }
    }
}

/// The result of one attempt: a report, or why no report could be made.
pub type Outcome = Result<Arc<Report>, Failure>;

/// How long a failed attempt is remembered before the next request tries again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// How long a failure of the shared state is remembered: it is the database, not the wheel,
/// so a replica asks again soon after it returns.
const STATE_RETRY_AFTER: Duration = Duration::from_secs(2);

/// How long "no report in the shared state" is believed before a listing asks again:
/// another replica may store one meanwhile.
const MISSING_FOR: Duration = Duration::from_secs(5);

pub enum Status {
    Done(Arc<Report>),
    Running(watch::Receiver<Option<Outcome>>),
    Error(Failure),
}

enum Slot {
    Done(Arc<Report>),
    Running(watch::Receiver<Option<Outcome>>),
    Error {
        until: Instant,
        why: Failure,
    },
    /// Looked for and not found (by [`Audits::peek`]), not started. On disk only this
    /// process stores reports, so that stays true; in the shared state only for
    /// [`MISSING_FOR`].
    Missing {
        at: Instant,
    },
}

/// What a verdict is about: the bytes and the name they are listed under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    sha256: String,
    filename: String,
}

impl Key {
    fn of(sha256: &str, file: &ShownFile) -> Self {
        Self {
            sha256: sha256.to_owned(),
            filename: file.filename.clone(),
        }
    }
}

/// Why an audit runs. Work a request waits for runs before background work; a background
/// job a request starts waiting for is moved up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// A page answer or a held download waits for it.
    Waiting,
    /// The policy's declared fleet could install it.
    Fleet,
    /// An environment seen before could install it.
    Background,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Fleet => "fleet",
            Self::Background => "background",
        }
    }
}

/// An audit waiting for a worker.
struct Job {
    project: String,
    file: ShownFile,
    cause: Cause,
    done: watch::Sender<Option<Outcome>>,
}

/// Keys per project, served in turn: a project with thousands of wheels queued never holds
/// back another's few (issue 15). Within a project, keys keep the order they were asked for.
struct FairQueue<T> {
    by_project: HashMap<String, VecDeque<T>>,
    /// Projects with keys waiting, in the order they get their next turn.
    turn: VecDeque<String>,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        Self {
            by_project: HashMap::new(),
            turn: VecDeque::new(),
        }
    }
}

impl<T> FairQueue<T> {
    fn push(&mut self, project: &str, item: T) {
        let queue = self.by_project.entry(project.to_owned()).or_default();
        if queue.is_empty() {
            self.turn.push_back(project.to_owned());
        }
        queue.push_back(item);
    }

    fn pop(&mut self) -> Option<T> {
        let project = self.turn.pop_front()?;
        let queue = self.by_project.get_mut(&project)?;
        let item = queue.pop_front();
        if queue.is_empty() {
            self.by_project.remove(&project);
        } else {
            self.turn.push_back(project);
        }
        item
    }
}

/// The jobs not started yet: those a request waits for first, then the background's, each
/// fair across projects. A key may sit in both queues (moved up); it runs once, from
/// whichever reaches it first.
#[derive(Default)]
struct Queue {
    waiting: FairQueue<Key>,
    background: FairQueue<Key>,
    jobs: HashMap<Key, Job>,
    /// Started and not ended: kept with the queue on disk, so a process killed mid-audit
    /// resumes them too.
    running: HashMap<Key, (String, ShownFile, Cause)>,
    /// Changed since the queue was last written to disk.
    dirty: bool,
}

impl Queue {
    fn push(&mut self, key: Key, job: Job) {
        if job.cause == Cause::Waiting {
            self.waiting.push(&job.project, key.clone());
        } else {
            self.background.push(&job.project, key.clone());
        }
        self.jobs.insert(key, job);
        self.dirty = true;
    }

    /// Moves a background job up, returning the cause it had.
    fn promote(&mut self, key: &Key) -> Option<Cause> {
        let job = self.jobs.get_mut(key)?;
        if job.cause == Cause::Waiting {
            return None;
        }
        let was = job.cause;
        job.cause = Cause::Waiting;
        self.waiting.push(&job.project, key.clone());
        Some(was)
    }

    fn ended(&mut self, key: &Key) {
        if self.running.remove(key).is_some() {
            self.dirty = true;
        }
    }

    fn pop(&mut self) -> Option<(Key, Job)> {
        loop {
            let key = self.waiting.pop().or_else(|| self.background.pop())?;
            if let Some(job) = self.jobs.remove(&key) {
                self.dirty = true;
                self.running.insert(
                    key.clone(),
                    (job.project.clone(), job.file.clone(), job.cause),
                );
                return Some((key, job));
            }
        }
    }
}

/// A queued job as `audits/queue.json` keeps it, so a restart resumes the background work.
/// The link is the resolved URL without any user or password in it.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedJob {
    project: String,
    sha256: String,
    filename: String,
    url: String,
    size: Option<u64>,
    provenance: Option<String>,
    cause: Cause,
}

/// How often the queue is written to disk while it changes.
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// At most this many queued jobs are written (the newest asked for are lost first).
const MAX_SAVED: usize = 100_000;

pub struct Audits {
    /// Itself, for tasks that `&self` methods start.
    this: std::sync::Weak<Self>,
    reports_dir: PathBuf,
    files: Arc<FileCache>,
    upstreams: Arc<Upstreams>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Wheels fetched at once (one worker each).
    downloads: usize,
    /// Audits parsed at once, on blocking threads.
    cpu: tokio::sync::Semaphore,
    limits: audit::ArchiveLimits,
    slots: Mutex<HashMap<Key, Slot>>,
    /// Read or made on first use, so a cache that never stored a report holds no key.
    seal: std::sync::OnceLock<ring::hmac::Key>,
    audits_dir: PathBuf,
    /// Jobs per project, served in turn; in the order they were asked for within a project
    /// (tasks racing for a semaphore would not keep it).
    queue: Mutex<Queue>,
    ready: Notify,
    workers: Once,
    /// Bumped whenever an audit ends: a page rendered at the same generation is still right.
    generation: std::sync::atomic::AtomicU64,
    /// Whether the queue is kept in `audits/queue.json` (serve only: a command's queue ends
    /// with it).
    keep_queue: std::sync::atomic::AtomicBool,
    /// With `--state`: reports and claims shared with other replicas, instead of the reports
    /// folder.
    shared: std::sync::OnceLock<Arc<SharedState>>,
    /// Keys a listing asked about, to look up in the shared state in one query.
    lookups: Mutex<Vec<Key>>,
    looking: std::sync::atomic::AtomicBool,
}

impl Audits {
    pub fn new(
        cache_dir: &Path,
        upstreams: Arc<Upstreams>,
        jobs: usize,
        downloads: usize,
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
        Arc::new_cyclic(|this| Self {
            this: this.clone(),
            reports_dir: cache_dir.join("audits").join(slug),
            seal: std::sync::OnceLock::new(),
            audits_dir: cache_dir.join("audits"),
            files,
            upstreams,
            metrics,
            downloads: downloads.max(jobs).max(1),
            cpu: tokio::sync::Semaphore::new(jobs.max(1)),
            limits: audit::ArchiveLimits::default(),
            slots: Mutex::new(HashMap::new()),
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            workers: Once::new(),
            generation: std::sync::atomic::AtomicU64::new(0),
            keep_queue: std::sync::atomic::AtomicBool::new(false),
            shared: std::sync::OnceLock::new(),
            lookups: Mutex::new(Vec::new()),
            looking: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// From now on, reports and audit claims live in the shared state (serve with `--state`).
    pub fn share(&self, state: Arc<SharedState>) {
        let _ = self.shared.set(state);
    }

    fn file_path(&self, sha256: &str) -> PathBuf {
        self.files.path(sha256)
    }

    fn seal(&self) -> &ring::hmac::Key {
        self.seal.get_or_init(|| seal_key(&self.audits_dir))
    }

    /// `<sha[..2]>/<sha>/<digest of the filename>.json`: the filename is hostile text, so only
    /// its digest names a file.
    fn report_path(&self, key: &Key) -> PathBuf {
        let name = hex::encode(&Sha256::digest(key.filename.as_bytes())[..16]);
        self.reports_dir
            .join(&key.sha256[..2])
            .join(&key.sha256)
            .join(format!("{name}.json"))
    }

    /// What is known of the audit of `sha256` listed as `file`, starting it if nothing is
    /// (queued by `cause`; a queued background job that a request now waits for is moved up).
    /// Callers list wheels newest first, and the job queue is fair, so the newest start first.
    pub fn status(self: &Arc<Self>, sha256: &str, file: &ShownFile, cause: Cause) -> Status {
        let key = Key::of(sha256, file);
        if let Some(known) = self.known(&key) {
            if cause == Cause::Waiting && matches!(known, Status::Running(_)) {
                self.promote(&key);
            }
            return known;
        }
        if let Some(shared) = self.shared.get() {
            return self.status_shared(key, file, cause, shared.clone());
        }
        // A stored report is read from disk with the table unlocked: other pages' lookups
        // must not wait for this one's file system.
        let stored = self.load(&key);
        let Ok(mut slots) = self.slots.lock() else {
            return Status::Error(Failure::of_wheel("audit table poisoned"));
        };
        if let Some(known) = Self::known_in(&slots, &key) {
            return known;
        }
        if let Some(report) = stored {
            slots.insert(key, Slot::Done(report.clone()));
            return Status::Done(report);
        }
        let (tx, rx) = watch::channel(None);
        slots.insert(key.clone(), Slot::Running(rx.clone()));
        drop(slots);
        self.enqueue(key, file.clone(), cause, tx);
        Status::Running(rx)
    }

    /// `status` with the shared state: the report is looked up off this thread (a page
    /// waits on the slot like on an audit), and only what no replica has judged is queued.
    fn status_shared(
        self: &Arc<Self>,
        key: Key,
        file: &ShownFile,
        cause: Cause,
        shared: Arc<SharedState>,
    ) -> Status {
        let Ok(mut slots) = self.slots.lock() else {
            return Status::Error(Failure::of_wheel("audit table poisoned"));
        };
        if let Some(known) = Self::known_in(&slots, &key) {
            return known;
        }
        let (tx, rx) = watch::channel(None);
        slots.insert(key.clone(), Slot::Running(rx.clone()));
        drop(slots);
        let me = self.clone();
        let file = file.clone();
        tokio::spawn(async move {
            match shared.report(&key.sha256, &key.filename).await {
                Ok(Some(report)) => {
                    me.metrics.cluster_audit("reused");
                    me.finish(&key, tx, Ok(Arc::new(report)));
                }
                Ok(None) => me.enqueue(key, file, cause, tx),
                Err(e) => me.finish(&key, tx, Err(e.into())),
            }
        });
        Status::Running(rx)
    }

    fn enqueue(
        self: &Arc<Self>,
        key: Key,
        file: ShownFile,
        cause: Cause,
        done: watch::Sender<Option<Outcome>>,
    ) {
        let project = crate::dist::project_of(&file.filename)
            .map(|p| p.to_string())
            .unwrap_or_default();
        if let Ok(mut queue) = self.queue.lock() {
            queue.push(
                key,
                Job {
                    project,
                    file,
                    cause,
                    done,
                },
            );
            self.metrics.audit_queued(cause.as_str(), 1);
        }
        self.start_workers();
        self.ready.notify_one();
    }

    fn promote(&self, key: &Key) {
        let was = self.queue.lock().ok().and_then(|mut q| q.promote(key));
        if let Some(was) = was {
            self.metrics.audit_queued(was.as_str(), -1);
            self.metrics.audit_queued(Cause::Waiting.as_str(), 1);
        }
    }

    /// What is known of an audit without starting one: a verdict (in memory or stored), or
    /// a recent failure. `None`: not audited, or under way.
    pub fn peek(&self, sha256: &str, file: &ShownFile) -> Option<Outcome> {
        let key = Key::of(sha256, file);
        match self.slots.lock().ok()?.get(&key) {
            Some(Slot::Done(r)) => return Some(Ok(r.clone())),
            Some(Slot::Error { until, why }) if Instant::now() < *until => {
                return Some(Err(why.clone()));
            }
            Some(Slot::Running(_)) => return None,
            Some(Slot::Missing { at })
                if self.shared.get().is_none() || at.elapsed() < MISSING_FOR =>
            {
                return None;
            }
            _ => {}
        }
        if self.shared.get().is_some() {
            self.look_up_later(key);
            return None;
        }
        let stored = self.load(&key);
        let mut slots = self.slots.lock().ok()?;
        match stored {
            Some(report) => {
                slots.insert(key, Slot::Done(report.clone()));
                Some(Ok(report))
            }
            None => {
                // Remembered, so the next page answer does not look on disk again: only this
                // process stores reports, and it replaces the entry when it does.
                slots
                    .entry(key)
                    .or_insert(Slot::Missing { at: Instant::now() });
                None
            }
        }
    }

    /// Queues `key` for the next batched lookup in the shared state; a report found there
    /// fills its slot and bumps the generation, so the next page answer shows it.
    fn look_up_later(&self, key: Key) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.insert(key.clone(), Slot::Missing { at: Instant::now() });
        }
        if let Ok(mut pending) = self.lookups.lock() {
            pending.push(key);
        }
        let Some(shared) = self.shared.get().cloned() else {
            return;
        };
        if self.looking.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let Some(me) = self.me() else { return };
        tokio::spawn(async move {
            loop {
                let keys: Vec<Key> = me
                    .lookups
                    .lock()
                    .map(|mut p| std::mem::take(&mut *p))
                    .unwrap_or_default();
                if keys.is_empty() {
                    me.looking
                        .store(false, std::sync::atomic::Ordering::Release);
                    // A key pushed after the take and before the store would wait for the next
                    // listing; look once more.
                    if me.lookups.lock().map(|p| p.is_empty()).unwrap_or(true)
                        || me.looking.swap(true, std::sync::atomic::Ordering::AcqRel)
                    {
                        return;
                    }
                    continue;
                }
                let pairs: Vec<(String, String)> = keys
                    .iter()
                    .map(|k| (k.sha256.clone(), k.filename.clone()))
                    .collect();
                let Ok(found) = shared.reports(&pairs).await else {
                    continue;
                };
                if found.is_empty() {
                    continue;
                }
                if let Ok(mut slots) = me.slots.lock() {
                    for report in found {
                        let key = Key {
                            sha256: report.sha256.clone(),
                            filename: report.wheel.clone(),
                        };
                        if !matches!(slots.get(&key), Some(Slot::Running(_))) {
                            slots.insert(key, Slot::Done(Arc::new(report)));
                        }
                    }
                }
                me.generation
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
        });
    }

    /// Changes whenever an audit ends.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Keeps the queue in `audits/queue.json` from now on, and queues again what it held when
    /// the last process stopped (`serve` calls this once at start).
    pub fn keep_queue(self: &Arc<Self>) {
        self.keep_queue
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let path = self.audits_dir.join("queue.json");
        let saved: Vec<SavedJob> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), error = %e, "the saved audit queue is unreadable; starting with an empty one");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        let mut resumed = 0usize;
        for job in saved {
            let Ok(url) = url::Url::parse(&job.url) else {
                continue;
            };
            if job.sha256.len() != 64 || !job.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let file = ShownFile {
                filename: job.filename,
                url: crate::index::FileUrl::Resolved(Box::new(url)),
                size: job.size,
                core_metadata: crate::index::CoreMetadata::Absent,
                provenance: job.provenance.map(String::into_boxed_str),
            };
            if matches!(
                self.status(&job.sha256, &file, job.cause),
                Status::Running(_)
            ) {
                resumed += 1;
            }
        }
        if resumed > 0 {
            tracing::info!(jobs = resumed, "resumed the audit queue of the last run");
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SAVE_EVERY).await;
                let Some(me) = me.upgrade() else { return };
                me.save_queue(&path).await;
            }
        });
    }

    async fn save_queue(&self, path: &Path) {
        let saved: Vec<SavedJob> = {
            let Ok(mut queue) = self.queue.lock() else {
                return;
            };
            if !queue.dirty {
                return;
            }
            queue.dirty = false;
            let running = queue
                .running
                .iter()
                .map(|(key, (project, file, cause))| (key, project, file, *cause));
            let queued = queue
                .jobs
                .iter()
                .map(|(key, job)| (key, &job.project, &job.file, job.cause));
            running
                .chain(queued)
                .take(MAX_SAVED)
                .filter_map(|(key, project, file, cause)| {
                    let mut url = file.url.resolve().ok()?;
                    let _ = url.set_username("");
                    let _ = url.set_password(None);
                    let provenance = file
                        .provenance
                        .as_deref()
                        .and_then(|h| file.url.sibling(h).ok())
                        .map(|u| u.to_string());
                    Some(SavedJob {
                        project: project.clone(),
                        sha256: key.sha256.clone(),
                        filename: key.filename.clone(),
                        url: url.to_string(),
                        size: file.size,
                        provenance,
                        cause,
                    })
                })
                .collect()
        };
        let Ok(bytes) = serde_json::to_vec(&saved) else {
            return;
        };
        let path = path.to_owned();
        let written = tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!("could not write the audit queue; a restart will not resume it");
        }
    }

    /// Starts the worker tasks on first use (inside the runtime that serves requests).
    fn start_workers(self: &Arc<Self>) {
        self.workers.call_once(|| {
            for _ in 0..self.downloads {
                let me = self.clone();
                tokio::spawn(async move { me.work().await });
            }
        });
    }

    async fn work(self: Arc<Self>) {
        loop {
            let ready = self.ready.notified();
            let job = self.queue.lock().ok().and_then(|mut q| q.pop());
            let Some((key, job)) = job else {
                ready.await;
                continue;
            };
            self.metrics.audit_queued(job.cause.as_str(), -1);
            if let Some(shared) = self.shared.get().cloned() {
                self.work_shared(key, job, shared).await;
                continue;
            }
            self.metrics.audit_cause(job.cause.as_str());
            let outcome = self.attempt(&key.sha256, &job.file).await;
            self.metrics.audit_cause_ended(job.cause.as_str());
            self.finish(&key, job.done, outcome);
        }
    }

    /// Records an outcome: the table, the saved queue, the generation, and whoever waits.
    fn finish(&self, key: &Key, done: watch::Sender<Option<Outcome>>, outcome: Outcome) {
        let slot = match &outcome {
            Ok(report) => Slot::Done(report.clone()),
            Err(why) => Slot::Error {
                until: Instant::now() + why.retry_after(),
                why: why.clone(),
            },
        };
        if let Ok(mut slots) = self.slots.lock() {
            slots.insert(key.clone(), slot);
        }
        if let Ok(mut queue) = self.queue.lock() {
            queue.ended(key);
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let _ = done.send(Some(outcome));
    }

    /// A queued job with the shared state: audited here if this replica wins the claim;
    /// otherwise waited for off the worker (which goes on with other jobs) until the owner
    /// stores its verdict, or its lease runs out and this replica takes the claim over.
    async fn work_shared(self: &Arc<Self>, key: Key, job: Job, shared: Arc<SharedState>) {
        match shared.claim(&key.sha256, &key.filename).await {
            Err(e) => self.finish(&key, job.done, Err(e.into())),
            Ok(Claim::Mine { taken_over }) => {
                let outcome = self.audit_claimed(&key, &job, &shared, taken_over).await;
                self.finish(&key, job.done, outcome);
            }
            Ok(Claim::Theirs { replica }) => {
                self.metrics.cluster_audit("waited");
                tracing::debug!(file = %key.filename, owner = %replica, "another replica audits this wheel; waiting for its verdict");
                let me = self.clone();
                tokio::spawn(async move {
                    let outcome = me.wait_for_owner(&key, &job, &shared).await;
                    me.finish(&key, job.done, outcome);
                });
            }
        }
    }

    /// Polls for the owner's verdict; takes the claim over when its lease runs out.
    async fn wait_for_owner(&self, key: &Key, job: &Job, shared: &Arc<SharedState>) -> Outcome {
        let poll = (shared.lease() / 8).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut verdicts = shared.verdicts();
        loop {
            // Woken by any replica's verdict or released claim, else by the poll, which is
            // also what notices a lease that ran out.
            let _ = tokio::time::timeout(poll, verdicts.changed()).await;
            match shared.report(&key.sha256, &key.filename).await {
                Ok(Some(report)) => return Ok(Arc::new(report)),
                Ok(None) => {}
                Err(e) => return Err(e.into()),
            }
            match shared.claim(&key.sha256, &key.filename).await {
                Ok(Claim::Theirs { .. }) => {}
                // Taken over, or its owner ended without a verdict (released the claim).
                Ok(Claim::Mine { taken_over }) => {
                    return self.audit_claimed(key, job, shared, taken_over).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Audits a wheel this replica holds the claim on, renewing the lease while it works, and
    /// stores the verdict for every replica. A verdict that cannot be stored is not used:
    /// the others could not see it (fail closed, no split brain).
    async fn audit_claimed(
        &self,
        key: &Key,
        job: &Job,
        shared: &Arc<SharedState>,
        taken_over: bool,
    ) -> Outcome {
        // Stored between this replica's lookup and its claim: nothing to do.
        match shared.report(&key.sha256, &key.filename).await {
            Ok(Some(report)) => {
                self.metrics.cluster_audit("reused");
                let _ = shared.release(&key.sha256, &key.filename).await;
                return Ok(Arc::new(report));
            }
            Ok(None) => {}
            Err(e) => return Err(e.into()),
        }
        if taken_over {
            self.metrics.cluster_audit("taken-over");
            tracing::info!(file = %key.filename, "took over an audit whose owner's lease ran out");
        } else {
            self.metrics.cluster_audit("claimed");
        }
        let renewing = {
            let shared = shared.clone();
            let key = key.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(shared.lease() / 3).await;
                    if let Ok(false) = shared.renew(&key.sha256, &key.filename).await {
                        tracing::warn!(file = %key.filename, "lost the claim on an audit (its lease ran out); finishing it anyway");
                        return;
                    }
                }
            })
        };
        self.metrics.audit_cause(job.cause.as_str());
        let outcome = self.attempt_unstored(&key.sha256, &job.file).await;
        self.metrics.audit_cause_ended(job.cause.as_str());
        renewing.abort();
        match outcome {
            Ok((report, true)) => match shared.store(&report).await {
                Ok(()) => Ok(report),
                Err(e) => Err(e.into()),
            },
            Ok((report, false)) => {
                let _ = shared.release(&key.sha256, &key.filename).await;
                Ok(report)
            }
            Err(why) => {
                let _ = shared.release(&key.sha256, &key.filename).await;
                Err(Failure::of_wheel(why))
            }
        }
    }

    fn me(&self) -> Option<Arc<Self>> {
        self.this.upgrade()
    }

    fn known(&self, key: &Key) -> Option<Status> {
        match self.slots.lock() {
            Ok(slots) => Self::known_in(&slots, key),
            Err(_) => Some(Status::Error(Failure::of_wheel("audit table poisoned"))),
        }
    }

    /// What the table already says: a report, an audit under way, or a recent failure.
    fn known_in(slots: &HashMap<Key, Slot>, key: &Key) -> Option<Status> {
        match slots.get(key) {
            Some(Slot::Done(r)) => Some(Status::Done(r.clone())),
            Some(Slot::Running(rx)) => Some(Status::Running(rx.clone())),
            Some(Slot::Error { until, why }) if Instant::now() < *until => {
                Some(Status::Error(why.clone()))
            }
            _ => None,
        }
    }

    /// The outcome of `sha256`'s audit, waiting for it as long as it takes.
    pub async fn wait(self: &Arc<Self>, sha256: &str, file: &ShownFile) -> Outcome {
        match self.status(sha256, file, Cause::Waiting) {
            Status::Done(r) => Ok(r),
            Status::Error(why) => Err(why),
            Status::Running(mut rx) => match rx.wait_for(Option::is_some).await {
                Ok(v) => v
                    .clone()
                    .unwrap_or_else(|| Err(Failure::of_wheel("audit ended without a result"))),
                Err(_) => Err(Failure::of_wheel("audit task ended without a result")),
            },
        }
    }

    /// A stored report, if one was made for these bytes under this name by these rules, and
    /// its seal verifies.
    fn load(&self, key: &Key) -> Option<Arc<Report>> {
        let path = self.report_path(key);
        let sealed = std::fs::read(&path).ok()?;
        let Some(bytes) = unseal(self.seal(), &sealed) else {
            tracing::warn!(path = %path.display(), "a stored audit report does not verify; the wheel is audited again");
            return None;
        };
        let report: Report = serde_json::from_slice(bytes).ok()?;
        (report.sha256 == key.sha256
            && report.wheel == key.filename
            && report.auditor == audit::AUDITOR)
            .then(|| Arc::new(report))
    }

    /// One audit, its report stored in the reports folder.
    async fn attempt(&self, sha256: &str, file: &ShownFile) -> Outcome {
        let (report, settled) = self
            .attempt_unstored(sha256, file)
            .await
            .map_err(Failure::of_wheel)?;
        // A provenance that could not be fetched is tried again by the next audit after a
        // restart, not remembered as missing.
        if settled && let Err(e) = self.store(&report).await {
            tracing::warn!(error = %e, "could not store an audit report; it will be made again after a restart");
        }
        Ok(report)
    }

    /// One audit: its report, and whether it is settled (false: a provenance could not be
    /// fetched, so it is made again next time rather than stored).
    async fn attempt_unstored(
        &self,
        sha256: &str,
        file: &ShownFile,
    ) -> Result<(Arc<Report>, bool), Arc<str>> {
        let _running = self.metrics.audit_started();
        // Fetched now, audited when a CPU slot frees: kept in the store until then, whatever
        // else is fetched meanwhile; the store's cap is enforced again once it is done.
        let pin = self.files.pin(sha256);
        let outcome = self.attempt_inner(sha256, file).await;
        drop(pin);
        self.files.trim();
        self.metrics.audit_finished(match &outcome {
            Ok((r, _)) if r.verdict == audit::Verdict::Pass => "pass",
            Ok(_) => "fail",
            Err(_) => "error",
        });
        outcome
    }

    async fn attempt_inner(
        &self,
        sha256: &str,
        file: &ShownFile,
    ) -> Result<(Arc<Report>, bool), Arc<str>> {
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
        let audit_path = path.clone();
        // The digest is computed again while the members are read (on a second thread, so at
        // no cost in time): a stored file damaged since it was stored is not audited as if it
        // were the promised bytes.
        let cpu = self
            .cpu
            .acquire()
            .await
            .map_err(|_| Arc::<str>::from("audit slots closed"))?;
        let report = tokio::task::spawn_blocking(move || {
            audit::audit_file(&audit_path, &filename, None, &limits)
        })
        .await
        .map_err(|e| Arc::<str>::from(format!("audit task failed: {e}")))?
        .map_err(|e| Arc::<str>::from(format!("cannot read the cached wheel: {e}")))?;
        drop(cpu);
        if report.sha256 != sha256 {
            self.files.remove(sha256);
            return Err(Arc::from(format!(
                "the stored copy's sha256 is {}, not {sha256}; removed, and fetched again next time",
                report.sha256
            )));
        }
        self.files.mark_verified(sha256);
        tracing::info!(
            file = %file.filename,
            verdict = ?report.verdict,
            findings = report.findings.len(),
            ms = started.elapsed().as_millis() as u64,
            "audited"
        );
        let (report, settled) = self.with_provenance(report, sha256, file).await;
        Ok((Arc::new(report), settled))
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
        .map(|bytes| self.metrics.upstream_bytes("file", bytes))
        .map_err(|e| e.to_string())
    }

    async fn store(&self, report: &Report) -> std::io::Result<()> {
        let path = self.report_path(&Key {
            sha256: report.sha256.clone(),
            filename: report.wheel.clone(),
        });
        let json = serde_json::to_vec(report).map_err(std::io::Error::other)?;
        let sealed = seal(self.seal(), &json);
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut tmp, &sealed)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// What starts a sealed report: the format, then the HMAC of the JSON that follows.
const SEAL_PREFIX: &[u8] = b"pipwall-report-v1 hmac-sha256=";

fn seal(key: &ring::hmac::Key, json: &[u8]) -> Vec<u8> {
    let tag = ring::hmac::sign(key, json);
    let mut out = Vec::with_capacity(SEAL_PREFIX.len() + 65 + json.len());
    out.extend_from_slice(SEAL_PREFIX);
    out.extend_from_slice(hex::encode(tag.as_ref()).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(json);
    out
}

/// The report's JSON when its seal verifies.
fn unseal<'a>(key: &ring::hmac::Key, sealed: &'a [u8]) -> Option<&'a [u8]> {
    let rest = sealed.strip_prefix(SEAL_PREFIX)?;
    let newline = rest.iter().position(|&b| b == b'\n')?;
    let tag = hex::decode(&rest[..newline]).ok()?;
    let json = &rest[newline + 1..];
    ring::hmac::verify(key, json, &tag).ok()?;
    Some(json)
}

/// The JSON of a sealed report when its seal verifies under `key` (for tools and fuzzing:
/// the store reads its own reports through the same check).
pub fn unseal_with_key<'a>(key: &[u8], sealed: &'a [u8]) -> Option<&'a [u8]> {
    unseal(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), sealed)
}

/// The key that seals reports: read from `dir/seal.key`, made (32 random bytes, owner-only)
/// when missing. Without a readable key the process seals with one of its own, so what it
/// stores is trusted only by itself and audited again after a restart.
fn seal_key(dir: &Path) -> ring::hmac::Key {
    let path = dir.join("seal.key");
    let bytes = std::fs::read(&path)
        .ok()
        .filter(|b| b.len() == 32)
        .or_else(|| {
            let mut fresh = [0u8; 32];
            getrandom::fill(&mut fresh).ok()?;
            std::fs::create_dir_all(dir).ok()?;
            write_owner_only(&path, &fresh).ok()?;
            Some(fresh.to_vec())
        })
        .unwrap_or_else(|| {
            tracing::warn!(path = %path.display(), "cannot keep a report seal key; stored reports will not be trusted after a restart");
            let mut fresh = [0u8; 32];
            let _ = getrandom::fill(&mut fresh);
            fresh.to_vec()
        });
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes)
}

/// Writes a new file readable by its owner only, failing if it exists (two processes that
/// start at once keep the first key).
fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    std::io::Write::write_all(&mut f, bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, cause: Cause) -> (Key, Job) {
        (
            Key {
                sha256: String::new(),
                filename: name.to_owned(),
            },
            Job {
                project: name.split('-').next().unwrap().to_owned(),
                file: ShownFile {
                    filename: name.to_owned(),
                    url: crate::index::FileUrl::Resolved(Box::new(
                        url::Url::parse("https://example.invalid/x").unwrap(),
                    )),
                    size: None,
                    core_metadata: crate::index::CoreMetadata::Absent,
                    provenance: None,
                },
                cause,
                done: watch::channel(None).0,
            },
        )
    }

    fn drain(q: &mut Queue) -> Vec<String> {
        std::iter::from_fn(|| q.pop())
            .map(|(k, _)| k.filename)
            .collect()
    }

    #[test]
    fn projects_take_turns_and_keep_their_own_order() {
        let mut q = Queue::default();
        for i in 0..4 {
            let (k, j) = job(&format!("big-{i}"), Cause::Waiting);
            q.push(k, j);
        }
        for name in ["small-0", "other-0"] {
            let (k, j) = job(name, Cause::Waiting);
            q.push(k, j);
        }
        assert_eq!(
            drain(&mut q),
            ["big-0", "small-0", "other-0", "big-1", "big-2", "big-3"]
        );
    }

    #[test]
    fn waiting_work_runs_before_background_work_and_a_waited_for_job_moves_up() {
        let mut q = Queue::default();
        for i in 0..3 {
            let (k, j) = job(&format!("fleet-{i}"), Cause::Fleet);
            q.push(k, j);
        }
        let (k, j) = job("asked-0", Cause::Waiting);
        q.push(k, j);
        let (moved, _) = job("fleet-2", Cause::Fleet);
        assert_eq!(q.promote(&moved), Some(Cause::Fleet));
        assert_eq!(q.promote(&moved), None, "already moved up");
        assert_eq!(
            drain(&mut q),
            ["asked-0", "fleet-2", "fleet-0", "fleet-1"],
            "each job runs once"
        );
    }

    #[test]
    fn a_sealed_report_verifies_and_an_edited_one_does_not() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7; 32]);
        let json = br#"{"verdict":"fail"}"#;
        let sealed = seal(&key, json);
        assert_eq!(unseal(&key, &sealed), Some(&json[..]));
        let edited = String::from_utf8(sealed.clone())
            .unwrap()
            .replace("fail", "pass");
        assert_eq!(unseal(&key, edited.as_bytes()), None);
        let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[8; 32]);
        assert_eq!(unseal(&other, &sealed), None);
        assert_eq!(
            unseal(&key, json),
            None,
            "an unsealed report is not trusted"
        );
    }

    #[test]
    fn the_seal_key_is_kept_and_reused() {
        let d = tempfile::tempdir().unwrap();
        let a = seal_key(d.path());
        let b = seal_key(d.path());
        let tag = ring::hmac::sign(&a, b"x");
        assert!(ring::hmac::verify(&b, b"x", tag.as_ref()).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.path().join("seal.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
