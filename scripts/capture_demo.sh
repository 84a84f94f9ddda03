#!/usr/bin/env bash
# The capture workflow, end to end on the demo scene, the way a user runs it on a phone capture:
#   images only -> ns-process-data images (COLMAP poses, CPU) -> labels -> ns-train -> plift-eval on the test frames
#   that COLMAP registered.
# Everything goes under demo_capture/ (or $PLIFT_CAPTURE_OUT). A step whose output exists is skipped, so a rerun
# resumes and nothing made earlier is overwritten. Each step's wall time goes to demo_capture/timings.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${PLIFT_CAPTURE_OUT:-demo_capture}"
STEPS="${PLIFT_DEMO_STEPS:-3000}"
VENV="${PLIFT_VENV:-.venv}"
mkdir -p "$OUT"
TIMINGS="$OUT/timings.md"
source scripts/timed_steps.sh  # timed "<step name>" command...
timed "setup (project, COLMAP, libusb)" bash scripts/setup_capture.sh
export PATH="$PWD/$VENV/bin:$PATH"

if [ ! -d "$OUT/capture/images" ]; then
  # the capture: 100 images (no poses); the demo's 2D machine labels and ground truth come beside them
  timed "plift-synth --images-only" plift-synth --output "$OUT/capture" --images-only --seed 0 --num-frames 100 \
    --width 160 --height 120 --noise moderate
fi
if [ ! -f "$OUT/processed/transforms.json" ]; then
  # exhaustive matching: the default vocab_tree matcher downloads a vocabulary file
  timed "ns-process-data images (COLMAP, CPU)" ns-process-data images --data "$OUT/capture/images" \
    --output-dir "$OUT/processed" --no-gpu --matching-method exhaustive
fi
# labels: on a real capture `plift-segment --data "$OUT/processed" --model <Mask2Former folder>`; the demo capture
# brings its 2D machine labels as a label folder (already labelled frames are skipped on a rerun)
timed "plift-import-labels (demo's machine labels)" plift-import-labels --data "$OUT/processed" \
  --predictions "$OUT/capture/machine_labels"
if ! grep -q '"test_filenames"' "$OUT/processed/transforms.json"; then
  timed "plift-attach-ground-truth" plift-attach-ground-truth --data "$OUT/processed" \
    --ground-truth "$OUT/capture/ground_truth/frames.json"
fi
if ! ls "$OUT"/outputs/capture/panoptic-lifting-lite/*/config.yml >/dev/null 2>&1; then
  timed "ns-train panoptic-lifting-lite ($STEPS steps)" ns-train panoptic-lifting-lite --data "$OUT/processed" \
    --output-dir "$OUT/outputs" --experiment-name capture --vis tensorboard --max-num-iterations "$STEPS"
fi
CONFIG=$(ls -td "$OUT"/outputs/capture/panoptic-lifting-lite/*/ | head -1)config.yml
timed "plift-eval (registered test frames)" plift-eval --load-config "$CONFIG" --output-dir "$OUT"
cat "$TIMINGS"
echo "== capture workflow done: $OUT/eval.md (+ .json, eval_grid.png), timings in $TIMINGS; config $CONFIG"
