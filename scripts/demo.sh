#!/usr/bin/env bash
# Set up, then on the bundled procedural demo scene: generate it, train the CPU preset, evaluate, render a video.
# Everything goes under demo/ (an existing demo/scene is reused, never overwritten).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${PLIFT_VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"
OUT=demo
STEPS="${PLIFT_DEMO_STEPS:-3000}"
if [ ! -f "$OUT/scene/transforms.json" ]; then
  plift-synth --output "$OUT/scene" --seed 0 --num-frames 100 --width 160 --height 120 --noise moderate
fi
ns-train panoptic-lifting-lite --data "$OUT/scene" --output-dir "$OUT/outputs" --experiment-name demo \
  --vis tensorboard --max-num-iterations "$STEPS"
CONFIG=$(ls -td "$OUT"/outputs/demo/panoptic-lifting-lite/*/ | head -1)config.yml
ns-eval --load-config "$CONFIG" --output-path "$OUT/ns-eval.json"
plift-eval --load-config "$CONFIG" --output-dir "$OUT"
ns-render interpolate --load-config "$CONFIG" --rendered-output-names rgb semantics instances panoptic \
  --interpolation-steps 4 --frame-rate 12 --output-path "$OUT/panoptic.mp4"
echo "== demo done: $OUT/eval.md (+ .json, eval_grid.png), $OUT/panoptic.mp4, $OUT/scene/contact_sheet.png; config $CONFIG"
