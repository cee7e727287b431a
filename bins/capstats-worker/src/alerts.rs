//! `capstats-worker alerts …`: alert rules from JSON files (the API's body), and the events
//! their evaluations opened.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use capstats_capacity_model::{AlertRuleInput, AlertRuleSpec, Comparison, Severity};
use capstats_settings::Settings;
use capstats_store::alerts::{EventFilter, StoredRule};
use clap::{Subcommand, ValueEnum};

use crate::output;

/// `capstats-worker alerts …`
#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Manage alert rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Send a notification that failed for good again (its id is in `alerts events`), with a
    /// fresh attempt budget, on the workers.
    RetryNotification {
        /// The notification's id.
        id: i64,
    },
    /// List alert events, most recently seen first, with their notifications' delivery.
    Events {
        /// Only open or only resolved events.
        #[arg(long, value_enum)]
        state: Option<EventState>,
        /// Only events of this rule.
        #[arg(long)]
        rule: Option<i64>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

/// `capstats-worker alerts rules …`
#[derive(Subcommand)]
pub enum RulesCommand {
    /// List the rules (channel URLs as scheme and host only, secrets never).
    List,
    /// Add a rule from a JSON file (`-`: standard input) with the body of
    /// `POST /api/v1/alerts/rules` (docs/alerts.md).
    Add {
        /// The rule's JSON.
        file: PathBuf,
    },
    /// Replace rule ID, channels included, from a JSON file (`-`: standard input).
    Replace {
        /// The rule's id.
        id: i64,
        /// The rule's JSON.
        file: PathBuf,
    },
    /// Delete rule ID with its events.
    Delete {
        /// The rule's id.
        id: i64,
    },
}

/// The state of an event.
#[derive(Clone, Copy, ValueEnum)]
pub enum EventState {
    /// Still tripping its rule.
    Open,
    /// No longer.
    Resolved,
}

/// Reads a rule body, refusing fields the body does not have, and checks it; every problem
/// is named by its field.
fn read_rule(file: &Path) -> anyhow::Result<AlertRuleSpec> {
    let mut text = String::new();
    if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    }
    let mut unknown = Vec::new();
    let input: AlertRuleInput =
        serde_ignored::deserialize(&mut serde_json::Deserializer::from_str(&text), |path| {
            unknown.push(path.to_string())
        })
        .with_context(|| format!("{} is not a rule's JSON", file.display()))?;
    if !unknown.is_empty() {
        bail!(
            "{}: not fields of a rule: {}",
            file.display(),
            unknown.join(", ")
        );
    }
    input.into_spec().map_err(|problems| {
        anyhow::anyhow!(
            "{}: {}",
            file.display(),
            problems
                .iter()
                .map(|problem| format!("{}: {}", problem.field, problem.message))
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

fn print_rules(rules: &[StoredRule]) {
    output::table(
        &[
            "id",
            "name",
            "level",
            "condition",
            "scope",
            "severity",
            "channels",
        ],
        rules
            .iter()
            .map(|rule| {
                let fields = &rule.fields;
                let condition = &fields.condition;
                let comparison = match condition.comparison {
                    Comparison::Above => ">",
                    Comparison::Below => "<",
                };
                let scope = &fields.scope;
                let mut narrowing = Vec::new();
                if !scope.db_types.is_empty() {
                    narrowing.push(format!(
                        "engines {:?}",
                        scope
                            .db_types
                            .iter()
                            .map(|db_type| db_type.as_str())
                            .collect::<Vec<_>>()
                    ));
                }
                if !scope.instance_ids.is_empty() {
                    narrowing.push(format!(
                        "instances {:?}",
                        scope.instance_ids.iter().map(|id| id.0).collect::<Vec<_>>()
                    ));
                }
                if !scope.database_names.is_empty() {
                    narrowing.push(format!("databases {:?}", scope.database_names));
                }
                vec![
                    rule.id.to_string(),
                    fields.name.clone(),
                    fields.level.to_string(),
                    format!(
                        "{} {comparison} {} ({} × {})",
                        condition.metric,
                        condition.threshold,
                        condition.periods,
                        condition.period_type
                    ),
                    if narrowing.is_empty() {
                        "all".into()
                    } else {
                        narrowing.join(", ")
                    },
                    fields.severity.to_string(),
                    rule.channels
                        .iter()
                        .map(|channel| format!("{} {}", channel.kind, channel.display_target))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ]
            })
            .collect(),
    );
}

/// Runs an alerts subcommand.
pub async fn alerts(settings: &Settings, command: AlertsCommand) -> anyhow::Result<()> {
    let store = capstats_store::build_pool(
        &settings.database_url,
        2,
        settings.database_connect_timeout(),
    )
    .context("connecting to DATABASE_URL")?;
    capstats_store::run_blocking(&store, capstats_store::migrations::ensure_current).await?;
    let key = || {
        capstats_services::collection::credential_keys(settings)?
            .map(|keys| keys.current().clone())
            .context("CAPSTATS_CREDENTIAL_KEY is not set: channel URLs and secrets are stored sealed with it")
    };
    match command {
        AlertsCommand::Rules(RulesCommand::List) => {
            let rules =
                capstats_store::run_blocking(&store, capstats_store::alerts::list_rules).await?;
            print_rules(&rules);
        }
        AlertsCommand::Rules(RulesCommand::Add { file }) => {
            let spec = read_rule(&file)?;
            let key = key()?;
            let rule = capstats_store::run_blocking(&store, move |connection| {
                capstats_services::alerts::create_rule(connection, &key, &spec)
            })
            .await?;
            println!("alert rule {} created", rule.id);
            print_rules(&[rule]);
        }
        AlertsCommand::Rules(RulesCommand::Replace { id, file }) => {
            let spec = read_rule(&file)?;
            let key = key()?;
            let rule = capstats_store::run_blocking(&store, move |connection| {
                capstats_services::alerts::replace_rule(connection, &key, id, &spec)
            })
            .await?;
            println!("alert rule {id} replaced");
            print_rules(&[rule]);
        }
        AlertsCommand::Rules(RulesCommand::Delete { id }) => {
            capstats_store::run_blocking(&store, move |connection| {
                capstats_services::alerts::delete_rule(connection, id)
            })
            .await?;
            println!("alert rule {id} deleted");
        }
        AlertsCommand::RetryNotification { id } => {
            // The job store first: a notification made pending while its job cannot be pushed
            // would wait for the sweeper.
            let queue = capstats_queue::PostgresQueue::connect(
                &settings.database_url,
                2,
                settings.job_max_attempts,
            )
            .await?;
            let failed = capstats_store::run_blocking(&store, move |connection| {
                capstats_store::alerts::retry_notification(connection, id)
            })
            .await?;
            if !failed {
                bail!(
                    "notification {id} is not failed (only a notification that failed for good is \
                     sent again; a pending one is still being tried)"
                );
            }
            let dispatched =
                capstats_services::alerts::dispatch_notifications(&store, &queue).await?;
            println!("notification {id} is pending again; {dispatched} deliveries enqueued");
        }
        AlertsCommand::Events { state, rule, limit } => {
            let filter = EventFilter {
                state: state.map(|state| match state {
                    EventState::Open => "open".to_owned(),
                    EventState::Resolved => "resolved".to_owned(),
                }),
                rule_id: rule,
                instance_id: None,
                severity: None::<Severity>,
            };
            let (events, notifications, total) =
                capstats_store::run_blocking(&store, move |connection| {
                    let (events, total) =
                        capstats_store::alerts::list_events(connection, &filter, limit.max(1), 0)?;
                    let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
                    let notifications = capstats_store::alerts::notifications_of(connection, &ids)?;
                    Ok::<_, capstats_store::StoreError>((events, notifications, total))
                })
                .await?;
            output::table(
                &[
                    "id",
                    "state",
                    "rule",
                    "key",
                    "value",
                    "first seen",
                    "last seen",
                    "notifications",
                ],
                events
                    .iter()
                    .map(|event| {
                        let instance = event
                            .instance_name
                            .clone()
                            .unwrap_or_else(|| format!("instance {}", event.instance_id));
                        let own: Vec<String> = notifications
                            .iter()
                            .filter(|(event_id, _)| *event_id == event.id)
                            .map(|(_, notification)| {
                                format!(
                                    "#{} {} {} {} ({} attempts{})",
                                    notification.id,
                                    notification.event_state,
                                    notification.channel_kind,
                                    notification.status,
                                    notification.attempts,
                                    notification
                                        .last_error
                                        .as_ref()
                                        .map(|error| format!("; last error: {error}"))
                                        .unwrap_or_default()
                                )
                            })
                            .collect();
                        vec![
                            event.id.to_string(),
                            event.state.clone(),
                            format!("{} ({})", event.rule_name, event.severity),
                            match &event.database_name {
                                Some(database) => format!("{database} on {instance}"),
                                None => instance,
                            },
                            event.value.to_string(),
                            output::time(Some(event.first_seen_at)),
                            output::time(Some(event.last_seen_at)),
                            own.join("\n"),
                        ]
                    })
                    .collect(),
            );
            println!("{} of {total} events", events.len());
        }
    }
    Ok(())
}
