//! What a notification tells: one [`Notice`] per change of an alert event's state, its title
//! and text lines (shared by every channel), and the JSON body of the generic webhook.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use capstats_capacity_model::{
    AggregationLevel, AlertContext, AlertMetric, Comparison, DbType, Decimal, PeriodType, Severity,
};

/// The change a notification tells of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    /// The key tripped the rule: an event opened.
    Open,
    /// The key no longer trips it (or left the rule's scope): the event resolved.
    Resolved,
}

/// An alert rule as a notification shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoticeRule {
    /// The rule's id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// How urgent it is.
    pub severity: Severity,
    /// Instances or databases.
    pub level: AggregationLevel,
    /// What it measures.
    pub metric: AlertMetric,
    /// Above or below.
    pub comparison: Comparison,
    /// The threshold (percent, days or MB as the metric measures), as a decimal string.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "20"))]
    pub threshold: Decimal,
    /// The periods of growth and size.
    pub period_type: PeriodType,
    /// How many periods the growth window has.
    pub periods: u16,
}

/// The instance or database an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoticeKey {
    /// The instance's id.
    pub instance_id: i64,
    /// Its name (absent when the instance was deleted meanwhile).
    pub instance_name: Option<String>,
    /// Its engine.
    pub db_type: Option<DbType>,
    /// The database (database-level rules).
    pub database_name: Option<String>,
}

/// The event as a notification shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoticeEvent {
    /// The event's id.
    pub id: i64,
    /// Its state after the change.
    pub state: NoticeState,
    /// The metric's value that tripped the rule (as last seen), as a decimal string.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "27.50"))]
    pub value: Decimal,
    /// The type of the value's period.
    pub period_type: Option<PeriodType>,
    /// The first day of the value's period.
    pub period_start: Option<NaiveDate>,
    /// Its last day.
    pub period_end: Option<NaiveDate>,
    /// When the key was first seen tripping the rule.
    pub first_seen_at: DateTime<Utc>,
    /// When it was last seen.
    pub last_seen_at: DateTime<Utc>,
    /// When the event resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Everything a notification tells; the generic webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notice {
    /// Unique per event, state change and channel, and equal in every attempt: a receiver
    /// drops a repeat after a crash mid-send by it. Also sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    /// The rule.
    pub rule: NoticeRule,
    /// The key.
    pub key: NoticeKey,
    /// The event.
    pub event: NoticeEvent,
    /// What grew, by how much, and what the forecast says (the fields known).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub context: AlertContext,
    /// One line saying it all, as the chat robots show it.
    pub summary: String,
    /// The capacity page with the filters that show the key.
    pub link: String,
}

fn unit(metric: AlertMetric) -> &'static str {
    match metric {
        AlertMetric::GrowthPercent => " %",
        AlertMetric::DaysUntilFull | AlertMetric::NoSamplesDays => " days",
        AlertMetric::SizeMb => " MB",
    }
}

impl Notice {
    /// The key as people name it: `orders on db-01` or `db-01`.
    pub fn key_text(&self) -> String {
        let instance = self
            .key
            .instance_name
            .clone()
            .unwrap_or_else(|| format!("instance {}", self.key.instance_id));
        match &self.key.database_name {
            Some(database) => format!("{database} on {instance}"),
            None => instance,
        }
    }

    /// What the metric measured, in words.
    fn measured(&self) -> String {
        let rule = &self.rule;
        match rule.metric {
            AlertMetric::GrowthPercent => format!(
                "growth over the last {} {} periods",
                rule.periods, rule.period_type
            ),
            AlertMetric::DaysUntilFull => "days until full".into(),
            AlertMetric::SizeMb => format!("size in the latest {} period", rule.period_type),
            AlertMetric::NoSamplesDays => "days without samples".into(),
        }
    }

    /// The title: state, severity, rule and key.
    pub fn title(&self) -> String {
        let state = match self.event.state {
            NoticeState::Open => "ALERT",
            NoticeState::Resolved => "RESOLVED",
        };
        format!(
            "[capstats {state} {}] {}: {}",
            self.rule.severity,
            self.rule.name,
            self.key_text()
        )
    }

