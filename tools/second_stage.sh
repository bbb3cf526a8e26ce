#!/usr/bin/env bash
# The two-stage protocol of WSSS: export a single-stage model's pseudo labels
# for the training images, train a fully supervised segmenter on them, test
# both on val and print the two mIoUs side by side.
#
# Usage: tools/second_stage.sh CONFIG CKPT SECOND_CONFIG [WORK_DIR] [options]
#   CONFIG, CKPT    the single-stage (WSSS) model and its checkpoint
#   SECOND_CONFIG   a configs/second_stage/ config (its training set is a
#                   PseudoLabelDataset)
#   WORK_DIR        default work_dirs/second_stage/<SECOND_CONFIG name>
# Options:
#   --data-root DIR every step uses this dataset folder (the tools'
#                   --data-root), e.g. the second toy domain data/toy2
#   --crf           refine the pseudo labels with the single-stage model's
#                   dense CRF (make_pseudo_labels.py --crf); or CRF=1
#   Anything else goes to the second stage's tools/train.py (e.g. --amp,
#   --cfg-options k=v ...: merged with the pseudo-label folder).
# Environment:
#   CRF=1           as --crf
#   SPLIT           split of the pseudo labels (default: the one SECOND_CONFIG
#                   trains on, e.g. train_aug for VOC, train for the toy)
#   PSEUDO_ARGS     more make_pseudo_labels.py arguments (e.g. --from-cams)
#   TEST_ARGS       more tools/test.py arguments, both tests (e.g. --crf)
#   GPUS            train on N GPUs with tools/dist_train.sh (default 1:
#                   tools/train.py); PORT as for dist_train.sh
#   PYTHON          the interpreter (tools/python_env.sh)
# Steps, each skipped when its output exists (run the same command again to
# resume after a failure or a requeue); logs in WORK_DIR/<step>.log:
#   1. WORK_DIR/pseudo_labels/            tools/make_pseudo_labels.py (into
#      pseudo_labels.partial/, renamed when complete; its scores against the
#      masks in WORK_DIR/pseudo_labels.json)
#   2. WORK_DIR/single_stage_test/metrics.json     tools/test.py CONFIG CKPT
#   3. WORK_DIR/second_stage/train.done   tools/train.py SECOND_CONFIG
#      --resume-if-possible, pseudo_label_dir=WORK_DIR/pseudo_labels
#   4. WORK_DIR/second_stage_test/metrics.json     tools/test.py on its
#      last checkpoint
# Relative paths are relative to the current directory (configs: or to the
# repository).
set -euo pipefail
source "$(dirname "$0")/python_env.sh"  # ROOT, PYTHON
CALLER_PWD="$(pwd)"
export PYTHONUNBUFFERED=1

