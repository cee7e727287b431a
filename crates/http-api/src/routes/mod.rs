//! The handlers of `/api/v1`, by area.

pub mod alerts;
pub mod auth;
pub mod capacity;
pub mod health;
pub mod ingest;
pub mod instances;
pub mod partitions;
pub mod runs;
pub mod scheduler;
pub mod users;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every handler (relative to `/api/v1`).
pub fn configure(config: &mut ServiceConfig) {
    config
        .service(health::live)
        .service(health::ready)
        .service(auth::login)
        .service(auth::logout)
        .service(auth::me)
        .service(auth::csrf_token)
        .service(auth::change_password)
        .service(auth::list_tokens)
        .service(auth::create_token)
        .service(auth::revoke_token)
        .service(capacity::list_instances)
        .service(capacity::instances_summary)
        .service(capacity::instances_series)
        .service(capacity::list_databases)
        .service(capacity::databases_summary)
        .service(capacity::databases_series)
        .service(capacity::instances_growth)
        .service(capacity::databases_growth)
        .service(capacity::instances_forecast)
        .service(capacity::databases_forecast)
        .service(ingest::ingest_stats)
        .service(runs::aggregate_now)
        .service(runs::backfill)
        .service(runs::list_sessions)
        .service(runs::get_session)
        .service(runs::cancel_session)
        .service(scheduler::list_schedules)
        .service(scheduler::reload_schedules)
        .service(scheduler::get_schedule)
        .service(scheduler::update_schedule)
        .service(scheduler::schedule_action)
        .service(partitions::list_partitions)
        .service(partitions::partition_info)
        .service(partitions::partition_statistics)
        .service(partitions::core_metrics)
        .service(partitions::create_partitions)
        .service(partitions::partition_status)
        .service(partitions::cleanup)
        .service(instances::instance_options)
        .service(instances::database_options)
        .service(instances::set_database_capacity_limit)
        .service(instances::list_instances)
        .service(instances::create_instance)
        .service(instances::get_instance)
        .service(instances::update_instance)
        .service(instances::delete_instance)
        .service(instances::collect_instance)
        .service(users::list_users)
        .service(users::create_user)
        .service(users::update_user)
        .service(users::end_sessions)
        .service(users::list_audit_events)
        .service(alerts::list_rules)
        .service(alerts::create_rule)
        .service(alerts::get_rule)
        .service(alerts::replace_rule)
        .service(alerts::delete_rule)
        .service(alerts::list_events);
}
