//! The JSON shapes of requests and responses (described in the OpenAPI document), one module
//! per resource.

mod accounts;
mod capacity;
mod instances;
pub(crate) mod numbers;
mod partitions;
mod planning;
mod runs;

pub use accounts::*;
pub use capacity::*;
pub use instances::*;
pub use partitions::*;
pub use planning::*;
pub use runs::*;

/// Reads a field that may be absent (`None`: leave as it is), `null` (`Some(None)`: clear it)
/// or a value; serde alone folds the first two together.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