die() {  # die CODE MESSAGE
  echo "[second_stage] error: $2" >&2
  exit "$1"
}
say() { echo "[second_stage] $*"; }
abspath() {
  case "$1" in
    /*) echo "$1" ;;
    *) echo "$CALLER_PWD/$1" ;;
  esac
}
config_path() {  # the caller's file if it exists, else the repository's
  case "$1" in
    /*) echo "$1" ;;
    *) if [ -f "$CALLER_PWD/$1" ]; then echo "$CALLER_PWD/$1";
       else echo "$ROOT/$1"; fi ;;
  esac
}

if [ $# -ge 1 ] && { [ "$1" = -h ] || [ "$1" = --help ]; }; then
  sed -n '2,38p' "$0"
  exit 0
fi
[ $# -ge 3 ] || die 2 "usage: tools/second_stage.sh CONFIG CKPT SECOND_CONFIG [WORK_DIR] [options] (see --help)"
CONFIG="$(config_path "$1")"
CKPT="$(abspath "$2")"
SECOND_CONFIG="$(config_path "$3")"
shift 3
WORK_DIR=""
if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then
  WORK_DIR="$(abspath "$1")"
  shift
fi
WORK_DIR="${WORK_DIR:-$ROOT/work_dirs/second_stage/$(basename "$SECOND_CONFIG" .py)}"

DATA_ROOT=""
CRF="${CRF:-0}"
TRAIN_ARGS=()
CFG_OPTIONS=()
in_cfg_options=0
while [ $# -gt 0 ]; do
  case "$1" in
    --data-root)
      [ $# -ge 2 ] || die 2 "--data-root needs a folder"
      DATA_ROOT="$(abspath "$2")"; in_cfg_options=0; shift 2 ;;
    --data-root=*) DATA_ROOT="$(abspath "${1#*=}")"; in_cfg_options=0; shift ;;
    --crf) CRF=1; in_cfg_options=0; shift ;;
    --cfg-options) in_cfg_options=1; shift ;;
    --work-dir|--work-dir=*|--resume|--resume=*|--launcher|--launcher=*)
      die 2 "$1: the script sets it (WORK_DIR is the 4th argument; GPUS=N for several GPUs)" ;;
    -*) in_cfg_options=0; TRAIN_ARGS+=("$1"); shift ;;
    *)
      if [ "$in_cfg_options" = 1 ]; then CFG_OPTIONS+=("$1");
      else TRAIN_ARGS+=("$1"); fi
      shift ;;
  esac
done

# Cheap checks first.
[ -f "$CONFIG" ] || die 2 "CONFIG $CONFIG: no such file"
[ -f "$SECOND_CONFIG" ] || die 2 "SECOND_CONFIG $SECOND_CONFIG: no such file"
if [ -n "$DATA_ROOT" ] && [ ! -d "$DATA_ROOT" ]; then
  die 2 "--data-root $DATA_ROOT: no such folder"
fi
DATA_ARGS=()
if [ -n "$DATA_ROOT" ]; then DATA_ARGS=(--data-root "$DATA_ROOT"); fi
cd "$ROOT"

PSEUDO="$WORK_DIR/pseudo_labels"
SINGLE_TEST="$WORK_DIR/single_stage_test"
SECOND="$WORK_DIR/second_stage"
SECOND_TEST="$WORK_DIR/second_stage_test"
mkdir -p "$WORK_DIR"

# The split SECOND_CONFIG trains on (its innermost training dataset's
# ann_file), after checking that its training set reads pseudo labels; read
# only when a step needs it (importing the stack takes a few seconds).
CONFIG_READ=0
read_second_config() {
  [ "$CONFIG_READ" = 0 ] || return 0
  local info
  info="$("$PYTHON" - "$SECOND_CONFIG" <<'EOF'
import os.path as osp
import sys

sys.path.insert(0, '.')
from mmengine.config import Config  # noqa: E402

cfg = Config.fromfile(sys.argv[1], import_custom_modules=False)
ds = cfg.train_dataloader.dataset
wrapped = ds.get('type') == 'PseudoLabelDataset'
while not ds.get('ann_file') and isinstance(ds.get('dataset'), dict):
    ds = ds['dataset']
ann = ds.get('ann_file')
print(int(wrapped), osp.splitext(osp.basename(ann))[0] if ann else 'train')
EOF
)" || die 2 "cannot read SECOND_CONFIG $SECOND_CONFIG (see above)"
  [ "${info%% *}" = 1 ] || die 2 "SECOND_CONFIG $SECOND_CONFIG does not train
on pseudo labels (its train_dataloader.dataset is not a PseudoLabelDataset);
use a configs/second_stage/ config (not an oracle one)."
  SPLIT="${SPLIT:-${info#* }}"
  CONFIG_READ=1
}

need_ckpt() {
  [ -f "$CKPT" ] || die 2 "CKPT $CKPT: no such file"
}
run_step() {  # run_step NAME LOG COMMAND...: output to LOG, its tail on failure
  local name="$1" log="$2"
  shift 2
  say "$name (log: $log)"
  if ! "$@" > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    die 1 "$name failed (full log: $log)"
  fi
}
# shellcheck disable=SC2206  # word splitting of the *_ARGS variables wanted
EXTRA_PSEUDO=(${PSEUDO_ARGS:-})
# shellcheck disable=SC2206
EXTRA_TEST=(${TEST_ARGS:-})

# 1. Pseudo labels of the training split.
if [ -d "$PSEUDO" ]; then
  made_by=""
  if [ -f "$WORK_DIR/pseudo_labels.args" ]; then
    made_by=" (made by: $(cat "$WORK_DIR/pseudo_labels.args"))"
  fi
  say "1/4 pseudo labels: $PSEUDO exists$made_by, skipped"
else
  need_ckpt
  read_second_config
  PSEUDO_CMD=(tools/make_pseudo_labels.py "$CONFIG" "$CKPT" --split "$SPLIT"
              "${DATA_ARGS[@]}" "${EXTRA_PSEUDO[@]}")
  if [ "$CRF" = 1 ]; then PSEUDO_CMD+=(--crf); fi
  # An interrupted export is resumed only with the same settings.
  if [ -d "$PSEUDO.partial" ] && [ -f "$WORK_DIR/pseudo_labels.args" ] \
      && [ "$(cat "$WORK_DIR/pseudo_labels.args")" != "${PSEUDO_CMD[*]}" ]; then
    die 2 "$PSEUDO.partial was started by
  $(cat "$WORK_DIR/pseudo_labels.args")
not by
  ${PSEUDO_CMD[*]}
Delete it (rm -rf '$PSEUDO.partial') or choose another WORK_DIR."
  fi
  echo "${PSEUDO_CMD[*]}" > "$WORK_DIR/pseudo_labels.args"
  # make_pseudo_labels.py resumes an interrupted export in the same folder
  # (it writes each PNG atomically and skips those that exist).
  run_step "1/4 pseudo labels of split $SPLIT -> $PSEUDO" \
    "$WORK_DIR/pseudo_labels.log" \
    "$PYTHON" "${PSEUDO_CMD[@]}" --out "$PSEUDO.partial" \
    --work-dir "$WORK_DIR/pseudo_labels_run"
  grep -i "miou" "$WORK_DIR/pseudo_labels.log" | tail -n 1 || true
  mv "$PSEUDO.partial" "$PSEUDO"
  # Its scores of the labels against the masks (DIR.json, beside DIR).
  if [ -f "$PSEUDO.partial.json" ]; then
    mv "$PSEUDO.partial.json" "$PSEUDO.json"
  fi
fi

# 2. The single-stage model on val.
if [ -f "$SINGLE_TEST/metrics.json" ]; then
  say "2/4 single-stage test: $SINGLE_TEST/metrics.json exists, skipped"
else
  need_ckpt
  run_step "2/4 testing the single-stage model" "$WORK_DIR/single_stage_test.log" \
    "$PYTHON" tools/test.py "$CONFIG" "$CKPT" --work-dir "$SINGLE_TEST" \
    "${DATA_ARGS[@]}" "${EXTRA_TEST[@]}"
fi

# 3. The second stage on the pseudo labels.
if [ -f "$SECOND/train.done" ]; then
  say "3/4 second-stage training: $SECOND/train.done exists, skipped"
else
  read_second_config
  if [ "${GPUS:-1}" -gt 1 ]; then
    TRAIN=(bash tools/dist_train.sh "$SECOND_CONFIG" "$GPUS")
  else
    TRAIN=("$PYTHON" tools/train.py "$SECOND_CONFIG")
  fi
  run_step "3/4 training $(basename "$SECOND_CONFIG") on the pseudo labels" \
    "$WORK_DIR/second_stage_train.log" \
    "${TRAIN[@]}" --work-dir "$SECOND" --resume-if-possible \
    "${DATA_ARGS[@]}" "${TRAIN_ARGS[@]}" --cfg-options \
    "train_dataloader.dataset.pseudo_label_dir=$PSEUDO" "${CFG_OPTIONS[@]}"
  [ -f "$SECOND/last_checkpoint" ] \
    || die 1 "training wrote no $SECOND/last_checkpoint"
  date > "$SECOND/train.done"
fi

# 4. The second stage on val.
if [ -f "$SECOND_TEST/metrics.json" ]; then
  say "4/4 second-stage test: $SECOND_TEST/metrics.json exists, skipped"
else
  [ -f "$SECOND/last_checkpoint" ] || die 1 "no $SECOND/last_checkpoint"
  SECOND_CKPT="$(cat "$SECOND/last_checkpoint")"
  run_step "4/4 testing $SECOND_CKPT" "$WORK_DIR/second_stage_test.log" \
    "$PYTHON" tools/test.py "$SECOND_CONFIG" "$SECOND_CKPT" \
    --work-dir "$SECOND_TEST" "${DATA_ARGS[@]}" "${EXTRA_TEST[@]}"
fi

miou() {
  "$PYTHON" -c "import json,sys; print('%.2f' % json.load(open(sys.argv[1]))['mIoU'])" "$1"
}
A="$(miou "$SINGLE_TEST/metrics.json")"
B="$(miou "$SECOND_TEST/metrics.json")"
DIFF="$("$PYTHON" -c "import sys; print('%+.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$A" "$B")"
say "work dir: $WORK_DIR"
echo "val mIoU  single stage: $A  second stage: $B  ($DIFF)"
