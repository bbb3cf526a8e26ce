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
#   --work-dir DIR   default work_dirs/quick_start/<config name>. Each run
#                    starts afresh: DIR is emptied if an earlier quick start
#                    made it (it holds .quick_start_work_dir) and refused if
#                    it holds anything else. Do not keep files of yours there.
# Relative paths are relative to the current directory (or, for --config,
# to the repository).
set -euo pipefail
START=$(date +%s)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLER_PWD="$(pwd)"
# Marks the work dirs this script made: only those are ever deleted.
MARKER=".quick_start_work_dir"

die() {  # die CODE MESSAGE
  echo "[quick_start] error: $2" >&2
  exit "$1"
}

abspath() {  # relative paths are the caller's, not the repository's
  case "$1" in
    /*) echo "$1" ;;
    *) echo "$CALLER_PWD/$1" ;;
  esac
}

# May this run empty and reuse DIR? Yes if it does not exist, is empty, or
# carries the marker of an earlier quick start; otherwise exit 2 before
# anything is set up, deleted or trained.
check_work_dir() {
  local dir="$1"
  if [ -e "$dir" ] && [ ! -d "$dir" ]; then
    die 2 "--work-dir $dir exists and is not a folder. Choose another path."
  fi
  if [ ! -d "$dir" ] || [ -f "$dir/$MARKER" ]; then
    return 0
  fi
  [ -r "$dir" ] && [ -x "$dir" ] \
    || die 2 "--work-dir $dir: cannot read this folder. Choose another path."
  if [ -z "$(ls -A "$dir")" ]; then
    return 0
  fi
  die 2 "refusing to use --work-dir $dir: it is not empty and was not made
by quick_start.sh (no $MARKER in it), and each quick start empties its work
dir. Nothing was changed. Pass a new or empty folder as --work-dir, or move
your files out of $dir (if it is the output of an earlier quick start made
before work dirs were marked, delete it yourself: rm -rf '$dir')."
}

DATA_ROOT=""
CONFIG="configs/cam_baseline/cam_resnet_toy.py"
WORK_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data-root|--config|--work-dir)
      [ $# -ge 2 ] || die 2 "$1 needs a value (see --help)" ;;&
    --data-root) DATA_ROOT="$(abspath "$2")"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --work-dir) WORK_DIR="$(abspath "$2")"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die 2 "unknown argument: $1 (see --help)" ;;
  esac
done
cd "$ROOT"
if [ -n "$CONFIG" ] && [ "${CONFIG#/}" = "$CONFIG" ] \
    && [ -f "$CALLER_PWD/$CONFIG" ]; then
  CONFIG="$CALLER_PWD/$CONFIG"
fi
NAME="$(basename "$CONFIG" .py)"
WORK_DIR="${WORK_DIR:-$ROOT/work_dirs/quick_start/$NAME}"

# Cheap checks first: a mistake must not cost the setup or a training.
check_work_dir "$WORK_DIR"
[ -f "$CONFIG" ] || die 2 "--config $CONFIG: no such file (relative paths
are looked up in $CALLER_PWD, then in $ROOT; the configs are under
$ROOT/configs)."
if [ -n "$DATA_ROOT" ] && [ ! -d "$DATA_ROOT" ]; then
  die 2 "--data-root $DATA_ROOT: no such folder."
fi

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
# RRM and ASDT start from the toy CAM baseline's classifier (trained on
# data/toy): make it once.
if "$PY" -c "import sys; from mmengine import Config; \
sys.exit('cam_r18-tiny_toy.pth' not in Config.fromfile(sys.argv[1]).pretty_text)" \
    "$CONFIG"; then
  bash tools/pretrain_toy_resnet.sh
fi

# A fresh run each time: the quick start measures the whole job. Checked
# again: the folder may have changed during the setup.
check_work_dir "$WORK_DIR"
if [ -f "$WORK_DIR/$MARKER" ]; then
  rm -rf "$WORK_DIR"
fi
mkdir -p "$WORK_DIR"
echo "made by tools/quick_start.sh: emptied by its next run" \
  > "$WORK_DIR/$MARKER"
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
