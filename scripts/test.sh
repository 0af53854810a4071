#!/usr/bin/env bash
# The test command (README): installs what the tests need, builds every
# artifact, checks formatting and lints, and runs the whole suite against real
# runtimes. Runtimes it installs are required: their tests fail, not skip,
# when they cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p edgebench-workload-wasi-http --target wasm32-wasip2 -- -D warnings

# Workload artifacts and the embedded Wasmtime host (release), used by the tests.
cargo run --release -q -p edgebench -- build

export EDGEBENCH_REQUIRE="${EDGEBENCH_REQUIRE:-wasmtime,nftables}"
cargo nextest run --no-fail-fast
