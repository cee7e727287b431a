#![doc = include_str!("../README.md")]

pub mod calendar;
mod engine;
pub mod metrics;

pub use calendar::{Period, PeriodType, due_periods};
pub use engine::{AggregationEngine, AggregationOutput, EngineError, instance_aggregates_of};
