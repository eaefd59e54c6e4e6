#!/usr/bin/env bash
# Lays out, once, an arm64 CPython 3.11 with aarch64 wheels of apache-tvm-ffi and numpy under DIR (default
# target/aarch64/python), for the real-loader test of `make test-aarch64`. Debian's arm64 packages are
# unpacked (never installed: `apt-get install python3:arm64` would remove the x86-64 python3), and run as
# `qemu-aarch64-static -L DIR/root DIR/root/usr/bin/python3.11` with PYTHONPATH=DIR/site.
set -euo pipefail
dir=${1:-target/aarch64/python}
stamp="$dir/.ready"
[ -f "$stamp" ] && exit 0
say() { echo "aarch64-python: $*" >&2; }
rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/root"
debs=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libexpat1 zlib1g libffi8 libssl3 libbz2-1.0
  liblzma5 libc6 libgcc-s1 libstdc++6 libuuid1 libsqlite3-0 libncursesw6 libtinfo6 libreadline8 libcrypt1 libdb5.3
  libnsl2 libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1)
if ! (cd "$dir/debs" && apt-get download "${debs[@]/%/:arm64}" >/dev/null 2>"../apt.err"); then
  say "could not download the arm64 Python packages (see $dir/apt.err); is the Debian registry reachable?"; exit 1
fi
for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$dir/root"; done
if ! python3 -m pip install --quiet --disable-pip-version-check --target "$dir/site" \
    --platform manylinux_2_28_aarch64 --only-binary=:all: --python-version 3.11 --implementation cp \
    apache-tvm-ffi==0.1.15.post2 "numpy>=1.26,<3" 2>"$dir/pip.err"; then
  say "could not download the aarch64 wheels (see $dir/pip.err); is the Python registry reachable?"; exit 1
fi
touch "$stamp"
