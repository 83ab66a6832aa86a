#!/usr/bin/env bash
# The main job on built-in data: install, generate synthetic faces with ground truth, train the cpu preset,
# evaluate against the baselines, reconstruct a few test images. MINUTES (default 20) bounds the training time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MINUTES=${MINUTES:-20}
DATA=${DATA:-data/synth}
RUN=${RUN:-runs/demo}
OUT=${OUT:-results/demo}
if [ ! -f "$DATA/dataset.json" ]; then
  .venv/bin/unsup3d synth --out "$DATA" --n-train 6000 --n-test 300 --size 64 --seed 0
fi
.venv/bin/unsup3d train --data "$DATA/train" --out "$RUN" --preset cpu --max-minutes "$MINUTES" --resume
.venv/bin/unsup3d evaluate --checkpoint "$RUN" --data "$DATA/test" --output "$RUN/eval_scores.json"
mkdir -p "$OUT"
.venv/bin/unsup3d reconstruct "$DATA"/test/image/0000[0-7].png --checkpoint "$RUN" --output "$OUT"
echo
echo "run (checkpoints, metrics.jsonl, tensorboard): $RUN"
echo "scores: $RUN/eval_scores.json"
echo "reconstructions (depth.npy, maps, mesh.obj): $OUT"
