//! The content of each page. Elements the script fills carry ids; write controls are only
//! rendered for admins.

use capstats_capacity_model::{DbType, PeriodType};
use maud::{Markup, html};

/// Which capacity page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Per instance.
    Instance,
    /// Per database.
    Database,
}

impl Level {
    /// What one row is, in a sentence.
    fn noun(self) -> &'static str {
        match self {
            Self::Instance => "instance",
            Self::Database => "database",
        }
    }

    /// The key column's heading.
    fn heading(self) -> &'static str {
        match self {
            Self::Instance => "Instance",
            Self::Database => "Instance / database",
        }
    }
}

/// A summary card: the key the script fills it by, and its heading.
type Card = (&'static str, &'static str);

const INSTANCE_CARDS: [Card; 5] = [
    ("instance_count", "Instances"),
    ("total_size", "Total size"),
    ("database_count", "Databases"),
    ("growth", "Growth in the window"),
    ("days_until_full", "Fewest days until full"),
];

const DATABASE_CARDS: [Card; 5] = [
    ("database_count", "Databases"),
    ("total_size", "Total size"),
    ("growth", "Change in the window"),
    ("largest", "Largest database"),
    ("days_until_full", "Fewest days until full"),
];

/// The sortable columns of the growth table: API sort name and heading.
const GROWTH_SORTS: [(&str, &str); 3] = [
    ("growth_mb", "Growth"),
    ("growth_percent", "Growth %"),
    ("days_until_full", "Days until full"),
];

/// The four charts: key, heading, what the plotted values are.
const CHARTS: [(&str, &str, &str); 4] = [
    ("trend", "Size trend", "size per period in GiB"),
    (
        "change",
        "Size change",
        "change against the previous period in GiB",
    ),
    (
        "change-percent",
        "Change %",
        "change against the previous period in percent",
    ),
    (
        "yoy",
        "Change vs last year",
        "change against the same period a year earlier in percent",
    ),
];

fn db_type_label(db_type: DbType) -> &'static str {
    match db_type {
        DbType::Mysql => "MySQL",
        DbType::Postgresql => "PostgreSQL",
        DbType::Sqlserver => "SQL Server",
        DbType::Oracle => "Oracle",
    }
}

fn period_label(period_type: PeriodType) -> &'static str {
    match period_type {
        PeriodType::Daily => "Daily",
        PeriodType::Weekly => "Weekly",
        PeriodType::Monthly => "Monthly",
        PeriodType::Quarterly => "Quarterly",
        PeriodType::Yearly => "Yearly",
    }
}

fn period_options() -> Markup {
    html! {
        @for period_type in PeriodType::ALL {
            option value=(period_type.as_str()) selected[period_type == PeriodType::Daily] {
                (period_label(period_type))
            }
        }
    }
}

/// A labelled `<select>` of fixed choices (`(value, label)`), the first selected unless
/// `selected` names another.
fn choice(id: &str, label: &str, choices: &[(&str, &str)], selected: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(id) {
                @for (value, text) in choices {
                    option value=(value) selected[*value == selected] { (text) }
                }
            }
        }
    }
}

/// The login form; `next` is where to go afterwards (already checked to be local).
pub fn login(next: &str) -> Markup {
    html! {
        section.login-box aria-labelledby="login-title" {
            h1 id="login-title" { "Sign in to capstats" }
            noscript { p.error { "The capstats pages need JavaScript." } }
            form id="login-form" novalidate {
                input type="hidden" name="next" id="login-next" value=(next);
                div.field {
                    label for="username" { "Username" }
                    input id="username" name="username" type="text" autocomplete="username" required autofocus;
                }
                div.field {
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                }
                p.error id="login-error" role="alert" {}
                button type="submit" { "Sign in" }
            }
        }
    }
}

