#!/usr/bin/env bash
# Makes the conditional pictures in docs/ (the README's "Pick the digit") from the 10-minute conditional runs of
# benchmarks/RESULTS.md, "Conditional models". Run from the repository root once the runs exist:
#   docs/make_cond_docs.sh [RUNS_FOLDER]      (default benchmarks/out/cond2; runs named FAMILY-cond)
set -euo pipefail
G=.venv/bin/ganvae
R=${1:-benchmarks/out/cond2}
# the dcgan's pictures come from its seed-1 run (the one mnist-cdcgan ships; --seed 1 in the training command)
declare -A RUN=([gan]=$R/gan-cond [dcgan]=$R/dcgan-cond-seed1 [vae]=$R/vae-cond [conv-vae]=$R/conv-vae-cond
                [vae-gan]=$R/vae-gan-cond [cppn]=$R/cppn-cond)
for m in gan dcgan vae conv-vae vae-gan cppn; do  # class grids: one row per class, one noise per column
  $G -q sample "${RUN[$m]}" -n 80 --seed 0 --out "docs/cond-$m.png"
done
$G -q interpolate "${RUN[dcgan]}" --between-digits 1,7 --points 4 --steps 8 --grid --out docs/cond-morph-1-7.png
$G -q render "$R/cppn-cond" --digit 8 --size 384x384 --seed 3 --out docs/cond-cppn-8.png
$G -q reconstruct "$R/conv-vae-cond" -n 16 --as-digit 5 --out docs/cvae-as5.png
