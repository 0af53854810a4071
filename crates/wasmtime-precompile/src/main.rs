//! `edgebench-wasmtime-precompile IN.wasm OUT.cwasm [--target TRIPLE]`:
//! compiles a component ahead of time for the embedded host
//! (`edgebench-wasmtime-host serve`): for this machine's CPU (its features
//! detected), or with `--target` for another architecture's host
//! (`edgebench build --target aarch64`: that host checks on loading that its
//! CPU has every feature the code was compiled for; Cranelift's defaults for
//! a target assume none beyond the base architecture).
//!
//! The engine settings are the host's own source file, so the two cannot
//! drift apart; Wasmtime still checks them when the host loads the artifact.

#[path = "../../wasmtime-host/src/engine.rs"]
mod engine;

use wasmtime::error::Context;
use wasmtime::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output, target) = match args.as_slice() {
        [input, output] => (input, output, None),
        [input, output, flag, target] if flag == "--target" => (input, output, Some(target)),
        _ => bail!("usage: edgebench-wasmtime-precompile IN.wasm OUT.cwasm [--target TRIPLE]"),
    };
    let mut config = engine::config(0);
    if let Some(target) = target {
        config.target(target).with_context(|| format!("target {target}"))?;
    }
    let engine = wasmtime::Engine::new(&config)?;
    let wasm = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let bytes = engine.precompile_component(&wasm).with_context(|| format!("compiling {input}"))?;
    std::fs::write(output, bytes).with_context(|| format!("writing {output}"))?;
    Ok(())
}
