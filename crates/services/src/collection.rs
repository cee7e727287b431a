//! Collecting database sizes from the monitored servers (`collect_capacity`, "collect now"):
//! one `capacity` sync session per run with one record per instance. An instance that cannot
//! be read fails its own record with the reason; the others go on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use capstats_capacity_model::{DatabaseSizeSample, DbType};
use capstats_collectors::credentials::CredentialKeys;
use capstats_collectors::servers::{Exclusions, ServerConnection, read_database_sizes};
use capstats_collectors::tls::TlsTrust;
use capstats_settings::Settings;
use capstats_store::ConnectionPool;
use capstats_store::StoreError;
use capstats_store::instances::CollectionTarget;
use capstats_store::samples::{NewDatabaseSample, write_database_samples};
use capstats_store::sessions::{NewSession, RecordOutcome};
use capstats_sync_session::{RecordDetail, RecordStatus, SessionStatus, SyncCategory};

use crate::ServiceError;
use crate::payloads::CollectionJob;
use crate::session_run::{OpenedRun, SessionRequest, SessionRun};

/// How collectors connect and what they leave out, from the settings.
#[derive(Debug, Clone)]
pub struct CollectorSettings {
    /// Open stored passwords; without them only instances without a password can be read.
    pub keys: Option<CredentialKeys>,
    /// The certificates `verify-full` connections trust.
    pub trust: TlsTrust,
    /// System databases left out on PostgreSQL servers.
    pub postgresql_exclusions: Exclusions,
    /// System schemas left out on MySQL/MariaDB servers.
    pub mysql_exclusions: Exclusions,
    /// Limit for connecting to and reading one server.
    pub timeout: Duration,
    /// Servers read at once.
    pub concurrency: usize,
}

impl CollectorSettings {
    /// From `CAPSTATS_CREDENTIAL_KEY`, `CAPSTATS_CREDENTIAL_OLD_KEYS`, `CAPSTATS_COLLECTOR_*`.
    pub fn from_settings(settings: &Settings) -> Result<Self, ServiceError> {
        Ok(Self {
            keys: credential_keys(settings)?,
            trust: TlsTrust::load(settings.collector_ca_file.as_deref())?,
            postgresql_exclusions: Exclusions::new(&settings.collector_exclude_postgresql)?,
            mysql_exclusions: Exclusions::new(&settings.collector_exclude_mysql)?,
            timeout: Duration::from_secs(settings.collector_timeout_seconds),
            concurrency: settings.collector_concurrency.max(1) as usize,
        })
    }

    fn exclusions(&self, engine: DbType) -> &Exclusions {
        match engine {
            DbType::Mysql => &self.mysql_exclusions,
            _ => &self.postgresql_exclusions,
        }
    }
}

/// What a collection run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionReport {
    /// Its session.
    pub session_id: i64,
    /// The session's final status.
    pub status: SessionStatus,
    /// Instances attempted.
    pub instances: usize,
    /// Instances whose record failed.
    pub failed_instances: usize,
    /// Database samples written.
    pub samples_written: u64,
}

impl CollectionReport {
    /// One line for logs and the job's result.
    pub fn summary(&self) -> String {
        format!(
            "collection session {} {}: {} instances, {} failed, {} samples written",
            self.session_id,
            self.status,
            self.instances,
            self.failed_instances,
            self.samples_written
        )
    }
}

/// The credential keys of the settings: the current key and the old ones, or none.
pub fn credential_keys(settings: &Settings) -> Result<Option<CredentialKeys>, ServiceError> {
    settings
        .credential_key
        .as_deref()
        .map(|current| CredentialKeys::from_hex(current, &settings.credential_old_keys))
        .transpose()
        .map_err(ServiceError::from)
}

/// Opens the stored connection settings of `target` into what a collector connects with.
pub fn server_connection(
    target: &CollectionTarget,
    keys: Option<&CredentialKeys>,
) -> Result<ServerConnection, capstats_collectors::CollectorError> {
    let incomplete = |what: &str| {
        capstats_collectors::CollectorError::Incomplete(format!(
            "instance `{}` has no {what}; set it to collect its sizes",
            target.name
        ))
    };
    let host = target.host.clone().ok_or_else(|| incomplete("host"))?;
    let user = target
        .connection_user
        .clone()
        .ok_or_else(|| incomplete("connection user"))?;
    let password = match (&target.sealed_password, keys) {
        (None, _) => None,
        // Bound to the instance id: a value copied from another row does not open.
        (Some(sealed), Some(keys)) => Some(keys.open(target.id, sealed)?),
        (Some(_), None) => {
            return Err(capstats_collectors::CollectorError::Key(
                "a password is stored but CAPSTATS_CREDENTIAL_KEY is not set".into(),
            ));
        }
    };
    Ok(ServerConnection {
        engine: target.db_type,
        host,
        port: target.port.and_then(|port| u16::try_from(port).ok()),
        user,
        password,
        database: target.connection_database.clone(),
        tls_mode: target.tls_mode,
    })
}

