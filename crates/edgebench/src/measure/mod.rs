//! Measurement: the HTTP client, the readiness probe, latency runs and the
//! resource sampler. All blocking and single-threaded, so that the client
//! adds as little as possible to what it measures.

pub mod connect;
pub mod http;
pub mod latency;
pub mod load;
pub mod probe;
pub mod resources;
pub mod settle;
