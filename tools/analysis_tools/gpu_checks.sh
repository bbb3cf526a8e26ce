#!/usr/bin/env bash
# The GPU measurements of the performance issue (#19) as one prepared script,
# for a GPU machine that has PyTorch but no network (a rented or lent box).
# The parts run in the issue's order, each under its own time limit, so a
# short lease still ends with the first parts' figures:
#
#   env      torch, CUDA, the GPU
#   crf      dense CRF: the torch backend on the GPU at VOC size (img/s,
#            batches of 16 and 32), its agreement with pydensecrf, and
#            pydensecrf on 1 and N CPU processes for the ratio
#   dupl     DuPL step, ours vs the authors' (same inputs, one process),
#            fp32 and ours with --amp, peak memory of both
#   toco     the same for ToCo (its energy loss out on both sides)
#   profile  cProfile of one DuPL and one ToCo step on the GPU
#   memory   peak memory and largest batch per 24 / 80 GiB of DuPL, ToCo,
#            FSR and 1Stage, fp32 and AMP (add --verify to run the fitted
#            batches under an allocator cap; slower)
#
# Usage:
#   # here, with access to the package index: wheels and the authors' code
#   bash tools/analysis_tools/gpu_checks.sh prepare \
#       --authors-dupl /path/to/DuPL --authors-toco /path/to/ToCo
#   # there, from the repository root (the copy of this tree, with the
#   # ignored .whl/ and .authors/ folders beside it):
#   bash tools/analysis_tools/gpu_checks.sh run --out OUT_DIR \
#       [--parts env,crf,dupl,toco,profile,memory] [--part-timeout 150]
#       [--part-timeout memory=450]
#       [--verify] [--quick] [--device cuda] [--authors .authors]
#
# `prepare` downloads, for CPython 3.12 on x86-64 Linux, the wheels this
# package needs beyond a PyTorch image (mmengine, mmcv-lite, mmsegmentation,
# mmpretrain and their pure-Python needs, texttable for the authors' code)
# and pydensecrf2's sdist into .whl/, and copies the authors' checkouts,
# without .git and their .npy / .pth files, into .authors/ (both ignored by
# git). `run` installs .whl/ into /tmp/site when mmseg is not importable,
# builds pydensecrf2 there (its sdist ships the generated C++), writes one text
# file per part to OUT_DIR (env.txt, crf.txt, ...) plus summary.txt with
# each part's exit status and seconds. --quick shrinks every size (a smoke
# test of the script, e.g. on the CPU with --device cpu); its figures mean
# nothing. Relative paths in the options are read against the caller's
# directory; the default --authors is the repository's .authors/.
set -uo pipefail
source "$(dirname "$0")/../python_env.sh"  # ROOT, PYTHON
CALLER_DIR=$PWD
cd "$ROOT"

