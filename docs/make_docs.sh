#!/usr/bin/env bash
# Makes the pictures in docs/ from the runs of the time-to-quality benchmark (each family's default recipe,
# 10 minutes on full MNIST; the README gives the command). Run from the repository root once the runs exist:
#   docs/make_docs.sh [RUNS_FOLDER]      (default benchmarks/out/time_to_quality)
set -euo pipefail
G=.venv/bin/ganvae
R=${1:-benchmarks/out/time_to_quality}
# VAE_RUN=... overrides the vae run (the README's vae row comes from the 10-minute run of its new 10-d default,
# benchmarks/out/recipes10/vae-z10, made after the time-to-quality run)
declare -A RUN=([gan]=$R/gan [dcgan]=$R/dcgan [vae]=${VAE_RUN:-$R/vae} [conv-vae]=$R/conv-vae [vae-gan]=$R/vae-gan [cppn]=$R/cppn)
MODELS="gan dcgan vae conv-vae vae-gan cppn"
# ZOO="FAMILY ...": only these families' pictures, from the pretrained zoo's mnist-FAMILY instead (the encoder
# families: the same 10-minute runs' networks with their learned prior fitted by `tools/make_zoo.py --refit-prior`;
# gan, dcgan: the zoo's longer self-conditioned runs), the other rows left as they are. ZOO_ENCODERS=1 is ZOO="vae
# conv-vae vae-gan cppn".
if [ "${ZOO_ENCODERS:-0}" = 1 ]; then ZOO=${ZOO:-vae conv-vae vae-gan cppn}; fi
if [ -n "${ZOO:-}" ]; then
  MODELS=$ZOO
  for m in $MODELS; do RUN[$m]=mnist-$m; done
fi
for m in $MODELS; do
  $G -q sample "${RUN[$m]}" -n 64 --seed 0 --out docs/$m-samples.png
  $G -q interpolate "${RUN[$m]}" --points 4 --steps 12 --walks 9 --scale 2 --out docs/$m-walk.gif
done
for m in vae conv-vae vae-gan cppn; do
  case " $MODELS " in *" $m "*) ;; *) continue ;; esac
  $G -q reconstruct "${RUN[$m]}" -n 16 --out docs/$m-reconstructions.png ${DATA_DIR:+--data-dir $DATA_DIR}
done
if [[ " $MODELS " == *" cppn "* ]]; then
  $G -q sample "${RUN[cppn]}" -n 1 --seed 3 --out docs/cppn-28.png
  $G -q render "${RUN[cppn]}" --size 1080x1080 --seed 3 --out docs/cppn-1080.png
fi
