#!/usr/bin/env bash
# The toy stand-in for PSA's VOC-trained classifier (res38_cls.pth), which
# RRM and ASDT start from: the toy CAM baseline on the quarter-width
# ResNet-18 (configs/cam_baseline/cam_resnet_toy.py), trained on the toy
# training set (seed 0, 3,000 iterations at batch 16: the same run as the
# CAM baseline's toy result), its last checkpoint's weights (backbone and
# CAM classifier) written to pretrain/cam_r18-tiny_toy.pth, the `load_from`
# of the RRM and ASDT toy configs. About 10 min on 2 CPU cores. Does nothing
# when the checkpoint exists (unless --force). The classifier is trained on
# the data it will label, as PSA's on VOC: for another toy domain, redo it
# with --force --data-root DIR (the file records the data root).
#
# Usage: bash tools/pretrain_toy_resnet.sh [--force] [--threads N]
#            [--data-root DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT="pretrain/cam_r18-tiny_toy.pth"
CONFIG="configs/cam_baseline/cam_resnet_toy.py"
DATA_ROOT="data/toy"
WORK_DIR="work_dirs/cam_r18-tiny_toy-pretrain"
FORCE=0
THREADS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1; shift ;;
    --threads) THREADS="$2"; shift 2 ;;
    --data-root) DATA_ROOT="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -f "$OUT" ] && [ "$FORCE" = 0 ]; then
  echo "[pretrain_toy_resnet] $OUT exists (--force to redo)"
  exit 0
fi

bash tools/setup_env.sh
PY="$ROOT/.venv/bin/python"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS="$THREADS"
if [ ! -f "$DATA_ROOT/classes.txt" ]; then
  "$PY" tools/generate_toy_dataset.py "$DATA_ROOT"
fi
rm -rf "$WORK_DIR"
mkdir -p "$WORK_DIR" "$(dirname "$OUT")"
echo "[pretrain_toy_resnet] training $CONFIG (log: $WORK_DIR/train.log)"
"$PY" tools/train.py "$CONFIG" --data-root "$DATA_ROOT" \
  --work-dir "$WORK_DIR" > "$WORK_DIR/train.log" 2>&1 \
  || { tail -n 40 "$WORK_DIR/train.log" >&2; echo "[pretrain_toy_resnet] training failed" >&2; exit 1; }
# Weights only (no optimiser state): what `load_from` reads.
"$PY" - "$(cat "$WORK_DIR/last_checkpoint")" "$OUT" "$DATA_ROOT" <<'PYEOF'
import io
import sys

import torch

from mmseg_wsss_light.fileio import write_bytes_atomic

src, dst, data_root = sys.argv[1:]
ckpt = torch.load(src, map_location='cpu', weights_only=False)
buf = io.BytesIO()
meta = {'source': src, 'data_root': data_root}
torch.save({'state_dict': ckpt['state_dict'], 'meta': meta}, buf)
write_bytes_atomic(dst, buf.getvalue())
print(f'{len(ckpt["state_dict"])} tensors (trained on {data_root}) -> {dst}')
PYEOF