/// Runs a collection: opens (or creates) its session, reads every target server
/// `concurrency` at a time, writes each one's samples for the job's logical date (`today` for
/// payloads without one) as soon as they are read, and closes the session. Between servers a
/// cancellation request is honoured: servers not started yet end `cancelled`.
pub async fn run_collection(
    store: &ConnectionPool,
    job: &CollectionJob,
    job_id: Option<&str>,
    worker_name: &str,
    collector: &CollectorSettings,
    today: NaiveDate,
) -> Result<CollectionReport, ServiceError> {
    let collected_date = job.logical_date.unwrap_or(today);
    let only = job.instance_ids.clone();
    let targets = capstats_store::run_blocking(store, move |connection| {
        capstats_store::instances::collection_targets(connection, only.as_deref())
    })
    .await?;
    let run = match open_session(store, job, job_id, worker_name, &targets).await? {
        OpenedRun::Run(run) => run,
        OpenedRun::Cancelled(cancelled) => {
            return Ok(CollectionReport {
                session_id: cancelled,
                status: SessionStatus::Cancelled,
                instances: 0,
                failed_instances: 0,
                samples_written: 0,
            });
        }
    };

    let target_ids: std::collections::BTreeSet<capstats_capacity_model::InstanceId> =
        targets.iter().map(|target| target.id).collect();
    capstats_store::run_blocking(store, move |connection| {
        fail_records_without_target(connection, run, &target_ids)
    })
    .await?;

    // One task per server, `concurrency` of them reading at once.
    let permits = Arc::new(Semaphore::new(collector.concurrency));
    let mut tasks = JoinSet::new();
    for target in targets {
        let (store, collector, permits) = (store.clone(), collector.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            collect_one(&store, run, &target, &collector, collected_date).await
        });
    }
    let mut collected: Result<Vec<(bool, u64)>, ServiceError> = Ok(Vec::new());
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined
            .map_err(ServiceError::from)
            .and_then(|outcome| outcome);
        match (&mut collected, outcome) {
            (Ok(outcomes), Ok(outcome)) => outcomes.push(outcome),
            (Ok(_), Err(error)) => collected = Err(error),
            (Err(_), _) => {}
        }
    }
    let outcomes = match collected {
        Ok(outcomes) => outcomes,
        Err(error) => {
            // capstats' own database failed: close the session with the reason rather than
            // leave it running until the sweeper notices.
            let reason = SessionRun::failure_reason(&error);
            if let Err(closing) = capstats_store::run_blocking(store, move |connection| {
                run.fail_because(connection, &reason);
                Ok::<_, StoreError>(())
            })
            .await
            {
                tracing::error!(
                    session_id = run.id(),
                    error = %capstats_store::error_chain(&closing),
                    "could not close the session after an error; the sweeper will"
                );
            }
            return Err(error);
        }
    };
    let status =
        capstats_store::run_blocking(store, move |connection| run.finish(connection)).await?;
    Ok(CollectionReport {
        session_id: run.id(),
        status,
        instances: outcomes.len(),
        failed_instances: outcomes.iter().filter(|(failed, _)| *failed).count(),
        samples_written: outcomes.iter().map(|(_, written)| written).sum(),
    })
}

/// Ends failed, with the reason, the session's records of instances that are no longer
/// collection targets: deactivated, deleted or left without a host or login since the job
/// was queued (its records were made then). Nothing else would end them, so the session could
/// never finish and every retry would fail the same way.
fn fail_records_without_target(
    connection: &mut capstats_store::PgConnection,
    run: SessionRun,
    target_ids: &std::collections::BTreeSet<capstats_capacity_model::InstanceId>,
) -> Result<(), StoreError> {
    let stranded: Vec<_> = run
        .instance_ids(connection)?
        .into_iter()
        .filter(|id| !target_ids.contains(id))
        .collect();
    if stranded.is_empty() {
        return Ok(());
    }
    run.start_records(connection, &stranded)?;
    let outcomes: Vec<RecordOutcome> = stranded
        .into_iter()
        .map(|instance_id| RecordOutcome {
            instance_id,
            status: RecordStatus::Failed,
            items_synced: 0,
            error_message: Some(
                "not collected: since the collection was queued, the instance was \
                 deactivated or deleted, or lost its host or login"
                    .into(),
            ),
            detail: RecordDetail::default(),
        })
        .collect();
    run.finish_records(connection, &outcomes)?;
    Ok(())
}