    /// The text lines below the title: what happened, the sizes, the forecast, the link.
    pub fn lines(&self) -> Vec<String> {
        let rule = &self.rule;
        let unit = unit(rule.metric);
        let mut lines = vec![match self.event.state {
            NoticeState::Open => format!(
                "{} of {} is {}{unit}, {} the threshold of {}{unit}.",
                self.measured(),
                self.key_text(),
                self.event.value,
                rule.comparison,
                rule.threshold
            ),
            NoticeState::Resolved => format!(
                "{} of {} no longer trips the rule ({} {}{unit}); last value {}{unit}.",
                self.measured(),
                self.key_text(),
                rule.comparison,
                rule.threshold,
                self.event.value
            ),
        }];
        if let (Some(start), Some(end)) = (self.event.period_start, self.event.period_end) {
            lines.push(format!("Period: {start} to {end}."));
        }
        let context = &self.context;
        if let (Some(first), Some(last), Some(growth)) = (
            context.first_size_mb,
            context.last_size_mb,
            context.growth_mb,
        ) {
            let percent = context
                .growth_percent
                .map(|percent| format!(" ({percent:+} %)"))
                .unwrap_or_default();
            lines.push(format!(
                "Size: {first} MB to {last} MB, {growth:+} MB{percent}."
            ));
        }
        if let Some(day) = context.last_sample_day {
            lines.push(format!("Last sample: {day}."));
        }
        // A silent key has no forecast worth telling: its silence is the news.
        let forecast = match (context.projected_size_mb, context.horizon_days) {
            (Some(projected), Some(horizon)) => {
                let full = match (context.days_until_full, context.capacity_limit_mb) {
                    (Some(days), Some(limit)) => {
                        format!("; full ({limit} MB) in {days} days")
                    }
                    (None, Some(limit)) => format!("; not full ({limit} MB) within the horizon"),
                    _ => String::new(),
                };
                Some(format!("Forecast: {projected} MB in {horizon} days{full}."))
            }
            _ if rule.metric == AlertMetric::NoSamplesDays => None,
            _ => Some("Forecast: none published (too little or too irregular history).".into()),
        };
        lines.extend(forecast);
        lines.push(format!(
            "First seen {}, last seen {}.",
            self.event.first_seen_at.format("%Y-%m-%d %H:%M UTC"),
            self.event.last_seen_at.format("%Y-%m-%d %H:%M UTC")
        ));
        lines.push(format!("Details: {}", self.link));
        lines
    }

    /// The notice with its summary filled in: the title and the first line.
    pub fn summarized(mut self) -> Self {
        let first = self.lines().into_iter().next().unwrap_or_default();
        self.summary = format!("{} — {first}", self.title());
        self
    }

    /// Title and lines as plain text.
    pub fn plain_text(&self) -> String {
        std::iter::once(self.title())
            .chain(self.lines())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Title and lines as the chat robots' markdown. Names (of the rule, the instance, the
    /// database) come from people and monitored servers: their markdown characters are
    /// escaped, so that a database named `[x](https://…)` shows as text, not as a link.
    pub fn markdown(&self) -> String {
        let mut escaped = self.clone();
        escaped.rule.name = escape_markdown(&self.rule.name);
        escaped.key.instance_name = self.key.instance_name.as_deref().map(escape_markdown);
        escaped.key.database_name = self.key.database_name.as_deref().map(escape_markdown);
        let mut text = format!("### {}\n", escaped.title());
        for line in escaped.lines() {
            text.push_str("\n- ");
            text.push_str(&line);
        }
        text
    }
}

/// `text` with every character markdown gives a meaning preceded by a backslash.
fn escape_markdown(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if "\\`*_{}[]()<>#+-.!|~".contains(character) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_markdown;

    #[test]
    fn names_cannot_become_markdown_links() {
        assert_eq!(
            escape_markdown("[x](https://evil.example)"),
            "\\[x\\]\\(https://evil\\.example\\)"
        );
        assert_eq!(escape_markdown("orders_2026"), "orders\\_2026");
    }
}
