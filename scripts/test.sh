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
cargo clippy -p edgebench-workload-wasi-p1 --target wasm32-wasip1 -- -D warnings
cargo clippy -p edgebench-workload-workerd --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p edgebench-unikernel --target x86_64-unknown-none -- -D warnings

# Workload artifacts and the embedded Wasmtime host (release), used by the tests.
# Their musl builds need no musl C toolchain: the only C compiler they get is
# scripts/musl-cc (.cargo/config.toml), which refuses any C file but Wasmtime's
# helper. A compiler set in the environment would bypass it, so none is.
unset CC_x86_64_unknown_linux_musl AR_x86_64_unknown_linux_musl TARGET_CC
cargo run --release -q -p edgebench -- build
# The arm64 build (target/edgebench-aarch64/), run under qemu-user by tests/arm64.rs.
unset CC_aarch64_unknown_linux_musl AR_aarch64_unknown_linux_musl
cargo run --release -q -p edgebench -- build --target aarch64

# One Docker daemon for the whole suite (tests run in parallel processes; each
# starting its own would race). Started only when none answers, stopped on exit.
# Like the daemon edgebench starts itself, it gets gVisor's runtimes from a
# config file of its own (the host's /etc/docker/daemon.json plus those
# runtimes; the host's file is not changed), written by `edgebench` itself.
if ! timeout 10 docker info >/dev/null 2>&1; then
  mkdir -p target
  config=()
  if command -v runsc >/dev/null; then
    cargo run --release -q -p edgebench -- doctor --dockerd-config target/dockerd-test.json
    config=(--config-file target/dockerd-test.json)
  fi
  echo "test.sh: starting dockerd ${config[*]} (log: target/dockerd-test.log)"
  dockerd "${config[@]}" >target/dockerd-test.log 2>&1 &
  dockerd_pid=$!
  trap 'kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do
    timeout 5 docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
fi

export EDGEBENCH_REQUIRE="${EDGEBENCH_REQUIRE:-wasmtime,wasmcloud,docker,gvisor,chromium,nftables,qemu-microvm,unikernel,workerd,sshd,ansible,qemu-user,cgroups}"
cargo nextest run --no-fail-fast
