//! Loading size history from CSV.
//!
//! The file has the header
//! `instance_name,db_type,database_name,collected_date,size_mb,data_size_mb,log_size_mb`
//! (columns in any order; empty data/log sizes mean "not reported"). The whole file is parsed
//! and checked before anything is written, and a file with any problem is rejected whole with
//! the line numbers and reasons.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;

use capstats_store::Connection;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use capstats_capacity_model::{DatabaseSizeSample, DbType, InstanceId, SampleDates};
use capstats_store::instances::{self, NewInstance};
use capstats_store::partitions::{PartitionedTable, ensure_partitions};
use capstats_store::samples::{NewDatabaseSample, WriteSummary, write_database_samples};

use crate::{Progress, ServiceError};

/// The columns a stats file must have.
pub const COLUMNS: [&str; 7] = [
    "instance_name",
    "db_type",
    "database_name",
    "collected_date",
    "size_mb",
    "data_size_mb",
    "log_size_mb",
];

/// How many problems a rejection lists before summarising the rest.
const PROBLEMS_LISTED: usize = 20;

/// One problem at one line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number (the header is line 1).
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// The problems that made a file be rejected, in line order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportProblems {
    /// The first problems found (at most 20).
    pub problems: Vec<LineProblem>,
    /// How many problems there were in all.
    pub total: usize,
}

impl fmt::Display for ImportProblems {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.first() {
            None => formatter.write_str("the file was rejected"),
            Some(first) => {
                write!(formatter, "line {}: {}", first.line, first.reason)?;
                if self.total > 1 {
                    write!(
                        formatter,
                        " (and {} more problem{}; nothing was imported)",
                        self.total - 1,
                        if self.total == 2 { "" } else { "s" }
                    )
                } else {
                    formatter.write_str(" (nothing was imported)")
                }
            }
        }
    }
}

/// Collects problems, keeping the first few.
#[derive(Default)]
struct Problems {
    listed: Vec<LineProblem>,
    total: usize,
}

impl Problems {
    fn push(&mut self, line: u64, reason: impl Into<String>) {
        self.total += 1;
        if self.listed.len() < PROBLEMS_LISTED {
            self.listed.push(LineProblem {
                line,
                reason: reason.into(),
            });
        }
    }

    fn into_result(mut self) -> Result<(), ImportProblems> {
        if self.total == 0 {
            return Ok(());
        }
        self.listed.sort_by_key(|problem| problem.line);
        Err(ImportProblems {
            problems: self.listed,
            total: self.total,
        })
    }
}

/// One parsed and checked line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsLine {
    /// Its line number.
    pub line: u64,
    /// The instance's name.
    pub instance_name: String,
    /// The instance's engine.
    pub db_type: DbType,
    /// The database's name.
    pub database_name: String,
    /// The business date.
    pub collected_date: NaiveDate,
    /// Total size in MB.
    pub size_mb: i64,
    /// Data size in MB, if given.
    pub data_size_mb: Option<i64>,
    /// Log size in MB, if given.
    pub log_size_mb: Option<i64>,
}

fn parse_size(field: &str, text: &str, required: bool) -> Result<Option<i64>, String> {
    if text.is_empty() {
        return if required {
            Err(format!("{field} is empty; a size in whole MB is required"))
        } else {
            Ok(None)
        };
    }
    text.parse::<i64>()
        .map(Some)
        .map_err(|_| format!("{field} `{text}` is not a whole number of MB"))
}

