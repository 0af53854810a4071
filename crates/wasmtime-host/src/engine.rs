//! The engine settings shared by the serving host and its precompiler
//! (`crates/wasmtime-precompile` includes this file): a precompiled artifact
//! only loads into an engine configured the same way.

use wasmtime::Result;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The wasmtime crate version this host links (kept in step with Cargo.toml).
#[allow(dead_code)] // the precompiler does not print it
pub const WASMTIME_VERSION: &str = "48";

/// `slots` bounds the instances alive at once (concurrent requests). A small
/// pool starts faster: the default of 1000 slots costs ~3 ms of mprotect.
#[allow(dead_code)] // the precompiler makes its engine from `config` (with a target)
pub fn engine(slots: u32) -> Result<Engine> {
    Engine::new(&config(slots))
}

/// The settings of [`engine`] (the precompiler may set a target on them).
pub fn config(slots: u32) -> Config {
    let mut config = Config::new();
    config.native_unwind_info(false).generate_address_map(false);
    if slots > 0 {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 4)
            .total_memories(slots * 2)
            .total_tables(slots * 4)
            .total_stacks(slots)
            .max_memory_size(64 << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}
