//! Firebreak's shared library: what every runbook needs.
//!
//! - [`finding`]: every input shape (GuardDuty and Security Hub events, bare findings,
//!   drill inputs) normalised into one validated [`finding::Finding`];
//! - [`ids`]: validated identifiers (instance ids, ARNs, account ids, IPs, CIDRs);
//! - [`policy`]: the response policy document;
//! - [`plan`]: finding + policy → the actions to run and the ones skipped, with reasons;
//! - [`outcome`] and [`audit`]: the shapes that cross Lambda, state machine and CLI
//!   boundaries (schemas in `schemas/`); [`resolution`]: how a response ended, decided once;
//! - [`error`]: typed errors whose names the state machines route on;
//! - [`aws`] and [`logging`]: SDK configuration and JSON logs.

pub mod account;
pub mod approval;
pub mod audit;
pub mod aws;
pub mod error;
pub mod finding;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod ids;
mod json;
pub mod logging;
pub mod names;
pub mod notify;
pub mod outcome;
pub mod permissions;
pub mod plan;
pub mod policy;
pub mod reach;
pub mod release;
pub mod resolution;
pub mod runtime;
pub mod schemas;
pub mod ticket;