/// Parses and checks a whole stats file. Samples must lie within `dates`: not after the
/// current business date, not before the first day the sample retention keeps. Returns every
/// line, or every problem (line number and reason), including
/// duplicate `(instance, database, date)` keys.
pub fn parse_stats_csv(
    reader: impl Read,
    dates: SampleDates,
    progress: &dyn Progress,
) -> Result<Vec<StatsLine>, ServiceError> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|error| ImportProblems {
            problems: vec![LineProblem {
                line: 1,
                reason: format!("cannot read the header: {error}"),
            }],
            total: 1,
        })?
        .clone();
    // Columns may come in any order, but each exactly once and none other: an unknown name
    // is a misspelling or a different export, whose values must not be read as ours.
    let mut positions = HashMap::new();
    let mut header_problems = Vec::new();
    for (index, name) in headers.iter().enumerate() {
        if !COLUMNS.contains(&name) {
            header_problems.push(format!("unknown column `{name}`"));
        } else if positions.insert(name.to_owned(), index).is_some() {
            header_problems.push(format!("column `{name}` appears twice"));
        }
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|column| !positions.contains_key(*column))
        .collect();
    if !missing.is_empty() {
        header_problems.insert(0, format!("the header lacks {}", missing.join(", ")));
    }
    if !header_problems.is_empty() {
        return Err(ImportProblems {
            problems: vec![LineProblem {
                line: 1,
                reason: format!(
                    "{}; expected {}",
                    header_problems.join(", "),
                    COLUMNS.join(",")
                ),
            }],
            total: 1,
        }
        .into());
    }

    progress.begin(0, "reading");
    let mut problems = Problems::default();
    let mut lines = Vec::new();
    let mut first_line_of_key: HashMap<(String, String, NaiveDate), u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line() + 1;
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                problems.push(line, format!("cannot read the line: {error}"));
                break;
            }
        }
        let line = record.position().map_or(line, |position| position.line());
        progress.advance(1);
        if record.len() != headers.len() {
            problems.push(
                line,
                format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    headers.len()
                ),
            );
            continue;
        }
        match parse_line(line, &record, &positions, dates) {
            Ok(parsed) => {
                let key = (
                    parsed.instance_name.clone(),
                    parsed.database_name.clone(),
                    parsed.collected_date,
                );
                if let Some(first) = first_line_of_key.get(&key) {
                    problems.push(
                        line,
                        format!("duplicate of line {first} (same instance, database and date)"),
                    );
                } else {
                    first_line_of_key.insert(key, line);
                    lines.push(parsed);
                }
            }
            Err(reason) => problems.push(line, reason),
        }
    }
    progress.finish();
    if lines.is_empty() && problems.total == 0 {
        problems.push(2, "the file has no data lines");
    }
    problems.into_result()?;
    Ok(lines)
}

fn parse_line(
    line: u64,
    record: &csv::StringRecord,
    positions: &HashMap<String, usize>,
    dates: SampleDates,
) -> Result<StatsLine, String> {
    let field = |name: &str| {
        positions
            .get(name)
            .and_then(|index| record.get(*index))
            .unwrap_or_default()
    };
    let instance_name = field("instance_name");
    if instance_name.is_empty() {
        return Err("instance_name is empty".into());
    }
    let db_type: DbType = field("db_type")
        .parse()
        .map_err(|error| format!("{error}"))?;
    let date_text = field("collected_date");
    let collected_date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d")
        .map_err(|_| format!("collected_date `{date_text}` is not a date like 2025-01-31"))?;
    let sample = DatabaseSizeSample {
        instance_id: InstanceId(0),
        database_name: field("database_name").to_owned(),
        collected_date,
        size_mb: parse_size("size_mb", field("size_mb"), true)?.unwrap_or_default(),
        data_size_mb: parse_size("data_size_mb", field("data_size_mb"), false)?,
        log_size_mb: parse_size("log_size_mb", field("log_size_mb"), false)?,
    };
    sample.validate(dates).map_err(|error| error.to_string())?;
    Ok(StatsLine {
        line,
        instance_name: instance_name.to_owned(),
        db_type,
        database_name: sample.database_name,
        collected_date,
        size_mb: sample.size_mb,
        data_size_mb: sample.data_size_mb,
        log_size_mb: sample.log_size_mb,
    })
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines imported.
    pub lines: usize,
    /// Instances created (with `--create-instances`).
    pub instances_created: Vec<String>,
    /// Rows changed in the database.
    pub written: WriteSummary,
}

