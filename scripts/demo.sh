#!/usr/bin/env bash
# The main job on a fresh machine: set up, then train the recommended CPU preset (panoptic-lifting-cpu) on a shipped
# realistic room (its sparse depth is shipped too, so no COLMAP runs), score it against the room's ground truth next
# to its 2D labels, and render a panoptic video. Everything goes under demo/ (ns-train's full log: demo/train.log).
#   bash scripts/demo.sh                 # the realistic room bedroom-living-0 (PLIFT_DEMO_ROOM picks another)
#   bash scripts/demo.sh --procedural    # the procedural demo scene with panoptic-lifting-lite instead
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${PLIFT_VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"
# nerfstudio raises a few deprecation warnings of torch while it imports its own models, before it loads this plugin
# (which filters the rest): these are ignored by message and raising module, nothing else
PYTHONWARNINGS="$(python -c 'from plift_nerfstudio.core.third_party_warnings import pythonwarnings; print(pythonwarnings())')"
export PYTHONWARNINGS
OUT=demo
mkdir -p "$OUT"
if [ "${1:-}" = "--procedural" ]; then
  DATA="$OUT/scene" PRESET=panoptic-lifting-lite STEPS="${PLIFT_DEMO_STEPS:-3000}"
  if [ ! -f "$DATA/transforms.json" ]; then
    plift-synth --output "$DATA" --seed 0 --num-frames 100 --width 160 --height 120 --noise moderate
  fi
else
  DATA="data/realistic/${PLIFT_DEMO_ROOM:-bedroom-living-0}" PRESET=panoptic-lifting-cpu STEPS="${PLIFT_DEMO_STEPS:-2500}"
fi
echo "== training $PRESET on $DATA ($STEPS steps; progress every 10%)"
ns-train "$PRESET" --data "$DATA" --output-dir "$OUT/outputs" --experiment-name demo --vis tensorboard \
  --max-num-iterations "$STEPS" 2>&1 | tee "$OUT/train.log" | awk '
  /\([0-9.]+%\)/ {
    if (match($0, /\([0-9.]+%\)/) && int(substr($0, RSTART + 1, RLENGTH - 3) / 10) > shown) {
      shown = int(substr($0, RSTART + 1, RLENGTH - 3) / 10); gsub(/\033\[[0-9;]*m/, ""); print "   " $0; fflush()
    }
    next
  }
  /grids upsampled|scene box shrunk|Traceback|[A-Za-z]+Error:/ { print "   " $0; fflush() }'
CONFIG=$(ls -td "$OUT"/outputs/demo/"$PRESET"/*/ | head -1)config.yml
echo "== evaluating the test views (ns-eval: $OUT/ns-eval.json; plift-eval: $OUT/eval.md)"
ns-eval --load-config "$CONFIG" --output-path "$OUT/ns-eval.json" > "$OUT/ns-eval.log" 2>&1
plift-eval --load-config "$CONFIG" --output-dir "$OUT"
echo "== rendering the panoptic video"
ns-render interpolate --load-config "$CONFIG" --rendered-output-names rgb semantics instances panoptic \
  --interpolation-steps 4 --frame-rate 12 --output-path "$OUT/panoptic.mp4" > "$OUT/ns-render.log" 2>&1
echo "== demo done: $OUT/eval.md (+ eval.json, eval_grid.png), $OUT/panoptic.mp4; the run: $CONFIG"
