//! Errors raised when user input does not describe a valid domain value.

use chrono::NaiveDate;

/// Why a piece of input was rejected. Each variant names the offending field (see
/// [`ValidationError::field`]) so that callers can report field-level errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The text is not one of the period type names.
    #[error("unknown period type `{0}`; expected one of daily, weekly, monthly, quarterly, yearly")]
    UnknownPeriodType(String),
    /// The text is not one of the supported database engines.
    #[error("unknown database type `{0}`; expected one of mysql, postgresql, sqlserver, oracle")]
    UnknownDbType(String),
    /// The text is not one of the TLS modes of collector connections.
    #[error("unknown TLS mode `{0}`; expected one of disable, require, verify-full")]
    UnknownTlsMode(String),
    /// The text is not an aggregation level.
    #[error("unknown aggregation level `{0}`; expected database or instance")]
    UnknownAggregationLevel(String),
    /// The text is not a trend direction.
    #[error("unknown trend direction `{0}`; expected growing, shrinking or stable")]
    UnknownTrendDirection(String),
    /// A date was given as the start of a period but no period of that type starts on it.
    #[error("{date} is not the first day of a {period_type} period")]
    NotAPeriodStart {
        /// The period type's name.
        period_type: &'static str,
        /// The rejected date.
        date: NaiveDate,
    },
    /// The date lies outside the range capstats supports.
    #[error("{date} is outside the supported date range {earliest} to {latest}")]
    DateOutOfRange {
        /// The rejected date.
        date: NaiveDate,
        /// First supported date.
        earliest: NaiveDate,
        /// Last supported date.
        latest: NaiveDate,
    },
    /// A collected date lies after today in the business time zone.
    #[error("collected date {date} is in the future (today is {today} in the business time zone)")]
    DateInFuture {
        /// The rejected date.
        date: NaiveDate,
        /// Today in the business time zone.
        today: NaiveDate,
    },
    /// A collected date lies before the first day the sample retention keeps.
    #[error(
        "collected date {date} is before the sample retention: samples are kept from {kept_from} \
         (CAPSTATS_SAMPLE_RETENTION_MONTHS), older ones would be dropped by the next maintenance"
    )]
    DateBeforeRetention {
        /// The rejected date.
        date: NaiveDate,
        /// The first day kept.
        kept_from: NaiveDate,
    },
    /// A range whose start lies after its end.
    #[error("the start {start} lies after the end {end}")]
    StartAfterEnd {
        /// Start of the range.
        start: NaiveDate,
        /// End of the range.
        end: NaiveDate,
    },
    /// The database name is empty or only whitespace.
    #[error("database name must not be empty")]
    EmptyDatabaseName,
    /// The database name is longer than the schema allows.
    #[error("database name has {length} characters; at most {maximum} are allowed")]
    DatabaseNameTooLong {
        /// Length of the rejected name in characters.
        length: usize,
        /// The maximum length.
        maximum: usize,
    },
    /// A size is negative.
    #[error("{field} must not be negative, got {value}")]
    NegativeSize {
        /// Name of the size field.
        field: &'static str,
        /// The rejected value.
        value: i64,
    },
    /// A text holds a character that could hide or disguise what it says: a control character
    /// (NUL included) or a bidirectional formatting character.
    #[error(
        "{field} must not contain the character U+{code_point:04X} (control or bidirectional formatting characters are refused)"
    )]
    UnsafeCharacter {
        /// Name of the text field.
        field: &'static str,
        /// The refused character's code point.
        code_point: u32,
    },
    /// A size beyond what capstats stores and sums safely.
    #[error("{field} is {value} MiB; at most {maximum} MiB (1 EiB) are accepted")]
    SizeTooLarge {
        /// Name of the size field.
        field: &'static str,
        /// The rejected value.
        value: i64,
        /// The largest accepted value.
        maximum: i64,
    },
    /// The text is not one of a field's names.
    #[error("unknown {field} `{value}`; expected {expected}")]
    UnknownChoice {
        /// The field.
        field: &'static str,
        /// The rejected text.
        value: String,
        /// The names it may be.
        expected: &'static str,
    },
    /// The data or log part of a database is larger than the database.
    #[error("{field} ({value}) is larger than size_mb ({total})")]
    PartExceedsTotal {
        /// Name of the part field.
        field: &'static str,
        /// The part's value.
        value: i64,
        /// The total size.
        total: i64,
    },
}

