//! edgebench: workloads → runtimes → measurement → store → analysis and report.
//!
//! Samples (see [`store`]) are the contract between measuring and reporting:
//! the report reads only the SQLite file a campaign wrote.

pub mod artifacts;
pub mod campaign;
pub mod cli;
pub mod conformance;
pub mod cpus;
pub mod doctor;
pub mod edge;
pub mod environment;
pub mod measure;
pub mod merge;
pub mod network;
pub mod remote;
pub mod report;
pub mod runtime;
pub mod store;
pub mod workload;

pub use workload::Workload;
