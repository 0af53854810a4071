//! The engine settings shared by `compile` and `serve`: a precompiled
//! artifact only loads into an engine configured the same way.

#[cfg(feature = "compiler")]
use wasmtime::error::Context;
use wasmtime::Result;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The wasmtime crate version this host links (kept in step with Cargo.toml).
pub const WASMTIME_VERSION: &str = "48";

/// `slots` bounds the instances alive at once (concurrent requests). A small
/// pool starts faster: the default of 1000 slots costs ~3 ms of mprotect.
pub fn engine(slots: u32) -> Result<Engine> {
    let mut config = Config::new();
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
    Engine::new(&config)
}

#[cfg(feature = "compiler")]
pub fn compile(input: &str, output: &str) -> Result<()> {
    let engine = engine(0)?;
    let wasm = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let bytes = engine.precompile_component(&wasm).with_context(|| format!("compiling {input}"))?;
    std::fs::write(output, bytes).with_context(|| format!("writing {output}"))?;
    Ok(())
}

#[cfg(not(feature = "compiler"))]
pub fn compile(_input: &str, _output: &str) -> Result<()> {
    wasmtime::bail!("this build of edgebench-wasmtime-host has no compiler: build it with `--features compiler`")
}
