#!/usr/bin/env bash
# Verifies the unit file and holds its sandboxing to an exposure of 2.0 or better.
# Usage: check-unit.sh UNIT_WITH_BUILD_PATHS
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$1" "$work/billingd.service"
systemd-analyze verify "$work/billingd.service"
systemd-analyze security --offline=true --threshold=2.0 "$work/billingd.service" | tail -1
echo "1 passed, 0 failed"
