//! `edgebench-wasmtime-precompile IN.wasm OUT.cwasm`: compiles a component
//! ahead of time for the embedded host (`edgebench-wasmtime-host serve`).
//!
//! The engine settings are the host's own source file, so the two cannot
//! drift apart; Wasmtime still checks them when the host loads the artifact.

#[path = "../../wasmtime-host/src/engine.rs"]
mod engine;

use wasmtime::error::Context;
use wasmtime::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        bail!("usage: edgebench-wasmtime-precompile IN.wasm OUT.cwasm");
    };
    let engine = engine::engine(0)?;
    let wasm = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let bytes = engine.precompile_component(&wasm).with_context(|| format!("compiling {input}"))?;
    std::fs::write(output, bytes).with_context(|| format!("writing {output}"))?;
    Ok(())
}
