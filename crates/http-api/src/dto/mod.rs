//! The JSON shapes of requests and responses (described in the OpenAPI document), one module
//! per resource.

mod accounts;
mod capacity;
mod instances;
pub(crate) mod numbers;
mod partitions;
mod runs;

pub use accounts::*;
pub use capacity::*;
pub use instances::*;
pub use partitions::*;
pub use runs::*;
