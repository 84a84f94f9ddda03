#!/usr/bin/env bash
# A realistic room the capture way, poses as users have them: the walk's images only -> ns-process-data images
# (COLMAP poses, CPU) -> machine labels (plift-import-labels) -> ground truth and test split
# (plift-attach-ground-truth) -> plift-sparse-depth -> ns-train panoptic-lifting-cpu -> plift-eval.
# Its scores stand beside the same room trained on the renderer's poses (benchmark_quality.py --realistic).
#
#   bash scripts/capture_realistic_room.sh [ROOM] [LABEL_FORM]
#     ROOM        default data/realistic-v2/bedroom-living-0
#     LABEL_FORM  coco (the room's COCO panoptic variant, as most segmenters export; default) or distributions
#
# Everything goes under capture_room/<room>-<form>/ (or $PLIFT_CAPTURE_OUT). A step whose output exists is skipped,
# so a rerun resumes and nothing made earlier is overwritten. Wall times go to timings.md there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOM="${1:-data/realistic-v2/bedroom-living-0}"
FORM="${2:-coco}"
NAME="$(basename "$ROOM")"
OUT="${PLIFT_CAPTURE_OUT:-capture_room/$NAME-$FORM}"
SEED="${PLIFT_SEED:-42}"
VENV="${PLIFT_VENV:-.venv}"
case "$FORM" in
  coco) PREDICTIONS="$ROOM/coco_panoptic/predictions.json" ;;
  distributions) PREDICTIONS="$ROOM/labels" ;;
  *) echo "LABEL_FORM must be coco or distributions, not '$FORM'" >&2; exit 2 ;;
esac
[ -f "$ROOM/transforms.json" ] || { echo "$ROOM is not a room (no transforms.json)" >&2; exit 2; }
mkdir -p "$OUT"
TIMINGS="$OUT/timings.md"
source scripts/timed_steps.sh  # timed "<step name>" command...
timed "setup (project, COLMAP, libusb)" bash scripts/setup_capture.sh
export PATH="$PWD/$VENV/bin:$PATH"

if [ ! -d "$OUT/capture/images" ]; then
  timed "export the walk as a capture (images, ground truth)" \
    python -m plift_nerfstudio.scenes.realistic.capture --room "$ROOM" --output "$OUT/capture"
fi
if [ ! -f "$OUT/processed/transforms.json" ]; then
  timed "ns-process-data images (COLMAP, CPU)" ns-process-data images --data "$OUT/capture/images" \
    --output-dir "$OUT/processed" --no-gpu --matching-method exhaustive
fi
timed "plift-import-labels ($FORM)" plift-import-labels --data "$OUT/processed" --predictions "$PREDICTIONS"
if ! grep -q '"test_filenames"' "$OUT/processed/transforms.json"; then
  timed "plift-attach-ground-truth" plift-attach-ground-truth --data "$OUT/processed" \
    --ground-truth "$OUT/capture/ground_truth/frames.json"
fi
if [ ! -f "$OUT/processed/sparse_depth/points.npz" ]; then
  timed "plift-sparse-depth" plift-sparse-depth --data "$OUT/processed"
fi
if ! ls "$OUT"/outputs/capture/panoptic-lifting-cpu/*/config.yml >/dev/null 2>&1; then
  timed "ns-train panoptic-lifting-cpu (seed $SEED)" ns-train panoptic-lifting-cpu --data "$OUT/processed" \
    --output-dir "$OUT/outputs" --experiment-name capture --vis tensorboard --machine.seed "$SEED"
fi
CONFIG=$(ls -td "$OUT"/outputs/capture/panoptic-lifting-cpu/*/ | head -1)config.yml
timed "plift-eval (registered test frames)" plift-eval --load-config "$CONFIG" --output-dir "$OUT"
cat "$TIMINGS"
echo "== $NAME the capture way done: $OUT/eval.md (+ .json, eval_grid.png), timings in $TIMINGS; config $CONFIG"
