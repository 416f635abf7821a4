#!/usr/bin/env bash
# Install (see install.sh), then run the main job: `gamdss demo`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"
export HF_HUB_OFFLINE=1
gamdss demo "$@"