/// A capacity page: filters, aggregate now (admins), five summary cards, four charts, the
/// growth table.
pub fn capacity(level: Level, admin: bool) -> Markup {
    let (title, lead, cards) = match level {
        Level::Instance => (
            "Instance capacity",
            "Total size of each instance per period: the sum of its databases.",
            INSTANCE_CARDS,
        ),
        Level::Database => (
            "Database capacity",
            "Average size of each database per period.",
            DATABASE_CARDS,
        ),
    };
    html! {
        h1 { (title) }
        p.lead { (lead) " Sizes are binary units (1 GiB = 1024 MiB)." }
        form.filters id="filters" aria-label="Filters" {
            div.field {
                label for="filter-db-type" { "Database type" }
                select id="filter-db-type" name="db_type" multiple size="4" {
                    @for db_type in DbType::ALL {
                        option value=(db_type.as_str()) { (db_type_label(db_type)) }
                    }
                }
            }
            div.field {
                label for="filter-instance" { "Instance" }
                select id="filter-instance" name="instance_id" multiple size="4" aria-describedby="filter-instance-hint" {}
                p.hint id="filter-instance-hint" { "None chosen: every instance of the chosen types." }
            }
            @if level == Level::Database {
                div.field {
                    label for="filter-database" { "Database" }
                    select id="filter-database" name="database_name" disabled aria-describedby="filter-database-hint" {
                        option value="" { "All databases" }
                    }
                    p.hint id="filter-database-hint" { "Choose exactly one instance to pick one of its databases." }
                }
            }
            div.field {
                label for="filter-period" { "Period type" }
                select id="filter-period" name="period_type" { (period_options()) }
            }
            div.actions {
                button type="submit" { "Apply" }
                button.secondary type="button" id="filter-reset" { "Reset" }
            }
        }
        @if admin {
            section.panel id="aggregate-now" aria-labelledby="aggregate-title" {
                h2 id="aggregate-title" { "Aggregate now" }
                form.inline id="aggregate-form" {
                    (choice("aggregate-scope", "Scope", &[("all", "Instances and databases"), ("instance", "Instances only"), ("database", "Databases only")], "all"))
                    div.field {
                        label for="aggregate-period" { "Period type" }
                        select id="aggregate-period" name="aggregate-period" { (period_options()) }
                    }
                    div.actions { button type="submit" id="aggregate-submit" { "Aggregate now" } }
                }
                div.run-status id="aggregate-status" role="status" aria-live="polite" {}
            }
        }
        section.cards id="summary" aria-label="Summary" {
            @for (key, heading) in cards {
                div.card data-card=(key) {
                    h2 { (heading) }
                    p.value { "—" }
                    p.detail {}
                }
            }
        }
        p.state id="summary-state" role="status" {}
        @for (key, heading, description) in CHARTS {
            section.chart-panel id={ "chart-" (key) } data-chart=(key) aria-labelledby={ "chart-" (key) "-title" } {
                div.chart-head {
                    h2 id={ "chart-" (key) "-title" } { (heading) }
                    div.chart-controls {
                        (choice(&format!("{key}-kind"), "Chart", &[("line", "Line"), ("bar", "Bar")], "line"))
                        (choice(&format!("{key}-top"), "Show", &[("5", "Top 5"), ("10", "Top 10"), ("20", "Top 20")], "10"))
                        (choice(&format!("{key}-periods"), "Window", &[("7", "7 periods"), ("14", "14 periods"), ("30", "30 periods")], "14"))
                        (download_link(&format!("{heading}: the plotted points as CSV")))
                    }
                }
                p.state role="status" {}
                div.chart-box {
                    canvas role="img" aria-label={ (heading) ": " (description) } {}
                }
            }
        }
        section.chart-panel id="growth" aria-labelledby="growth-title" {
            div.chart-head {
                h2 id="growth-title" { "Growth and forecast" }
                div.chart-controls {
                    (choice("growth-periods", "Window", &[("4", "4 periods"), ("12", "12 periods"), ("24", "24 periods")], "12"))
                    (download_link("Growth and forecast: the rows shown as CSV"))
                }
            }
            p.hint { "Every " (level.noun()) " ranked over the window; sort by a column, again to reverse. Forecasts look 30 days ahead from the daily sizes (docs/forecasting.md)." }
            p.state id="growth-state" role="status" {}
            div.table-wrap {
                table id="growth-table" data-editable=[admin.then_some("true")] {
                    caption.visually-hidden { "Growth of each " (level.noun()) " over the window, with its forecast" }
                    thead {
                        tr {
                            th scope="col" { (level.heading()) }
                            th scope="col" { "Size" }
                            @for (sort, heading) in GROWTH_SORTS {
                                th scope="col" data-sort=(sort) aria-sort="none" {
                                    button.sort type="button" data-sort=(sort) { (heading) }
                                }
                            }
                            th scope="col" { "Forecast (30 days)" }
                        }
                    }
                    tbody {}
                }
            }
        }
    }
}