/// The start of `date` in the business time zone, used as `collected_at` for history that
/// has no time of day.
pub fn start_of_business_day(date: NaiveDate, time_zone: Tz) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    time_zone
        .from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |local| local.with_timezone(&Utc))
}

/// Writes checked lines: matches instances by name (creating unknown ones when
/// `create_instances` is set), upserts the samples and derives instance totals and inventory —
/// all in one transaction. Instance problems (unknown name, engine mismatch) reject the whole
/// file before anything is written.
pub fn import_stats(
    connection: &mut capstats_store::PgConnection,
    lines: &[StatsLine],
    create_instances: bool,
    time_zone: Tz,
    progress: &dyn Progress,
) -> Result<ImportReport, ServiceError> {
    let mut names: Vec<String> = lines
        .iter()
        .map(|line| line.instance_name.clone())
        .collect();
    names.sort();
    names.dedup();
    let known: HashMap<String, (InstanceId, DbType)> =
        instances::find_by_names(connection, &names)?
            .into_iter()
            .map(|instance| (instance.name, (instance.id, instance.db_type)))
            .collect();

    // Check every line's instance before writing: unknown names, engines that contradict the
    // stored instance or each other.
    let mut problems = Problems::default();
    let mut to_create: BTreeMap<String, (DbType, u64)> = BTreeMap::new();
    for line in lines {
        match known.get(&line.instance_name) {
            Some((_, db_type)) if *db_type != line.db_type => problems.push(
                line.line,
                format!(
                    "instance `{}` is {} but the line says {}",
                    line.instance_name, db_type, line.db_type
                ),
            ),
            Some(_) => {}
            None if !create_instances => problems.push(
                line.line,
                format!(
                    "unknown instance `{}`; create it first or pass --create-instances",
                    line.instance_name
                ),
            ),
            None => match to_create.get(&line.instance_name) {
                Some((db_type, first)) if *db_type != line.db_type => problems.push(
                    line.line,
                    format!(
                        "instance `{}` is {} on line {first} but {} here",
                        line.instance_name, db_type, line.db_type
                    ),
                ),
                Some(_) => {}
                None => {
                    to_create.insert(line.instance_name.clone(), (line.db_type, line.line));
                }
            },
        }
    }
    problems.into_result()?;

    // Partitions first, outside the write transaction (see capstats_store::partitions).
    ensure_partitions(
        connection,
        &PartitionedTable::SAMPLES,
        lines.iter().map(|line| line.collected_date),
    )?;
    progress.begin(lines.len() as u64, "writing");
    let report = connection.transaction(|connection| {
        let mut ids: HashMap<String, InstanceId> = known
            .iter()
            .map(|(name, (id, _))| (name.clone(), *id))
            .collect();
        for (name, (db_type, _)) in &to_create {
            let created = instances::create_instance(
                connection,
                &NewInstance {
                    name: name.clone(),
                    db_type: *db_type,
                    host: None,
                    port: None,
                    description: Some("created by capstats-worker import-stats".into()),
                },
            )?;
            ids.insert(name.clone(), created.id);
        }
        let samples: Vec<NewDatabaseSample> = lines
            .iter()
            .map(|line| NewDatabaseSample {
                sample: DatabaseSizeSample {
                    instance_id: ids[&line.instance_name],
                    database_name: line.database_name.clone(),
                    collected_date: line.collected_date,
                    size_mb: line.size_mb,
                    data_size_mb: line.data_size_mb,
                    log_size_mb: line.log_size_mb,
                },
                collected_at: start_of_business_day(line.collected_date, time_zone),
            })
            .collect();
        // One write: it marks every touched period in one statement, the lock order that keeps
        // sample writers and computations free of deadlocks (see capstats_store::ledger). Written in
        // chunks, a later chunk could lock periods that sort before ones an earlier chunk holds.
        let written = write_database_samples(connection, &samples)?;
        Ok::<_, capstats_store::StoreError>(ImportReport {
            lines: lines.len(),
            instances_created: to_create.keys().cloned().collect(),
            written,
        })
    })?;
    progress.advance(lines.len() as u64);
    progress.finish();
    Ok(report)
}
