#!/usr/bin/env bash
# One command for a fresh Debian 12 machine (as root): system packages, npm dependencies,
# the build, and the demo of the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/demo.sh