/// The run history; admins may queue a backfill.
pub fn sessions(admin: bool) -> Markup {
    html! {
        h1 { "Sync sessions" }
        p.lead { "Every aggregation and collection run, newest first, with one record per instance." }
        @if admin {
            section.panel id="backfill" aria-labelledby="backfill-title" {
                h2 id="backfill-title" { "Backfill" }
                p { "Compute every period of a type that starts in a date range, for every active instance, on a worker. It shows as a session below; cancel it there to stop between batches." }
                form.inline id="backfill-form" novalidate {
                    div.field {
                        label for="backfill-period" { "Period type" }
                        select id="backfill-period" name="period_type" { (period_options()) }
                    }
                    div.field {
                        label for="backfill-from" { "From" }
                        input id="backfill-from" name="from" type="date" aria-describedby="backfill-from-error";
                        p.error id="backfill-from-error" role="alert" {}
                    }
                    div.field {
                        label for="backfill-to" { "To" }
                        input id="backfill-to" name="to" type="date" aria-describedby="backfill-to-error";
                        p.error id="backfill-to-error" role="alert" {}
                    }
                    (choice("backfill-scope", "Scope", &[("all", "Instances and databases"), ("instance", "Instances only"), ("database", "Databases only")], "all"))
                    div.actions { button type="submit" id="backfill-submit" { "Queue backfill" } }
                }
                div.run-status id="backfill-status" role="status" aria-live="polite" {}
            }
        }
        form.filters id="session-filters" aria-label="Filters" {
            (choice("filter-status", "Status", &[("", "Any"), ("pending", "Pending"), ("running", "Running"), ("completed", "Completed"), ("failed", "Failed"), ("cancelled", "Cancelled")], ""))
            (choice("filter-category", "Category", &[("", "Any"), ("aggregation", "Aggregation"), ("capacity", "Capacity collection")], ""))
            (choice("filter-trigger", "Trigger", &[("", "Any"), ("scheduled_task", "Scheduled"), ("manual_task", "Manual")], ""))
            div.actions {
                button type="submit" { "Apply" }
                button.secondary type="button" id="filter-reset" { "Reset" }
            }
        }
        p.state id="sessions-state" role="status" {}
        p.table-actions { (download_link("Every session matching the filters (all pages) as CSV")) }
        (data_table(
            "sessions-table",
            "Sync sessions, newest first",
            &["Session", "Category", "Trigger", "Status", "Instances (ok / failed / total)", "Progress", "Started", "Duration"],
        ))
        nav.pager id="sessions-pager" aria-label="Pages" {
            button.secondary type="button" data-page-step="-1" { "Newer" }
            span.page-label {}
            button.secondary type="button" data-page-step="1" { "Older" }
        }
    }
}

/// One run with its records; admins may cancel it while it is queued or running.
pub fn session(id: i64, admin: bool) -> Markup {
    html! {
        p.back { a href="/sync-sessions" { "← All sync sessions" } }
        h1 id="session-title" data-session-id=(id) { "Sync session " (id) }
        p.state id="session-state" role="status" {}
        dl.summary id="session-summary" {}
        @if admin {
            div.actions {
                button.danger type="button" id="cancel-session" hidden { "Cancel this run" }
            }
        }
        div.chart-head {
            h2 { "Instances" }
            (download_link("The records of this session as CSV"))
        }
        (data_table(
            "records-table",
            "One record per instance",
            &["Instance", "Status", "Items", "Started", "Finished", "Error"],
        ))
    }
}

/// The scheduler's columns; the last, the actions, is for admins only.
const SCHEDULE_COLUMNS: [&str; 6] = [
    "Schedule", "Timing", "Next run", "Last run", "State", "Actions",
];

/// The schedules; admins may pause, resume, run now and edit the cron expression, time zone,
/// misfire policy and catch-up limit.
pub fn scheduler(admin: bool) -> Markup {
    html! {
        h1 { "Scheduler" }
        p.lead { "The worker's schedules. Cron expressions have 5 fields (minute first) or 6 (seconds first) and run in the schedule's time zone: a time skipped by a daylight-saving change fires at the first instant after the gap, a time that occurs twice fires at its first occurrence." }
        p.state id="scheduler-state" role="status" {}
        (data_table(
            "schedules-table",
            "Schedules",
            if admin { &SCHEDULE_COLUMNS } else { &SCHEDULE_COLUMNS[..5] },
        ))
    }
}

/// A text input with its label and the element its error is shown in.
fn text_field(id: &str, name: &str, label: &str, kind: &str, hint: Option<&str>) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) aria-describedby={ (id) "-error" } placeholder=[hint] spellcheck="false";
            p.error id={ (id) "-error" } role="alert" {}
        }
    }
}

