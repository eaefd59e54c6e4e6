#!/usr/bin/env bash
# Installs, when missing, what `make aarch64` and `make test-aarch64` need on a Debian x86-64 machine: Debian's
# Rust compiler with the arm64 standard library (rustup's toolchain here has no aarch64 std and cannot download
# one), the aarch64 cross gcc, and qemu-user. Prints one clear line and fails when a package cannot be had.
set -euo pipefail
say() { echo "aarch64-toolchain: $*" >&2; }
have() {
  [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu/lib ] &&
    command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64-static >/dev/null
}
have && exit 0
command -v apt-get >/dev/null || { say "apt-get not found: install rustc-web, libstd-rust-web-dev:arm64, gcc-aarch64-linux-gnu and qemu-user-static by hand"; exit 1; }
say "installing Debian packages: rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu qemu-user-static"
export DEBIAN_FRONTEND=noninteractive
dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
if ! apt-get update -qq >/tmp/aarch64-toolchain.log 2>&1; then
  say "apt-get update failed: is the Debian package registry reachable? (see /tmp/aarch64-toolchain.log)"; exit 1
fi
if ! apt-get install -y -qq rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu qemu-user-static \
    >>/tmp/aarch64-toolchain.log 2>&1; then
  say "apt-get install failed (see /tmp/aarch64-toolchain.log)"; exit 1
fi
have || { say "packages installed but the toolchain is still incomplete"; exit 1; }
