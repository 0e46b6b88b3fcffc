//! Shared state for several replicas behind one load balancer (issue 17), on PostgreSQL.
//!
//! Without `--state`, each pipwall keeps its audit reports, queue and known environments in
//! its own `--cache-dir` (no server to run). With `--state postgres://…`, replicas share:
//! - **audit reports**, keyed by what a verdict depends on (digest, filename, auditor
//!   version), so a wheel audited by one replica is never audited again by another;
//! - **claims on audit work** with a lease: the replica that claims a wheel downloads and
//!   audits it and renews its lease while it works; the others wait for its verdict, and
//!   when a lease runs out (its owner died or hung) the next replica to ask takes the claim
//!   over. Times are the database's (`now()`), so replicas' clocks do not matter. A stored
//!   verdict or a released claim is announced with `NOTIFY`, which wakes the waiting
//!   replicas at once; they also poll, which is what notices a lease that ran out (a
//!   bench of 1,494 cold pages took 275 s polling alone, 6.6 s with the wake-up);
//! - **known installer environments**, so each replica audits ahead for what any replica saw;
//! - **learning-mode records**, so the file any replica writes holds what all of them served.
//!
//! File bytes are not shared: each replica keeps its own content-addressed file cache, and
//! fetches (hash-checked) what it serves. Reports in the database are not sealed like the
//! ones on disk: the database's own access control is the trust boundary, and whoever may
//! write to it may also write a seal.
//!
//! Every operation has a deadline. A failed one is an error, never a default: a replica that
//! cannot reach the database keeps serving what it has decided and fails closed for wheels
//! whose verdict it cannot get or store (no replica decides alone while the others cannot
//! see it). Connections are pooled and made again on demand, so it recovers when the
//! database returns, without a restart.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::Json;

use crate::audit::Report;
use crate::metrics::Metrics;

/// The schema this build knows. A database at a newer version is refused.
pub const SCHEMA_VERSION: i32 = 1;

/// Versioned migrations, each run once in its own transaction, in order.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE pipwall_reports (
        sha256 text NOT NULL,
        filename text NOT NULL,
        auditor text NOT NULL,
        report jsonb NOT NULL,
        made_by text NOT NULL,
        made_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (sha256, filename, auditor)
    );
    CREATE TABLE pipwall_claims (
        sha256 text NOT NULL,
        filename text NOT NULL,
        auditor text NOT NULL,
        replica text NOT NULL,
        lease_until timestamptz NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        takeovers integer NOT NULL DEFAULT 0,
        PRIMARY KEY (sha256, filename, auditor)
    );
    CREATE TABLE pipwall_environments (
        environment text PRIMARY KEY,
        last_seen timestamptz NOT NULL
    );
    CREATE TABLE pipwall_learned (
        project text NOT NULL,
        version text NOT NULL,
        replica text NOT NULL,
        seen_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (project, version)
    );",
)];

/// Serialises migrations of replicas starting at once (an arbitrary, fixed lock number).
const MIGRATION_LOCK: i64 = 0x7069_7077_616c_6c00;

/// The longest any one operation may take before it counts as a failure.
const OPERATION_DEADLINE: Duration = Duration::from_secs(5);

/// Reports asked for in one query at most.
const BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the state URL is not a PostgreSQL connection string: {0}")]
    BadUrl(String),
    #[error("TLS for the shared state: {0}")]
    Tls(String),
    #[error("the shared state (PostgreSQL) is unreachable: {0}")]
    Unreachable(String),
    #[error("the shared state (PostgreSQL) did not answer within {0:?}")]
    Timeout(Duration),
    #[error(
        "the shared state's schema is at version {found}, newer than this pipwall knows ({known}); \
         upgrade this replica, or point it at another database"
    )]
    SchemaTooNew { found: i32, known: i32 },
    #[error("a shared-state query failed ({op}): {message}")]
    Query { op: &'static str, message: String },
}

/// The answer to a claim on an audit.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This replica audits it; `taken_over` when another replica's lease had run out.
    Mine { taken_over: bool },
    /// Another replica holds a live lease on it.
    Theirs { replica: String },
}

pub struct SharedState {
    pool: Pool,
    replica: String,
    lease: Duration,
    metrics: Arc<Metrics>,
    /// Whether the last operation succeeded (read by `/readyz`).
    healthy: AtomicBool,
    /// Where the database is, for messages (never the credentials).
    at: String,
    /// Bumped by each `NOTIFY` on [`CHANNEL`].
    verdicts: tokio::sync::watch::Sender<u64>,
}