/// Alerts: the events of every rule with their notifications' delivery, and for admins the
/// rules with a form to add one (one channel; more through the API or the command line).
pub fn alerts(admin: bool) -> Markup {
    html! {
        h1 { "Alerts" }
        p.lead { "Rules watch growth, days until full, size or silence of instances and databases after every aggregation run; each key that trips a rule opens an event, and every change of an event is sent once to each of the rule's channels." }
        p.state id="alerts-state" role="status" {}
        section.panel aria-labelledby="events-title" {
            h2 id="events-title" { "Events" }
            form.filters id="event-filters" aria-label="Event filters" {
                (choice("filter-event-state", "State", &[("", "Any"), ("open", "Open"), ("resolved", "Resolved")], ""))
                (choice("filter-event-severity", "Severity", &[("", "Any"), ("info", "Info"), ("warning", "Warning"), ("critical", "Critical")], ""))
                div.actions { button type="submit" { "Apply" } }
            }
            (data_table(
                "events-table",
                "Alert events, most recently seen first",
                &["State", "Rule", "Key", "Value", "Period", "First seen", "Last seen", "Notifications"],
            ))
        }
        @if admin {
            section.panel aria-labelledby="rules-title" {
                h2 id="rules-title" { "Rules" }
                (data_table(
                    "rules-table",
                    "Alert rules",
                    &["Rule", "Level", "Condition", "Scope", "Severity", "Channels", "Actions"],
                ))
            }
            section.panel id="add-rule" aria-labelledby="add-rule-title" {
                h2 id="add-rule-title" { "Add a rule" }
                p { "Channel URLs and secrets are stored sealed and never shown again (editing a rule asks for them again); a webhook is signed with HMAC-SHA256 when a secret is given, DingTalk and Feishu robots with their own signatures." }
                form.inline id="rule-form" novalidate {
                    (text_field("rule-name", "name", "Name", "text", None))
                    (choice("rule-level", "Level", &[("instance", "Instances"), ("database", "Databases")], "instance"))
                    (choice("rule-metric", "Metric", &[("growth_percent", "Growth %"), ("days_until_full", "Days until full"), ("size_mb", "Size (MB)"), ("no_samples_days", "Days without samples")], "growth_percent"))
                    (choice("rule-comparison", "Fires", &[("above", "Above"), ("below", "Below")], "above"))
                    (text_field("rule-threshold", "threshold", "Threshold", "number", None))
                    div.field {
                        label for="rule-period-type" { "Period type" }
                        select id="rule-period-type" name="period_type" aria-describedby="rule-period-type-error" {
                            option value="" selected { "Default" }
                            (period_options_plain())
                        }
                        p.error id="rule-period-type-error" role="alert" {}
                    }
                    (text_field("rule-periods", "periods", "Periods", "number", Some("default")))
                    (text_field("rule-db-types", "db_types", "Engines", "text", Some("all, or mysql, postgresql")))
                    (text_field("rule-instance-ids", "instance_ids", "Instance ids", "text", Some("all, or 1, 2")))
                    (text_field("rule-database-names", "database_names", "Database names", "text", Some("all, or orders, users")))
                    (choice("rule-severity", "Severity", &[("info", "Info"), ("warning", "Warning"), ("critical", "Critical")], "warning"))
                    (choice("rule-channel-kind", "Channel", &[("webhook", "Webhook"), ("dingtalk", "DingTalk"), ("wecom", "WeCom"), ("feishu", "Feishu"), ("email", "E-mail")], "webhook"))
                    (text_field("rule-channel-target", "target", "URL or address", "text", None))
                    (text_field("rule-channel-secret", "secret", "Secret (optional)", "password", None))
                    div.actions {
                        button type="submit" id="rule-submit" { "Add rule" }
                        button.secondary type="button" id="rule-cancel-edit" hidden { "Cancel editing" }
                    }
                    p.error id="rule-form-error" role="alert" {}
                }
            }
        }
    }
}

/// The period types as options, none selected.
fn period_options_plain() -> Markup {
    html! {
        @for period_type in PeriodType::ALL {
            option value=(period_type.as_str()) { (period_label(period_type)) }
        }
    }
}

/// A table the script fills: its caption (for screen readers) and column headings.
/// A "Download CSV" link, hidden until the page's script points it at the view's export
/// (`format=csv` with the filters of what is shown); `label` says what it downloads.
fn download_link(label: &str) -> Markup {
    html! {
        a.download href="#" data-download download hidden aria-label={ "Download CSV: " (label) } title=(label) { "Download CSV" }
    }
}

fn data_table(id: &str, caption: &str, headings: &[&str]) -> Markup {
    html! {
        div.table-wrap {
            table id=(id) {
                caption.visually-hidden { (caption) }
                thead {
                    tr {
                        @for heading in headings {
                            th scope="col" { (heading) }
                        }
                    }
                }
                tbody {}
            }
        }
    }
}

/// The body of a page that failed before it could be built.
pub fn failure(message: &str) -> Markup {
    html! {
        h1 { "Something went wrong" }
        p.error role="alert" { (message) }
        p { a href="/" { "Back to capstats" } }
    }
}
