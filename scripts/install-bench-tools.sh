#!/usr/bin/env bash
# What `cargo bench -p edgebench --bench loadgen` compares edgebench's load
# generator with: wrk (Debian) and oha (crates.io, built from source).
# Idempotent; installs only what is missing. oha goes to ~/.cargo/bin.
set -euo pipefail
if ! command -v wrk >/dev/null; then
  apt-get install -y wrk
fi
if ! command -v oha >/dev/null; then
  cargo install oha --locked
fi
