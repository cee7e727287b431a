//! Query-string parsing with field-level errors. actix's `web::Query` cannot read repeated
//! keys (`instance_id=1&instance_id=2`) and reports only the first problem; this collects every
//! problem, names the parameter, and keeps the documented `IntoParams` structs as the spec.
//! Values are read as the spec states them — not trimmed, not split at commas, never empty —
//! so that what the spec refuses the server refuses too.

use std::str::FromStr;

use actix_web::HttpRequest;
use chrono::NaiveDate;

use crate::error::{ApiError, FieldError};

/// The parameters of one request and the problems found reading them.
pub struct Parameters {
    pairs: Vec<(String, String)>,
    problems: Vec<FieldError>,
}

impl Parameters {
    /// Reads the query string of `request`.
    pub fn of(request: &HttpRequest) -> Self {
        Self {
            pairs: form_urlencoded::parse(request.query_string().as_bytes())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
            problems: Vec::new(),
        }
    }

    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Records a problem with parameter `name`.
    pub fn problem(&mut self, name: &str, code: &str, message: impl Into<String>) {
        self.problems.push(FieldError::new(name, code, message));
    }

    /// The single value of `name`, parsed; `None` when absent. An empty or repeated value, or
    /// one that does not parse, is recorded as a problem.
    pub fn one<T: FromStr>(&mut self, name: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        let values: Vec<String> = self.values(name).map(str::to_owned).collect();
        match values.as_slice() {
            [] => None,
            [value] => self.parse(name, value),
            _ => {
                self.problem(name, "repeated", "may be given only once");
                None
            }
        }
    }

    /// Every value of a repeatable parameter (`db_type=mysql&db_type=oracle`), parsed.
    pub fn many<T: FromStr>(&mut self, name: &str) -> Vec<T>
    where
        T::Err: std::fmt::Display,
    {
        let values: Vec<String> = self.values(name).map(str::to_owned).collect();
        values
            .iter()
            .filter_map(|value| self.parse(name, value))
            .collect()
    }

    fn parse<T: FromStr>(&mut self, name: &str, value: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        if value.is_empty() {
            self.problem(name, "empty", "give a value or leave the parameter out");
            return None;
        }
        // PostgreSQL text cannot hold NUL: refused here rather than failing the query.
        if value.contains('\0') {
            self.problem(name, "invalid", "must not contain a NUL character");
            return None;
        }
        match value.parse::<T>() {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                self.problem(name, "invalid", format!("`{value}`: {error}"));
                None
            }
        }
    }

    /// A date (`YYYY-MM-DD`); impossible dates such as 2025-02-30 are problems.
    pub fn date(&mut self, name: &str) -> Option<NaiveDate> {
        let value = self.one::<String>(name)?;
        match NaiveDate::parse_from_str(&value, "%Y-%m-%d") {
            Ok(date) => match capstats_capacity_model::validate_supported_date(date) {
                Ok(date) => Some(date),
                Err(error) => {
                    self.problem(name, "date_out_of_range", error.to_string());
                    None
                }
            },
            Err(_) => {
                self.problem(
                    name,
                    "invalid_date",
                    format!("`{value}` is not a date like 2025-01-31"),
                );
                None
            }
        }
    }

    /// An integer in `[minimum, maximum]`, or `default` when absent.
    pub fn bounded(&mut self, name: &str, minimum: i64, maximum: i64, default: i64) -> i64 {
        match self.one::<i64>(name) {
            None => default,
            Some(value) if (minimum..=maximum).contains(&value) => value,
            Some(value) => {
                self.problem(
                    name,
                    "out_of_range",
                    format!("{value} is not between {minimum} and {maximum}"),
                );
                default
            }
        }
    }

    /// Whether `name` is given at all (however many times, valid or not).
    pub fn has(&self, name: &str) -> bool {
        self.values(name).next().is_some()
    }

    /// `page` (from 1) and `limit` (1–200, default 20).
    pub fn page(&mut self) -> capstats_store::aggregates::PageRequest {
        capstats_store::aggregates::PageRequest {
            page: self.bounded("page", 1, 1_000_000, 1),
            limit: self.bounded("limit", 1, 200, 20),
        }
    }

    /// Fails with every recorded problem, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(self.problems))
        }
    }
}