# Paths given on the command line are the caller's, not the repository's.
abspath() { case "$1" in /*|'') echo "$1" ;; *) echo "$CALLER_DIR/$1" ;; esac; }
# An option that takes a value must have one ($1: the option, $2: how many
# arguments are left).
need_value() {
  case "$1" in --verify|--quick) ;;
    --*) [ "$2" -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; } ;; esac
}

usage() { sed -n '2,40p' "$0"; }

prepare() {
  local dupl='' toco=''
  while [ $# -gt 0 ]; do
    need_value "$1" $#
    case "$1" in
      --authors-dupl) dupl=$(abspath "$2"); shift 2 ;;
      --authors-toco) toco=$(abspath "$2"); shift 2 ;;
      *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
  done
  # Wheels a PyTorch image lacks: the OpenMMLab stack at the lock file's
  # pins, their pure-Python needs, texttable for the authors' code.
  local wheels
  mapfile -t wheels < <(grep -E \
    '^(mmengine|mmcv-lite|mmsegmentation|mmpretrain)==' requirements/cpu-lock.txt)
  wheels+=(addict yapf platformdirs termcolor ftfy wcwidth prettytable mat4py
    modelindex model-index ordered-set importlib-metadata texttable)
  mkdir -p .whl
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any \
    -d .whl "${wheels[@]}" || exit 1
  "$PYTHON" -m pip download -q --no-deps --no-binary=:all: -d .whl \
    "$(grep -E '^pydensecrf2==' requirements/cpu-lock.txt)" || exit 1
  local name src
  for name in DuPL ToCo; do
    [ "$name" = DuPL ] && src="$dupl" || src="$toco"
    [ -n "$src" ] || { echo "[gpu_checks] no checkout of $name given: its part will be skipped"; continue; }
    [ -d "$src" ] || { echo "[gpu_checks] $src is not a folder" >&2; exit 2; }
    rm -rf ".authors/$name" && mkdir -p ".authors/$name"
    (cd "$src" && find . -path ./.git -prune -o -type f ! -name '*.npy' \
      ! -name '*.pth' -print0 | xargs -0 cp --parents -t "$ROOT/.authors/$name")
  done
  du -sh .whl .authors 2>/dev/null
  echo "[gpu_checks] prepared: carry .whl and .authors with the tree"
}

install_wheels() {
  # Only when the package's stack is missing (a bare PyTorch image).
  if "$PYTHON" -c 'import mmseg, mmpretrain, pydensecrf' 2>/dev/null; then
    return 0
  fi
  [ -d .whl ] || { echo "[gpu_checks] mmseg missing and no .whl/ (run prepare)" >&2; return 1; }
  local site=/tmp/site
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$site" .whl/*.whl || return 1
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  if ! "$PYTHON" -c 'import pydensecrf' 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation \
      --no-cache-dir --target "$site" .whl/pydensecrf2-*.tar.gz \
      || echo "[gpu_checks] pydensecrf2 did not build: the CRF agreement is skipped"
  fi
}

run() {
  local out='' parts='env,crf,dupl,toco,profile,memory' limit=150
  local verify='' quick=0 device=cuda authors=.authors
  local -A limits=()  # per-part limits: --part-timeout PART=SECONDS
  while [ $# -gt 0 ]; do
    need_value "$1" $#
    case "$1" in
      --out) out=$(abspath "$2"); shift 2 ;;
      --parts) parts="$2"; shift 2 ;;
      --part-timeout)
        if [[ "$2" == *=* ]]; then limits[${2%%=*}]="${2#*=}"; else limit="$2"; fi
        shift 2 ;;
      --verify) verify=--verify; shift ;;
      --quick) quick=1; shift ;;
      --device) device="$2"; shift 2 ;;
      --authors) authors=$(abspath "$2"); shift 2 ;;
      *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
  done
  [ -n "$out" ] || { echo "--out is required" >&2; exit 2; }
  local part
  for part in ${parts//,/ }; do
    case "$part" in
      env|crf|dupl|toco|profile|memory) ;;
      *) echo "unknown part: $part (env, crf, dupl, toco, profile, memory)" >&2; exit 2 ;;
    esac
  done
  mkdir -p "$out"
  export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  install_wheels > "$out/install.txt" 2>&1 || { cat "$out/install.txt"; exit 1; }

  # Sizes: the issue's protocol, or tiny ones with --quick.
  local crf_n=256 crf_hw=(--height 375 --width 500) agree_n=8 ref_n=16
  local step=(--batch-size 2 --size 448 --repeat 5) prof=(--batch-size 2 --size 448 --repeat 3)
  local mem=()
  if [ "$quick" = 1 ]; then
    crf_n=4 crf_hw=(--height 60 --width 80) agree_n=2 ref_n=2
    # 128 px: the smallest crop ToCo's 96 px local crops fit in.
    step=(--batch-size 1 --size 128 --repeat 1) prof=(--batch-size 1 --size 128 --repeat 1)
    mem=(--size 128)
  fi
  local bench=tools/analysis_tools
  local ncpu; ncpu=$(nproc)

  part_env() {
    nvidia-smi 2>&1 | head -n 15
    "$PYTHON" -c 'import torch, mmseg, mmengine, mmpretrain; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"); print("mmseg", mmseg.__version__, "mmengine", mmengine.__version__, "mmpretrain", mmpretrain.__version__)'
    echo "CPU cores: $ncpu"
  }
  part_crf() {
    local b
    for b in 16 32; do
      "$PYTHON" $bench/benchmark_crf.py --preset toco --backend torch --device "$device" \
        --num-images "$crf_n" --batch-size "$b" "${crf_hw[@]}" --num-classes 21 \
        --no-agreement || return 1
    done
    "$PYTHON" $bench/benchmark_crf.py --preset toco --backend torch --device "$device" \
      --num-images "$agree_n" --num-distinct "$agree_n" --batch-size "$agree_n" \
      "${crf_hw[@]}" --num-classes 21 || return 1
    "$PYTHON" $bench/benchmark_crf.py --preset toco --num-images "$ref_n" \
      "${crf_hw[@]}" --num-classes 21 --workers 1 "$ncpu"
  }
  side_by_side() {  # $1: dupl or toco
    local code=$authors/DuPL
    [ "$1" = toco ] && code=$authors/ToCo
    [ -d "$code" ] || { echo "no $code (prepare --authors-$1): skipped"; return 3; }
    "$PYTHON" $bench/benchmark_vs_authors.py "$1" --authors-code "$code" \
      --device "$device" "${step[@]}" || return 1
    if [ "$device" != cpu ]; then
      "$PYTHON" $bench/benchmark_vs_authors.py "$1" --authors-code "$code" \
        --device "$device" "${step[@]}" --amp || return 1
    fi
  }
  part_dupl() { side_by_side dupl; }
  part_toco() { side_by_side toco; }
  part_profile() {
    "$PYTHON" $bench/benchmark_train_step.py configs/dupl/dupl_vitb_voc.py \
      --device "$device" --iter 5000 "${prof[@]}" --profile /tmp/dupl.prof || return 1
    "$PYTHON" $bench/benchmark_train_step.py configs/toco/toco_vitb_voc.py \
      --device "$device" --iter 2500 "${prof[@]}" --profile /tmp/toco.prof \
      --cfg-options model.loss_energy=None
  }
  part_memory() {
    local cfg amp v rc=0
    for cfg in configs/dupl/dupl_vitb_voc.py configs/toco/toco_vitb_voc.py \
        configs/fsr/fsr_vitb_voc.py configs/single_stage/single_stage_wr38_voc.py; do
      for amp in '' --amp; do
        [ "$device" = cpu ] && [ -n "$amp" ] && continue
        [ "$device" = cpu ] && v='' || v="$verify"
        echo "== $cfg $amp"
        "$PYTHON" $bench/benchmark_memory.py "$cfg" --device "$device" $amp $v "${mem[@]}" || rc=1
      done
    done
    return $rc
  }

  # Each part runs in a fresh bash under timeout (a part that overruns is
  # stopped with its processes, the next runs): it gets the functions and
  # settings exported, the arrays declared.
  export -f side_by_side part_env part_crf part_dupl part_toco part_profile \
    part_memory
  export PYTHON device bench ncpu crf_n agree_n ref_n verify authors
  local start rc part_limit
  echo "part rc seconds (rc 124: stopped at its --part-timeout; 3: skipped)" > "$out/summary.txt"
  for part in ${parts//,/ }; do
    part_limit="${limits[$part]:-$limit}"
    echo "[gpu_checks] $part (at most $part_limit s)"
    start=$SECONDS
    timeout -k 10 "$part_limit" bash -c "$(declare -p crf_hw step prof mem); part_$part" \
      > "$out/$part.txt" 2>&1
    rc=$?
    echo "$part $rc $((SECONDS - start))" | tee -a "$out/summary.txt"
    tail -n 4 "$out/$part.txt"
  done
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  -h|--help|'') usage ;;
  *) echo "unknown command: $1" >&2; usage >&2; exit 2 ;;
esac
