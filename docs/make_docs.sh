#!/usr/bin/env bash
# Makes the pictures in docs/ from the README's training runs (see the README for how each run was trained).
# Run from the repository root after the runs exist under runs/docs-<model>.
set -euo pipefail
G=.venv/bin/ganvae
for m in gan dcgan vae conv-vae vae-gan cppn; do
  $G -q sample runs/docs-$m -n 64 --seed 0 --out docs/$m-samples.png
  $G -q interpolate runs/docs-$m --points 4 --steps 12 --walks 9 --scale 2 --out docs/$m-walk.gif
done
for m in vae conv-vae vae-gan cppn; do
  $G -q reconstruct runs/docs-$m -n 16 --out docs/$m-reconstructions.png
done
$G -q render runs/docs-cppn --size 1080x1080 --seed 3 --out docs/cppn-1080.png
