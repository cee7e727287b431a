//! The JSON shapes of requests and responses (described in the OpenAPI document), one module
//! per resource.

mod accounts;
mod alerts;
mod capacity;
mod instances;
pub(crate) mod numbers;
mod partitions;
mod planning;
mod runs;

pub use accounts::*;
pub use alerts::*;
pub use capacity::*;
pub use instances::*;
pub use partitions::*;
pub use planning::*;
pub use runs::*;

/// Reads a whole number that may be absent (`None`: leave as it is), `null` (`Some(None)`:
/// clear it) or a number; serde alone folds the first two together. JSON Schema's `integer`
/// includes `747.0`, so a number with a zero fraction is read as the whole number it is.
pub(crate) fn present_whole_number<'de, D>(deserializer: D) -> Result<Option<Option<i64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let Some(number) =
        <Option<serde_json::Number> as serde::Deserialize>::deserialize(deserializer)?
    else {
        return Ok(Some(None));
    };
    if let Some(whole) = number.as_i64() {
        return Ok(Some(Some(whole)));
    }
    match number.as_f64() {
        // Within ±2⁶³ and without a fraction: exactly an i64.
        Some(value) if value.fract() == 0.0 && value.abs() < 9.2e18 => Ok(Some(Some(value as i64))),
        _ => Err(D::Error::custom(format!("{number} is not a whole number"))),
    }
}
