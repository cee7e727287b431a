//! The integration tests of `capstats-worker`, one test binary with a module per area: the
//! worker processes (queues, scheduler, faults, metrics), the operator commands, the systemd
//! units, and the monitoring in deploy/ (alert rules, dashboard).

mod commands;
mod common;
mod monitoring;
mod systemd_units;
mod workers;
