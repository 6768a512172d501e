#!/usr/bin/env bash
# Demo: sharpen a bundled example and score it. Usage: scripts/demo.sh VENV_BIN OUT_DIR
set -euo pipefail
BIN=${1:-.venv/bin}
OUT=${2:-demo_out}
mkdir -p "$OUT"
"$BIN/python" scripts/make_demo_maps.py "$OUT"
"$BIN/densharp" info "$OUT/input.mrc"
"$BIN/densharp" sharpen "$OUT/input.mrc" --resolution 3.5 -o "$OUT/sharpened_autob.mrc" --overwrite
echo "== input vs target"
"$BIN/densharp" compare "$OUT/input.mrc" "$OUT/target.mrc"
echo "== auto-B sharpened vs target"
"$BIN/densharp" compare "$OUT/sharpened_autob.mrc" "$OUT/target.mrc"
