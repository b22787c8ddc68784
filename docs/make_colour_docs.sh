#!/usr/bin/env bash
# Makes the colour pictures in docs/ from the 10-minute colour-digits runs (issue 40; the README gives the command
# of each run). Run from the repository root once the runs exist:
#   docs/make_colour_docs.sh [RUNS_FOLDER]      (default benchmarks/out/issue40)
set -euo pipefail
G=.venv/bin/ganvae
R=${1:-benchmarks/out/issue40}
for m in dcgan conv-vae vae-gan; do
  $G -q sample "$R/colour32-$m" -n 64 --seed 0 --out docs/colour-$m-samples.png
  $G -q interpolate "$R/colour32-$m" --points 4 --steps 12 --walks 4 --scale 2 --out docs/colour-$m-walk.gif
done
for m in conv-vae vae-gan; do
  $G -q reconstruct "$R/colour32-$m" -n 16 --out docs/colour-$m-reconstructions.png
done