type Tls = tokio_postgres_rustls::MakeRustlsConnect;

/// Where and how to connect: for the pool, and for the connection that listens for verdicts.
struct Target {
    config: tokio_postgres::Config,
    tls: Tls,
    /// Where the database is, for messages (never the credentials).
    at: String,
}

/// Reads `url`. TLS follows the URL's `sslmode` (`prefer` by default, `require`, or
/// `disable`); the server's certificate is verified against the system's CAs and `ca` (a
/// PEM bundle, for a private CA).
fn target(url: &str, ca: Option<&Path>) -> Result<Target, StateError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| StateError::BadUrl(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(OPERATION_DEADLINE);
    }
    if config.get_application_name().is_none() {
        config.application_name("pipwall");
    }
    let at = describe(&config);
    let tls = crate::tls::client_config(ca).map_err(|e| StateError::Tls(e.to_string()))?;
    Ok(Target {
        config,
        tls: Tls::new(tls),
        at,
    })
}

/// A pool of connections to `target`, made on demand (none yet).
fn pool_for(target: &Target) -> Result<Pool, StateError> {
    let manager = Manager::from_config(
        target.config.clone(),
        target.tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(16)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(OPERATION_DEADLINE))
        .create_timeout(Some(OPERATION_DEADLINE))
        .recycle_timeout(Some(OPERATION_DEADLINE))
        .build()
        .map_err(|e| StateError::BadUrl(e.to_string()))
}

/// `host:port/dbname`, for logs: a connection string's password never is.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("(default database)");
    format!("{host}:{port}/{db}")
}

fn query_error(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StateError {
    move |e| {
        if e.is_closed() {
            StateError::Unreachable(e.to_string())
        } else {
            // The server's own message (`db error: …`) says more than the wrapper's.
            let message = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned());
            StateError::Query { op, message }
        }
    }
}

/// Runs the migrations this database lacks; returns the versions before and after.
pub async fn migrate(url: &str, ca: Option<&Path>) -> Result<(i32, i32), StateError> {
    let pool = pool_for(&target(url, ca)?)?;
    migrate_pool(&pool).await
}

