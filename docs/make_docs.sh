#!/usr/bin/env bash
# Makes the pictures in docs/ from the README's training runs (the README gives the command and budget of each).
# Run from the repository root once the runs exist.
set -euo pipefail
G=.venv/bin/ganvae
declare -A RUN=([gan]=runs/docs-gan [dcgan]=runs/docs-dcgan-bf16 [vae]=runs/ttq-vae [conv-vae]=runs/docs-conv-vae
                [vae-gan]=runs/docs-vae-gan [cppn]=runs/docs-cppn)
for m in gan dcgan vae conv-vae vae-gan cppn; do
  $G -q sample "${RUN[$m]}" -n 64 --seed 0 --out docs/$m-samples.png
  $G -q interpolate "${RUN[$m]}" --points 4 --steps 12 --walks 9 --scale 2 --out docs/$m-walk.gif
done
for m in vae conv-vae vae-gan cppn; do
  $G -q reconstruct "${RUN[$m]}" -n 16 --out docs/$m-reconstructions.png
done
$G -q sample runs/docs-cppn -n 1 --seed 3 --out docs/cppn-28.png
$G -q render runs/docs-cppn --size 1080x1080 --seed 3 --out docs/cppn-1080.png
