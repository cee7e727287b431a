#![doc = include_str!("../README.md")]

pub mod credentials;
mod error;
pub mod servers;
pub mod tls;

pub use error::CollectorError;
