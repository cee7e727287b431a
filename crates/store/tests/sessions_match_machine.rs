//! Differential test of the session life cycle: whatever sequence of requests a run, an
//! operator and the sweeper make, the sessions and records `store::sessions` keeps in SQL go
//! through exactly the states of `capstats_sync_session::SyncSession`, the pure state machine
//! that defines the transitions.

use capstats_capacity_model::{DbType, InstanceId};
use capstats_store::PgConnection;
use capstats_store::instances::{NewInstance, create_instance};
use capstats_store::sessions::{self, NewSession, RecordOutcome};
use capstats_sync_session::{
    RecordDetail, RecordStatus, SessionStatus, SyncCategory, SyncSession, SyncType,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// One request to a session of four records.
#[derive(Debug, Clone)]
enum Step {
    StartRecord(usize),
    CompleteRecord(usize),
    FailRecord(usize),
    CancelRecord(usize),
    RequestCancel,
    Finish,
    Abandon,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..4).prop_map(Step::StartRecord),
        4 => (0usize..4).prop_map(Step::CompleteRecord),
        2 => (0usize..4).prop_map(Step::FailRecord),
        1 => (0usize..4).prop_map(Step::CancelRecord),
        1 => Just(Step::RequestCancel),
        1 => Just(Step::Finish),
        1 => Just(Step::Abandon),
    ]
}

fn outcome(instance_id: InstanceId, status: RecordStatus) -> RecordOutcome {
    RecordOutcome {
        instance_id,
        status,
        items_synced: 0,
        error_message: (status == RecordStatus::Failed).then(|| "failed".to_owned()),
        detail: RecordDetail::default(),
    }
}

/// Applies `step` to the stored session; refusals are part of the rules, not failures.
fn apply_stored(connection: &mut PgConnection, session_id: i64, instance: InstanceId, step: &Step) {
    let _refused_or_done = match step {
        Step::StartRecord(_) => {
            sessions::start_records(connection, session_id, &[instance]).map(drop)
        }
        Step::CompleteRecord(_) => sessions::finish_records(
            connection,
            session_id,
            &[outcome(instance, RecordStatus::Completed)],
        )
        .map(drop),
        Step::FailRecord(_) => sessions::finish_records(
            connection,
            session_id,
            &[outcome(instance, RecordStatus::Failed)],
        )
        .map(drop),
        Step::CancelRecord(_) => sessions::finish_records(
            connection,
            session_id,
            &[outcome(instance, RecordStatus::Cancelled)],
        )
        .map(drop),
        Step::RequestCancel => sessions::request_cancel(connection, session_id).map(drop),
        Step::Finish => sessions::finish_session(connection, session_id).map(drop),
        Step::Abandon => sessions::fail_session(connection, session_id, "worker lost"),
    };
}

/// Applies `step` to the machine.
fn apply_machine(machine: &mut SyncSession, instance: InstanceId, step: &Step) {
    let _refused_or_done = match step {
        Step::StartRecord(_) => machine.start_record(instance),
        Step::CompleteRecord(_) => machine.complete_record(instance, RecordDetail::default()),
        Step::FailRecord(_) => machine.fail_record(instance, "failed", RecordDetail::default()),
        Step::CancelRecord(_) => machine.cancel_record(instance),
        Step::RequestCancel => {
            machine.request_cancel();
            Ok(())
        }
        Step::Finish => machine.finish().map(drop),
        Step::Abandon => machine.abandon("worker lost"),
    };
}

fn stored_state(
    connection: &mut PgConnection,
    session_id: i64,
) -> (SessionStatus, Vec<RecordStatus>) {
    let session = sessions::get_session(connection, session_id).unwrap();
    let records = sessions::session_records(connection, session_id)
        .unwrap()
        .into_iter()
        .map(|record| record.status)
        .collect();
    (session.status, records)
}

fn machine_state(
    machine: &SyncSession,
    instances: &[InstanceId],
) -> (SessionStatus, Vec<RecordStatus>) {
    (
        machine.status(),
        instances
            .iter()
            .map(|id| machine.record(*id).expect("a record per instance").status)
            .collect(),
    )
}

/// A manual aggregation's session, as the tests open it.
fn manual_aggregation() -> NewSession {
    NewSession {
        sync_category: SyncCategory::Aggregation,
        sync_type: SyncType::ManualTask,
        triggered_by: "test".into(),
        parameters: serde_json::json!({}),
        job_id: None,
        requested_by_token_id: None,
    }
}

#[test]
fn stored_sessions_follow_the_state_machine() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    let instances: Vec<(InstanceId, String)> = (0..4)
        .map(|index| {
            let name = format!("instance-{index}");
            let instance = create_instance(
                &mut connection,
                &NewInstance {
                    name: name.clone(),
                    db_type: DbType::Postgresql,
                    host: None,
                    port: None,
                    description: None,
                },
            )
            .unwrap();
            (instance.id, name)
        })
        .collect();
    let ids: Vec<InstanceId> = instances.iter().map(|(id, _)| *id).collect();
    let new_session = manual_aggregation();
    let connection = std::cell::RefCell::new(connection);
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(
            &(any::<bool>(), prop::collection::vec(step(), 0..24)),
            |(start, steps)| {
                let mut connection = connection.borrow_mut();
                let connection = &mut *connection;
                let session_id =
                    sessions::create_session(connection, &new_session, &instances).unwrap();
                let mut machine = SyncSession::new(ids.iter().copied());
                // Some sessions are still pending (queued) when the requests arrive.
                if start {
                    sessions::start_session(connection, session_id, "test:1").unwrap();
                    machine.start().unwrap();
                }
                prop_assert_eq!(
                    stored_state(connection, session_id),
                    machine_state(&machine, &ids)
                );
                for step in &steps {
                    let instance = match step {
                        Step::StartRecord(index)
                        | Step::CompleteRecord(index)
                        | Step::FailRecord(index)
                        | Step::CancelRecord(index) => ids[*index],
                        _ => ids[0],
                    };
                    apply_stored(connection, session_id, instance, step);
                    apply_machine(&mut machine, instance, step);
                    prop_assert_eq!(
                        stored_state(connection, session_id),
                        machine_state(&machine, &ids),
                        "after {:?}",
                        step
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn recorded_progress_never_goes_back() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    let session_id = sessions::create_session(&mut connection, &manual_aggregation(), &[]).unwrap();
    sessions::start_session(&mut connection, session_id, "test:1").unwrap();
    let mut progress = |done| {
        sessions::record_progress(&mut connection, session_id, done, 10).unwrap();
        sessions::get_session(&mut connection, session_id)
            .unwrap()
            .progress_percentage
            .to_string()
    };
    assert_eq!(progress(4), "40.00");
    // Batch 3's report commits after batch 4's.
    assert_eq!(progress(3), "40.00");
    assert_eq!(progress(5), "50.00");
}
