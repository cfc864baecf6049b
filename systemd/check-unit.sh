#!/usr/bin/env bash
# Verifies the unit file and holds its sandboxing to an exposure of 2.0 or better.
# Usage: check-unit.sh UNIT_WITH_BUILD_PATHS
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$1" "$work/billingd.service"
# Documentation= names our man pages: let `man` find them in the source tree.
mkdir -p "$work/man/man8"
cp "$(dirname "$0")/../man/"*.8 "$work/man/man8/"
MANPATH="$work/man" systemd-analyze verify "$work/billingd.service"
# --threshold counts tenths: 20 means an overall exposure of 2.0.
systemd-analyze security --offline=true --threshold=20 "$work/billingd.service" | tail -1
echo "1 passed, 0 failed"
