#!/usr/bin/env bash
# The toy stand-in for DeiT-B: pretrain the tiny ViT of the toy CAM-ViT, ToCo
# and DuPL configs with image labels on a toy set of its own (seed 100, 8,000
# training images; never the toy train/val images), then extract its backbone
# to pretrain/vit-tiny-p8_toy-pretrain.pth, the checkpoint their init_cfg
# names. About 10 min on 2 CPU cores. Does nothing when the checkpoint exists
# (unless --force).
#
# Usage: bash tools/pretrain_toy_vit.sh [--force] [--threads N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT="pretrain/vit-tiny-p8_toy-pretrain.pth"
CONFIG="configs/cam_baseline/cam_vit-tiny-p8_1xb16-3k_toy-pretrain-96x96.py"
DATA_ROOT="data/toy_pretrain"
WORK_DIR="work_dirs/vit-tiny-p8_toy-pretrain"
FORCE=0
THREADS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1; shift ;;
    --threads) THREADS="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -f "$OUT" ] && [ "$FORCE" = 0 ]; then
  echo "[pretrain_toy_vit] $OUT exists (--force to redo)"
  exit 0
fi

bash tools/setup_env.sh
PY="$ROOT/.venv/bin/python"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS="$THREADS"
"$PY" tools/generate_toy_dataset.py "$DATA_ROOT" --seed 100 \
  --num-train 8000 --num-val 300
rm -rf "$WORK_DIR"
mkdir -p "$WORK_DIR"
echo "[pretrain_toy_vit] training $CONFIG (log: $WORK_DIR/train.log)"
"$PY" tools/train.py "$CONFIG" --data-root "$DATA_ROOT" \
  --work-dir "$WORK_DIR" > "$WORK_DIR/train.log" 2>&1 \
  || { tail -n 40 "$WORK_DIR/train.log" >&2; echo "[pretrain_toy_vit] training failed" >&2; exit 1; }
"$PY" tools/model_converters/extract_backbone.py \
  "$(cat "$WORK_DIR/last_checkpoint")" "$OUT"
