#!/usr/bin/env bash
# The main job, from a fresh clone: set up .venv, generate the toy dataset,
# train the CAM baseline, test it with and without dense CRF, and print the
# wall time and the val mIoU (the last line: without CRF).
#
# Usage: bash tools/quick_start.sh [--data-root DIR] [--config CONFIG]
#                                  [--work-dir DIR]
#   --data-root DIR  train and test on your own VOC-layout folder instead of
#                    the generated toy dataset (JPEGImages/, SegmentationClass/,
#                    ImageSets/Segmentation/{train,val}.txt, classes.txt)
#   --config CFG     default configs/cam_baseline/cam_resnet_toy.py
set -euo pipefail
START=$(date +%s)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DATA_ROOT=""
CONFIG="configs/cam_baseline/cam_resnet_toy.py"
WORK_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data-root) DATA_ROOT="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --work-dir) WORK_DIR="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
NAME="$(basename "$CONFIG" .py)"
WORK_DIR="${WORK_DIR:-work_dirs/quick_start/$NAME}"

bash tools/setup_env.sh
PY="$ROOT/.venv/bin/python"
export PYTHONUNBUFFERED=1

if [ -z "$DATA_ROOT" ]; then
  DATA_ROOT="data/toy"
  "$PY" tools/generate_toy_dataset.py "$DATA_ROOT"
fi

# The toy ViT configs start from the toy stand-in for DeiT-B: make it once.
if "$PY" -c "import sys; from mmengine import Config; \
sys.exit('vit-tiny-p8_toy-pretrain.pth' not in Config.fromfile(sys.argv[1]).pretty_text)" \
    "$CONFIG"; then
  bash tools/pretrain_toy_vit.sh
fi

# A fresh run each time: the quick start measures the whole job.
rm -rf "$WORK_DIR"
mkdir -p "$WORK_DIR"
echo "[quick_start] training $CONFIG on $DATA_ROOT (log: $WORK_DIR/train.log)"
"$PY" tools/train.py "$CONFIG" --data-root "$DATA_ROOT" \
  --work-dir "$WORK_DIR" > "$WORK_DIR/train.log" 2>&1 \
  || { tail -n 40 "$WORK_DIR/train.log" >&2; echo "[quick_start] training failed" >&2; exit 1; }
grep -E "Iter\(train\)" "$WORK_DIR/train.log" | tail -n 3 || true
CKPT="$(cat "$WORK_DIR/last_checkpoint")"

echo "[quick_start] testing $CKPT"
"$PY" tools/test.py "$CONFIG" "$CKPT" --data-root "$DATA_ROOT" \
  --work-dir "$WORK_DIR/test" --out "$WORK_DIR/test/pred" \
  > "$WORK_DIR/test.log" 2>&1 \
  || { tail -n 40 "$WORK_DIR/test.log" >&2; echo "[quick_start] testing failed" >&2; exit 1; }
miou() {
  "$PY" -c "import json,sys; print('%.1f' % json.load(open(sys.argv[1]))['mIoU'])" "$1"
}
MIOU="$(miou "$WORK_DIR/test/metrics.json")"

echo "[quick_start] testing $CKPT with dense CRF (--crf)"
"$PY" tools/test.py "$CONFIG" "$CKPT" --data-root "$DATA_ROOT" --crf \
  --work-dir "$WORK_DIR/test_crf" --out "$WORK_DIR/test_crf/pred" \
  > "$WORK_DIR/test_crf.log" 2>&1 \
  || { tail -n 40 "$WORK_DIR/test_crf.log" >&2; echo "[quick_start] CRF testing failed" >&2; exit 1; }
MIOU_CRF="$(miou "$WORK_DIR/test_crf/metrics.json")"

echo "[quick_start] predictions: $WORK_DIR/test/pred (CRF: $WORK_DIR/test_crf/pred), logs: $WORK_DIR"
echo "quick start wall time: $(( $(date +%s) - START )) s"
echo "val mIoU (CRF): $MIOU_CRF"
echo "val mIoU (no CRF): $MIOU"
