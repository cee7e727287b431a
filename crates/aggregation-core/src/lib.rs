#![doc = include_str!("../README.md")]

pub mod calendar;
mod engine;
pub mod forecast;
pub mod metrics;

pub use calendar::{Period, PeriodType, due_periods};
pub use engine::{AggregationEngine, AggregationOutput, EngineError, instance_aggregates_of};
pub use forecast::{
    Forecast, ForecastError, ForecastRequest, ForecastSettings, NonLinearity, WithheldReason,
    forecast,
};
