#!/usr/bin/env bash
# Train the model that ships inside the package and write it into src/unsup3d/weights/ (safetensors + JSON).
# The recipe is the `cpu` preset (its default seed 0, 3000 iterations) on the built-in synthetic faces (seed 0, 6000 training
# images at 64 x 64); learn_synthetic.py prints the learning curve against the ground truth of the 300 test faces
# on the way. About 15 minutes on a 2-core CPU. When the preset improves, this same command retrains the model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA=${DATA:-data/synth}
RUN=${RUN:-runs/shipped}
if [ ! -f "$DATA/dataset.json" ]; then
  .venv/bin/unsup3d synth --out "$DATA" --n-train 6000 --n-test 300 --size 64 --seed 0
fi
.venv/bin/python benchmarks/learn_synthetic.py --data "$DATA" --out "$RUN" --preset cpu \
  --iterations 3000 --minutes 60 --eval-every 500
.venv/bin/unsup3d evaluate --checkpoint "$RUN" --data "$DATA/test" --output "$RUN/eval_scores.json"
.venv/bin/unsup3d export-weights "$RUN" --out src/unsup3d/weights --name faces_synthetic --dtype float16
.venv/bin/python benchmarks/shipped_model.py --data "$DATA/test" --run "$RUN" --write-reference
