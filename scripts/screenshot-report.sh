#!/usr/bin/env bash
# Renders a report.html in headless Chromium and saves a full-page PNG beside it.
#
#   scripts/screenshot-report.sh                 # runs a leaky channel-churn first
#   scripts/screenshot-report.sh reports/<dir>   # screenshots an existing report
#
# Needs Debian's chromium (apt-get install chromium). The page is opened from
# disk with background networking off: it must render with no fetches at all.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-}
if [ -z "$dir" ]; then
  dir=reports/screenshot-leaky
  cargo build --release -q
  ./target/release/fdsoak run scenarios/channel-churn.toml -q --out "$dir" \
    --spawn "./target/release/fdsoak serve --port {port} --hold-closed-conns" || true
fi
html=$(realpath "$dir/report.html")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile" --window-size=1100,2400 \
  --screenshot="$dir/report.png" "file://$html" 2>/dev/null
echo "$dir/report.png"
