#!/usr/bin/env bash
# The vendored charting library of `flashlog report` (src/bin/flashlog/report/vendor) must be the files of the
# npm package its package-lock.json pins: installs that lock into target/report-vendor with `npm ci` (the
# integrity hash in the lock is checked by npm) and compares the files byte for byte. Without npm or without the
# registry, says so in one line and succeeds (the comparison needs the registry; the build does not).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
vendor=$here/src/bin/flashlog/report/vendor
work=$here/target/report-vendor
if ! command -v npm >/dev/null 2>&1; then
  echo "check-vendor: npm not found: the vendored uPlot was not compared with the registry's package"; exit 0
fi
rm -rf "$work" && mkdir -p "$work" && cp "$vendor/package.json" "$vendor/package-lock.json" "$work/"
if ! (cd "$work" && timeout 120 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
  echo "check-vendor: npm ci failed (registry unreachable?): the vendored uPlot was not compared ($(tail -1 "$work/npm.log"))"
  exit 0
fi
pkg=$work/node_modules/uplot
status=0
for f in dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE; do
  if ! cmp -s "$pkg/$f" "$vendor/$(basename "$f")"; then
    echo "check-vendor: $vendor/$(basename "$f") differs from $f of the pinned npm package"; status=1
  fi
done
[ $status = 0 ] && echo "check-vendor: vendored uPlot $(node -p "require('$pkg/package.json').version" 2>/dev/null) equals the npm package"
exit $status
