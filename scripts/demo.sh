#!/usr/bin/env bash
# Demo on the bundled test-split structure (3A4R chain A): simulate a blurred, noisy 3.5 Å map with half maps
# and a 2 Å target on the same grid, sharpen it with the shipped U-Net and VAE (mean of 8 samples, with an
# uncertainty map) and two classical methods, and score each against the target.
# Usage: scripts/demo.sh [VENV_BIN] [OUT_DIR]
set -euo pipefail
BIN=${1:-.venv/bin}
OUT=${2:-demo_out}
MODEL=$("$BIN/python" -c "from importlib import resources; print(resources.files('densharp') / 'data/examples/3a4rA.pdb.gz')")
mkdir -p "$OUT"
ds() { "$BIN/densharp" "$@"; }
ds simulate "$MODEL" -o "$OUT/target.mrc" --resolution 2.0 --voxel-size 1.0 --overwrite -q
ds simulate "$MODEL" -o "$OUT/input.mrc" --resolution 3.5 --b-factor 100 --half-maps --voxel-size 1.0 --seed 1 --overwrite -q
ds info "$OUT/input.mrc"
ds models
# default method: the shipped U-Net (inside its training domain), else classical auto-B
ds sharpen "$OUT/input.mrc" --resolution 3.5 -o "$OUT/sharpened.mrc" --overwrite -q
ds sharpen "$OUT/input.mrc" --resolution 3.5 --method vae --samples 8 -o "$OUT/sharpened_vae.mrc" --overwrite -q
ds sharpen "$OUT/input.mrc" --resolution 3.5 --method autob -o "$OUT/sharpened_autob.mrc" --overwrite -q
ds sharpen --half-maps "$OUT/input_half1.mrc" "$OUT/input_half2.mrc" --method fsc -o "$OUT/sharpened_fsc.mrc" --overwrite -q
echo "== VAE uncertainty map (per-voxel SD of 8 samples)"; ds info "$OUT/sharpened_vae_sd.mrc"
ds fsc "$OUT/input_half1.mrc" "$OUT/input_half2.mrc"
for f in input sharpened sharpened_vae sharpened_autob sharpened_fsc; do
  echo "== $f vs 2 Å target"
  ds compare "$OUT/$f.mrc" "$OUT/target.mrc"
done
echo "outputs and JSON records in $OUT/"
