#!/usr/bin/env bash
# The browser libraries that no PyPI package vendors, fetched at setup time from the npm
# registry at pinned versions and checked against their hashes, into scrm/static/vendor/
# (ignored by git; collectstatic and whitenoise serve it).  Never a CDN at run time.
# htmx comes from the django-htmx wheel (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

ECHARTS_VERSION=6.1.0
ECHARTS_SHA256=b66b25aeb4df84e33199dc21694014d336d222cbd9deb0e5a7c14bd6aa0d0fd0

dest=scrm/static/vendor/echarts
target="$dest/echarts.min.js"
if [ -f "$target" ] && echo "$ECHARTS_SHA256  $target" | sha256sum --check --status; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "vendor-assets: npm is missing, so the dashboard's charts are left out (tables only)" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "echarts@$ECHARTS_VERSION" >/dev/null)
tar -xzf "$work/echarts-$ECHARTS_VERSION.tgz" -C "$work" package/dist/echarts.min.js package/LICENSE
echo "$ECHARTS_SHA256  $work/package/dist/echarts.min.js" | sha256sum --check --status || {
  echo "vendor-assets: echarts $ECHARTS_VERSION does not match its pinned hash" >&2
  exit 1
}
mkdir -p "$dest"
cp "$work/package/dist/echarts.min.js" "$target"
cp "$work/package/LICENSE" "$dest/LICENSE"
echo "vendor-assets: echarts $ECHARTS_VERSION installed in $dest"