/// Refuses, naming the first, the `named` instances (id and name) that a collection would
/// not read: inactive, deleted, of an engine without a collector, or without a host or a
/// connection user. Asked for by name, an instance is read or the request says why not.
pub fn check_collectable(
    connection: &mut capstats_store::PgConnection,
    named: &[(capstats_capacity_model::InstanceId, String)],
) -> Result<(), ServiceError> {
    let ids: Vec<_> = named.iter().map(|(id, _)| *id).collect();
    let targets = capstats_store::instances::collection_targets(connection, Some(&ids))?;
    match named
        .iter()
        .find(|(id, _)| !targets.iter().any(|target| target.id == *id))
    {
        Some((_, name)) => Err(ServiceError::InvalidRequest(format!(
            "instance `{name}` cannot be collected: it must be active, be PostgreSQL or MySQL, \
             and have a host and a connection user"
        ))),
        None => Ok(()),
    }
}

/// The session a collection job records into (its records are added separately).
pub fn new_session(job: &CollectionJob, job_id: Option<&str>) -> NewSession {
    job.trigger.new_session(
        SyncCategory::Capacity,
        serde_json::json!({
            "work": "collect",
            "instance_ids": job.instance_ids,
            "job_id": job_id,
        }),
        job_id,
    )
}

/// The session the run records into: the one created when the job was enqueued, or a new one
/// with a record per target. A session cancelled while the job was queued is not replaced.
async fn open_session(
    store: &ConnectionPool,
    job: &CollectionJob,
    job_id: Option<&str>,
    worker_name: &str,
    targets: &[CollectionTarget],
) -> Result<OpenedRun, ServiceError> {
    let request = SessionRequest {
        adopt: job.session_id,
        new: new_session(job, job_id),
        instances: targets
            .iter()
            .map(|target| (target.id, target.name.clone()))
            .collect(),
        link_tick: job.trigger.is_scheduled(),
    };
    let worker_name = worker_name.to_owned();
    Ok(capstats_store::run_blocking(store, move |connection| {
        SessionRun::open(connection, &worker_name, &request)
    })
    .await?)
}

/// Reads and writes one server; returns whether its record failed and the samples written.
async fn collect_one(
    store: &ConnectionPool,
    run: SessionRun,
    target: &CollectionTarget,
    collector: &CollectorSettings,
    today: NaiveDate,
) -> Result<(bool, u64), ServiceError> {
    let instance_id = target.id;
    let cancelled = capstats_store::run_blocking(store, move |connection| {
        run.heartbeat(connection)?;
        if run.cancel_requested(connection)? {
            return Ok::<_, ServiceError>(true);
        }
        run.start_records(connection, &[instance_id])?;
        Ok(false)
    })
    .await?;
    if cancelled {
        return Ok((false, 0));
    }
    let started = Instant::now();
    let read = match server_connection(target, collector.keys.as_ref()) {
        Ok(server) => {
            read_database_sizes(
                &server,
                collector.exclusions(target.db_type),
                &collector.trust,
                collector.timeout,
            )
            .await
        }
        Err(error) => Err(error),
    };
    let collected_at = Utc::now();
    let written = match read {
        Ok(sizes) => {
            let samples: Vec<NewDatabaseSample> = sizes
                .into_iter()
                .map(|size| NewDatabaseSample {
                    sample: DatabaseSizeSample {
                        instance_id,
                        database_name: size.database_name,
                        collected_date: today,
                        size_mb: size.size_mb,
                        data_size_mb: size.data_size_mb,
                        log_size_mb: size.log_size_mb,
                    },
                    collected_at,
                })
                .collect();
            capstats_store::run_blocking(store, move |connection| {
                write_database_samples(connection, &samples).map(|summary| summary.samples_written)
            })
            .await
            .map_err(|error: capstats_store::StoreError| capstats_store::error_chain(&error))
        }
        // The record keeps the whole cause: a refused TLS handshake, a wrong password.
        Err(error) => Err(capstats_store::error_chain(&error)),
    };
    let failed = written.is_err();
    crate::metrics::server_collected(failed);
    if let Err(reason) = &written {
        tracing::warn!(instance = %target.name, %reason, "collection failed");
    }
    let samples_written = *written.as_ref().unwrap_or(&0);
    let outcome = RecordOutcome {
        instance_id,
        status: if failed {
            RecordStatus::Failed
        } else {
            RecordStatus::Completed
        },
        items_synced: samples_written as i64,
        error_message: written.err(),
        detail: RecordDetail {
            duration_ms: started.elapsed().as_millis() as u64,
            ..RecordDetail::default()
        },
    };
    capstats_store::run_blocking(store, move |connection| {
        run.finish_records(connection, &[outcome])
    })
    .await?;
    Ok((failed, samples_written))
}
