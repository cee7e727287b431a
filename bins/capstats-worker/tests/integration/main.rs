//! The integration tests of `capstats-worker`, one test binary with a module per area: the
//! worker processes (queues, scheduler, faults), the operator commands, and the systemd units.

mod commands;
mod common;
mod systemd_units;
mod workers;