impl ValidationError {
    /// The name of the input field the error is about, as used in files and JSON bodies.
    pub fn field(&self) -> &'static str {
        match self {
            Self::UnknownPeriodType(_) => "period_type",
            Self::UnknownDbType(_) => "db_type",
            Self::UnknownTlsMode(_) => "tls_mode",
            Self::UnknownAggregationLevel(_) => "level",
            Self::UnknownTrendDirection(_) => "trend_direction",
            Self::NotAPeriodStart { .. } => "period_start",
            Self::DateOutOfRange { .. }
            | Self::DateInFuture { .. }
            | Self::DateBeforeRetention { .. } => "collected_date",
            Self::StartAfterEnd { .. } => "start_date",
            Self::EmptyDatabaseName | Self::DatabaseNameTooLong { .. } => "database_name",
            Self::NegativeSize { field, .. }
            | Self::PartExceedsTotal { field, .. }
            | Self::UnsafeCharacter { field, .. }
            | Self::SizeTooLarge { field, .. }
            | Self::UnknownChoice { field, .. } => field,
        }
    }

    /// A stable machine-readable code for the kind of problem.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownPeriodType(_)
            | Self::UnknownDbType(_)
            | Self::UnknownTlsMode(_)
            | Self::UnknownAggregationLevel(_)
            | Self::UnknownTrendDirection(_)
            | Self::UnknownChoice { .. } => "invalid_choice",
            Self::NotAPeriodStart { .. } => "not_a_period_start",
            Self::DateOutOfRange { .. } => "date_out_of_range",
            Self::DateInFuture { .. } => "date_in_future",
            Self::DateBeforeRetention { .. } => "before_retention",
            Self::StartAfterEnd { .. } => "start_after_end",
            Self::EmptyDatabaseName => "required",
            Self::DatabaseNameTooLong { .. } => "too_long",
            Self::NegativeSize { .. } => "negative",
            Self::PartExceedsTotal { .. } => "exceeds_total",
            Self::UnsafeCharacter { .. } => "unsafe_character",
            Self::SizeTooLarge { .. } => "out_of_range",
        }
    }
}

/// Whether `character` is refused in names: control characters (C0 with NUL, DEL, C1) and the
/// bidirectional formatting characters that can make a name display as something else
/// (CVE-2021-42574, "Trojan Source").
pub fn is_unsafe_character(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// The JSON Schema `pattern` of a text that holds no [unsafe character](is_unsafe_character)
/// (ECMA-262 syntax, as OpenAPI states patterns).
pub const PLAIN_TEXT_PATTERN: &str =
    r"^[^\x00-\x1F\x7F-\x9F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$";

/// The JSON Schema `pattern` of a name: [plain text](PLAIN_TEXT_PATTERN) with at least one
/// character that is not white space (Unicode `White_Space`, what `str::trim` removes), so
/// neither empty nor blank.
pub const NAME_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*[^\x00-\x20\x7F-\xA0\u061C\u1680\u2000-\u200A\u200E\u200F\u2028-\u202F\u205F\u2066-\u2069\u3000][^\x00-\x1F\x7F-\x9F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$";

/// Refuses a text of field `field` that holds an [unsafe character](is_unsafe_character).
///
/// ```
/// use capstats_capacity_model::validate_plain_text;
/// assert!(validate_plain_text("name", "orders_2026").is_ok());
/// assert!(validate_plain_text("name", "ord\u{0}ers").is_err());
/// assert!(validate_plain_text("name", "admin\u{202E}gpj.exe").is_err());
/// ```
pub fn validate_plain_text(field: &'static str, text: &str) -> Result<(), ValidationError> {
    match text
        .chars()
        .find(|character| is_unsafe_character(*character))
    {
        Some(character) => Err(ValidationError::UnsafeCharacter {
            field,
            code_point: u32::from(character),
        }),
        None => Ok(()),
    }
}
