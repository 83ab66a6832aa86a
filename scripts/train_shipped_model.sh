#!/usr/bin/env bash
# Train a model that ships inside the package and write it into src/unsup3d/weights/ (safetensors + JSON with its
# model card), from the data you name:
#
#   bash scripts/train_shipped_model.sh faces-synthetic            # built-in synthetic faces, about 15 minutes
#   bash scripts/train_shipped_model.sh faces PHOTOS [LONDON]      # real face photos, e.g. UTKFace's crops
#   bash scripts/train_shipped_model.sh cats PHOTOS                # real cat-face crops, e.g. the CAT dataset's
#
# Real photos: the last 300 (faces) or 500 (cats) by sorted file name are held out (scripts/hold_out.py), the
# preset faces-real / cats-real trains on the rest (about 50 and 32 minutes on a 2-core CPU), and
# benchmarks/experiments/real_photos.py scores the model on the held-out photos and, for faces, on LONDON (a folder of the
# Face Research Lab London Set, cropped with --crop face); the scores go into the model card. Synthetic faces: the
# `cpu` preset (seed 0, 3000 iterations) on `unsup3d synth --seed 0`, scored by `unsup3d evaluate`.
# RUN (default runs/shipped_<model>) is the run directory; a killed run continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-faces-synthetic}
RUN=${RUN:-runs/shipped_${MODEL}}
PY=.venv/bin/python
bash scripts/setup.sh
mkdir -p "$RUN"

case "$MODEL" in
  faces-synthetic)
    DATA=${DATA:-data/synth}
    if [ ! -f "$DATA/dataset.json" ]; then
      .venv/bin/unsup3d synth --out "$DATA" --n-train 6000 --n-test 300 --size 64 --seed 0
    fi
    $PY benchmarks/experiments/learn_synthetic.py --data "$DATA" --out "$RUN" --preset cpu \
      --iterations 3000 --minutes 60 --eval-every 500
    .venv/bin/unsup3d evaluate --checkpoint "$RUN" --data "$DATA/test" --output "$RUN/eval_scores.json"
    SCORES=("synthetic_test=$RUN/eval_scores.json")
    PRESET=cpu NAME=faces_synthetic
    ;;
  faces | cats)
    PHOTOS=${2:?"usage: $0 $MODEL PHOTOS (a folder of photos)"}
    if [ "$MODEL" = faces ]; then HOLD=300 PRESET=faces-real CROP=face; else HOLD=500 PRESET=cats-real CROP=cat; fi
    NAME=${MODEL}_real
    $PY scripts/hold_out.py "$PHOTOS" "$RUN/split" --count "$HOLD"
    .venv/bin/unsup3d train --data "$RUN/split/train" --out "$RUN" --preset "$PRESET" \
      --set "data.val_dir=$RUN/split/held_out" --resume --no-progress
    # The held-out photos are crops already (as the training photos); LONDON's are whole photos.
    $PY benchmarks/experiments/real_photos.py --data "$RUN/split/held_out" --checkpoint "$RUN" --json "$RUN/held_out.json"
    SCORES=("held_out=$RUN/held_out.json")
    if [ -n "${3:-}" ]; then
      $PY benchmarks/experiments/real_photos.py --data "$3" --crop "$CROP" --checkpoint "$RUN" --json "$RUN/london.json"
      SCORES+=("london=$RUN/london.json")
    fi
    ;;
  *)
    echo "usage: $0 faces-synthetic | faces PHOTOS [LONDON] | cats PHOTOS" >&2
    exit 2
    ;;
esac

$PY scripts/model_card.py --name "$MODEL" --run "$RUN" --preset "$PRESET" \
  --command "bash scripts/train_shipped_model.sh $MODEL${2:+ PHOTOS}${3:+ LONDON}" --scores "${SCORES[@]}" \
  --out "$RUN/card.json"
.venv/bin/unsup3d export-weights "$RUN" --out src/unsup3d/weights --name "$NAME" --dtype float16 --card "$RUN/card.json"
if [ "$MODEL" = faces-synthetic ]; then
  $PY benchmarks/experiments/shipped_model.py --data "$DATA/test" --run "$RUN" --write-reference
fi