async fn migrate_pool(pool: &Pool) -> Result<(i32, i32), StateError> {
    let work = async {
        let mut client = pool
            .get()
            .await
            .map_err(|e| StateError::Unreachable(e.to_string()))?;
        let tx = client.transaction().await.map_err(query_error("migrate"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(query_error("migrate"))?;
        // Nothing is created when the schema is current, so a replica may run as a user
        // that may read and write the tables but not create them (`pipwall state migrate`
        // run once by their owner).
        let exists: bool = tx
            .query_one("SELECT to_regclass('pipwall_schema') IS NOT NULL", &[])
            .await
            .map_err(query_error("migrate"))?
            .get(0);
        if !exists {
            tx.batch_execute(
                "CREATE TABLE pipwall_schema (
                    id integer PRIMARY KEY CHECK (id = 1),
                    version integer NOT NULL
                )",
            )
            .await
            .map_err(query_error("migrate"))?;
        }
        let found: i32 = tx
            .query_opt("SELECT version FROM pipwall_schema WHERE id = 1", &[])
            .await
            .map_err(query_error("migrate"))?
            .map_or(0, |row| row.get(0));
        if found > SCHEMA_VERSION {
            return Err(StateError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
                tx.batch_execute(sql)
                    .await
                    .map_err(query_error("migrate"))?;
                tracing::info!(version, "shared state migrated");
            }
            tx.execute(
                "INSERT INTO pipwall_schema (id, version) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
                &[&SCHEMA_VERSION],
            )
            .await
            .map_err(query_error("migrate"))?;
        }
        tx.commit().await.map_err(query_error("migrate"))?;
        Ok((found, SCHEMA_VERSION))
    };
    // Waiting for another replica's migration is part of starting; allow it more time.
    tokio::time::timeout(OPERATION_DEADLINE * 6, work)
        .await
        .unwrap_or(Err(StateError::Timeout(OPERATION_DEADLINE * 6)))
}

impl SharedState {
    /// Connects, migrates (refusing a newer schema) and returns the shared state for
    /// `replica`, whose audit claims last `lease` unless renewed; `ca` as for the pool.
    pub async fn connect(
        url: &str,
        ca: Option<&Path>,
        replica: String,
        lease: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, StateError> {
        let target = target(url, ca)?;
        let pool = pool_for(&target)?;
        let (from, to) = migrate_pool(&pool).await?;
        tracing::info!(at = %target.at, replica = %replica, schema_from = from, schema = to, "shared state ready");
        let (verdicts, _) = tokio::sync::watch::channel(0);
        let me = Arc::new(Self {
            pool,
            replica,
            lease,
            metrics,
            healthy: AtomicBool::new(true),
            at: target.at.clone(),
            verdicts,
        });
        tokio::spawn(listen(Arc::downgrade(&me), target));
        Ok(me)
    }

    /// Changes whenever any replica stores a verdict or gives a claim up: a replica waiting
    /// for another's audit looks again at once instead of at its next poll.
    pub fn verdicts(&self) -> tokio::sync::watch::Receiver<u64> {
        self.verdicts.subscribe()
    }

    /// The metrics this replica's operations are counted in (the server's own).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Where the database is (host, port, database; no credentials).
    pub fn at(&self) -> &str {
        &self.at
    }

    /// Whether the last operation succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Times `work`, bounds it by the deadline, and notes the outcome for metrics and
    /// `/readyz`.
    async fn run<T>(
        &self,
        op: &'static str,
        work: impl Future<Output = Result<T, StateError>>,
    ) -> Result<T, StateError> {
        let started = Instant::now();
        let out = tokio::time::timeout(OPERATION_DEADLINE, work)
            .await
            .unwrap_or(Err(StateError::Timeout(OPERATION_DEADLINE)));
        let ok = out.is_ok();
        self.metrics
            .state_op(op, started.elapsed().as_secs_f64(), ok);
        if self.healthy.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                tracing::info!(at = %self.at, "the shared state answers again");
            } else if let Err(e) = &out {
                tracing::warn!(at = %self.at, error = %e, "the shared state fails");
            }
        }
        out
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StateError> {
        self.pool
            .get()
            .await
            .map_err(|e| StateError::Unreachable(e.to_string()))
    }

    /// One round trip, for `/readyz` and the health loop.
    pub async fn ping(&self) -> Result<(), StateError> {
        self.run("ping", async {
            self.client()
                .await?
                .simple_query("SELECT 1")
                .await
                .map_err(query_error("ping"))?;
            Ok(())
        })
        .await
    }

    /// The stored report for these bytes under this name by this auditor, if any.
    pub async fn report(&self, sha256: &str, filename: &str) -> Result<Option<Report>, StateError> {
        self.run("report", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT report FROM pipwall_reports
                     WHERE sha256 = $1 AND filename = $2 AND auditor = $3",
                )
                .await
                .map_err(query_error("report"))?;
            let row = client
                .query_opt(&stmt, &[&sha256, &filename, &crate::audit::AUDITOR])
                .await
                .map_err(query_error("report"))?;
            Ok(row.and_then(|r| decode(&r, sha256, filename)))
        })
        .await
    }

    /// The stored reports among `keys` (digest, filename), in as few queries as it takes.
    pub async fn reports(&self, keys: &[(String, String)]) -> Result<Vec<Report>, StateError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(BATCH) {
            let (shas, names): (Vec<&str>, Vec<&str>) =
                chunk.iter().map(|(s, f)| (s.as_str(), f.as_str())).unzip();
            let rows = self
                .run("reports", async {
                    let client = self.client().await?;
                    let stmt = client
                        .prepare_cached(
                            "SELECT r.report, r.sha256, r.filename FROM pipwall_reports r
                             JOIN unnest($1::text[], $2::text[]) AS k(sha256, filename)
                               ON r.sha256 = k.sha256 AND r.filename = k.filename
                             WHERE r.auditor = $3",
                        )
                        .await
                        .map_err(query_error("reports"))?;
                    client
                        .query(&stmt, &[&shas, &names, &crate::audit::AUDITOR])
                        .await
                        .map_err(query_error("reports"))
                })
                .await?;
            out.extend(rows.iter().filter_map(|r| {
                let sha: String = r.get(1);
                let name: String = r.get(2);
                decode(r, &sha, &name)
            }));
        }
        Ok(out)
    }

    /// Claims the audit of these bytes under this name: this replica's if nobody holds it,
    /// or its holder's lease ran out.
    pub async fn claim(&self, sha256: &str, filename: &str) -> Result<Claim, StateError> {
        self.run("claim", async {
            let client = self.client().await?;
            // The CTE reads the row as it was when this statement began, so the answer names
            // the owner whose lease had run out (none when the owner ended its claim while
            // this one waited for the row: that is no takeover).
            let stmt = client
                .prepare_cached(
                    "WITH old AS (
                        SELECT replica, lease_until FROM pipwall_claims
                        WHERE sha256 = $1 AND filename = $2 AND auditor = $3
                     )
                     INSERT INTO pipwall_claims (sha256, filename, auditor, replica, lease_until)
                     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
                     ON CONFLICT (sha256, filename, auditor) DO UPDATE
                        SET replica = EXCLUDED.replica,
                            lease_until = EXCLUDED.lease_until,
                            claimed_at = now(),
                            takeovers = pipwall_claims.takeovers + 1
                        WHERE pipwall_claims.lease_until < now()
                           OR pipwall_claims.replica = EXCLUDED.replica
                     RETURNING (SELECT replica FROM old WHERE lease_until < now())",
                )
                .await
                .map_err(query_error("claim"))?;
            let lease = self.lease.as_secs_f64();
            let won = client
                .query_opt(
                    &stmt,
                    &[
                        &sha256,
                        &filename,
                        &crate::audit::AUDITOR,
                        &self.replica,
                        &lease,
                    ],
                )
                .await
                .map_err(query_error("claim"))?;
            if let Some(row) = won {
                let previous: Option<String> = row.get(0);
                return Ok(Claim::Mine {
                    taken_over: previous.is_some_and(|p| p != self.replica),
                });
            }
            let holder = client
                .query_opt(
                    "SELECT replica FROM pipwall_claims
                     WHERE sha256 = $1 AND filename = $2 AND auditor = $3",
                    &[&sha256, &filename, &crate::audit::AUDITOR],
                )
                .await
                .map_err(query_error("claim"))?;
            Ok(Claim::Theirs {
                // Released between the two statements: the next poll claims it.
                replica: holder.map_or_else(String::new, |r| r.get(0)),
            })
        })
        .await
    }

    /// Extends this replica's lease; false if it no longer holds the claim.
    pub async fn renew(&self, sha256: &str, filename: &str) -> Result<bool, StateError> {
        self.run("renew", async {
            let client = self.client().await?;
            let lease = self.lease.as_secs_f64();
            let n = client
                .execute(
                    "UPDATE pipwall_claims SET lease_until = now() + make_interval(secs => $5)
                     WHERE sha256 = $1 AND filename = $2 AND auditor = $3 AND replica = $4",
                    &[
                        &sha256,
                        &filename,
                        &crate::audit::AUDITOR,
                        &self.replica,
                        &lease,
                    ],
                )
                .await
                .map_err(query_error("renew"))?;
            Ok(n > 0)
        })
        .await
    }

    /// Gives a claim up without a verdict (the attempt failed), so another may try.
    pub async fn release(&self, sha256: &str, filename: &str) -> Result<(), StateError> {
        self.run("release", async {
            let client = self.client().await?;
            client
                .execute(
                    "DELETE FROM pipwall_claims
                     WHERE sha256 = $1 AND filename = $2 AND auditor = $3 AND replica = $4",
                    &[&sha256, &filename, &crate::audit::AUDITOR, &self.replica],
                )
                .await
                .map_err(query_error("release"))?;
            client
                .batch_execute(NOTIFY)
                .await
                .map_err(query_error("release"))?;
            Ok(())
        })
        .await
    }

    /// Stores a verdict and ends this replica's claim, in one transaction. A report already
    /// stored for the same key (a claim lost to a takeover) is kept: both are the same
    /// auditor's verdict on the same bytes.
    pub async fn store(&self, report: &Report) -> Result<(), StateError> {
        self.run("store", async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(query_error("store"))?;
            tx.execute(
                "INSERT INTO pipwall_reports (sha256, filename, auditor, report, made_by)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (sha256, filename, auditor) DO NOTHING",
                &[
                    &report.sha256,
                    &report.wheel,
                    &report.auditor,
                    &Json(report),
                    &self.replica,
                ],
            )
            .await
            .map_err(query_error("store"))?;
            tx.execute(
                "DELETE FROM pipwall_claims
                 WHERE sha256 = $1 AND filename = $2 AND auditor = $3",
                &[&report.sha256, &report.wheel, &report.auditor],
            )
            .await
            .map_err(query_error("store"))?;
            // Delivered when the transaction commits, with the report visible.
            tx.batch_execute(NOTIFY)
                .await
                .map_err(query_error("store"))?;
            tx.commit().await.map_err(query_error("store"))
        })
        .await
    }

    /// Notes environments seen (their canonical text and when, in seconds since the epoch);
    /// a later time wins.
    pub async fn saw_environments(&self, seen: &[(String, f64)]) -> Result<(), StateError> {
        if seen.is_empty() {
            return Ok(());
        }
        let (names, times): (Vec<&str>, Vec<f64>) =
            seen.iter().map(|(e, t)| (e.as_str(), *t)).unzip();
        self.run("environments", async {
            self.client()
                .await?
                .execute(
                    "INSERT INTO pipwall_environments (environment, last_seen)
                     SELECT e, to_timestamp(t) FROM unnest($1::text[], $2::float8[]) AS s(e, t)
                     ON CONFLICT (environment) DO UPDATE
                        SET last_seen = GREATEST(pipwall_environments.last_seen, EXCLUDED.last_seen)",
                    &[&names, &times],
                )
                .await
                .map_err(query_error("environments"))?;
            Ok(())
        })
        .await
    }

    /// The environments seen by any replica within `within`, most recent first, at most
    /// `limit`.
    pub async fn environments(
        &self,
        within: Duration,
        limit: usize,
    ) -> Result<Vec<(String, f64)>, StateError> {
        let within = within.as_secs_f64();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run("environments", async {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT environment, extract(epoch FROM last_seen)::float8
                     FROM pipwall_environments
                     WHERE last_seen > now() - make_interval(secs => $1)
                     ORDER BY last_seen DESC LIMIT $2",
                    &[&within, &limit],
                )
                .await
                .map_err(query_error("environments"))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }

    /// Notes projects and versions served in learning mode (the version empty for a page).
    pub async fn learned(&self, seen: &[(String, String)]) -> Result<(), StateError> {
        if seen.is_empty() {
            return Ok(());
        }
        let (projects, files): (Vec<&str>, Vec<&str>) =
            seen.iter().map(|(p, f)| (p.as_str(), f.as_str())).unzip();
        self.run("learned", async {
            self.client()
                .await?
                .execute(
                    "INSERT INTO pipwall_learned (project, version, replica)
                     SELECT p, v, $3 FROM unnest($1::text[], $2::text[]) AS s(p, v)
                     ON CONFLICT (project, version) DO NOTHING",
                    &[&projects, &files, &self.replica],
                )
                .await
                .map_err(query_error("learned"))?;
            Ok(())
        })
        .await
    }

    /// Everything any replica learned: (project, version or empty).
    pub async fn all_learned(&self) -> Result<Vec<(String, String)>, StateError> {
        self.run("learned", async {
            let rows = self
                .client()
                .await?
                .query("SELECT project, version FROM pipwall_learned", &[])
                .await
                .map_err(query_error("learned"))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }
}

/// The channel verdicts and released claims are announced on.
const CHANNEL: &str = "pipwall_verdicts";
const NOTIFY: &str = "NOTIFY pipwall_verdicts";

/// Listens on [`CHANNEL`] on a connection of its own (a pooled one would be recycled),
/// bumping `verdicts` on each notification, for as long as the shared state lives. A lost
/// connection is made again after a second; meanwhile waiters fall back to polling.
async fn listen(state: std::sync::Weak<SharedState>, target: Target) {
    use futures_util::StreamExt;
    loop {
        if state.strong_count() == 0 {
            return;
        }
        if let Ok(Ok((client, mut connection))) = tokio::time::timeout(
            OPERATION_DEADLINE,
            target.config.connect(target.tls.clone()),
        )
        .await
        {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let pump = tokio::spawn(async move {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    if matches!(message, tokio_postgres::AsyncMessage::Notification(_))
                        && tx.send(()).is_err()
                    {
                        return;
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .await
                .is_ok()
            {
                while rx.recv().await.is_some() {
                    let Some(state) = state.upgrade() else { return };
                    state.verdicts.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
            pump.abort();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A stored report, if it reads and is about what it is stored under.
fn decode(row: &tokio_postgres::Row, sha256: &str, filename: &str) -> Option<Report> {
    let Json(report): Json<Report> = row.try_get(0).ok()?;
    (report.sha256 == sha256 && report.wheel == filename && report.auditor == crate::audit::AUDITOR)
        .then_some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_never_carries_the_password() {
        let config: tokio_postgres::Config = "postgres://pipwall:s3cret@db.internal:6543/gate"
            .parse()
            .expect("url");
        let text = describe(&config);
        assert_eq!(text, "db.internal:6543/gate");
        let err = target("postgres://u:s3cret@[::1", None)
            .err()
            .map(|e| e.to_string());
        assert!(!err.unwrap_or_default().contains("s3cret"));
    }

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        let expected: Vec<i32> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
    }
}
