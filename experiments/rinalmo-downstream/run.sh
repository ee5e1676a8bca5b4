#!/usr/bin/env bash
# RiNALMo downstream, a small CPU-budget comparison (SwiftShader): the same head on a pre-trained
# nano encoder vs a random one, frozen encoder, same steps and seed. Arms (default: all but ss5s-*):
#   ss-pretrained ss-random (tRNA held out), ss5s-pretrained ss5s-random (5S rRNA held out),
#   ncrna-pretrained ncrna-random (nRC, the encoder's <cls> features computed once)
#   [ARMS='…'] experiments/rinalmo-downstream/run.sh [PRETRAINED_DIR] [OUT_DIR]
# Arms are independent: several run.sh processes with different ARMS may share one OUT_DIR.
# then: node --import tsx experiments/rinalmo-downstream/summarize.ts OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
PRE=${1:-/work/runs/rinalmo-nano}
OUT=${2:-/tmp/rinalmo-downstream}
mkdir -p "$OUT"
RN="nice -n 10 node --import tsx packages/cli/src/bin.ts finetune"
SS="--task ss --test-family tRNA --mode frozen --channels 16 --blocks 2 --max-train-nt 120 --steps 150 --warmup 10"
SS+=" --lr 2e-3 --min-lr 2e-4 --eval-every 0 --val-limit 20 --test-limit 100 --seed ${SEED:-7}"
NC="--task ncrna --dedup --mode frozen --cache-features --length 130 --batch 32 --train-limit 260 --steps 500"
NC+=" --warmup 20 --lr 1e-3 --min-lr 1e-4 --eval-every 0 --test-limit 195 --seed ${SEED:-7}"
run() {
  local name=$1 t0
  shift
  t0=$(date +%s)
  "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1
  echo "$name $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
}
ARMS=${ARMS:-ss-pretrained ss-random ncrna-pretrained ncrna-random}
for arm in $ARMS; do case $arm in
  ss-pretrained) run ss-pretrained $RN $SS --from "$PRE" ;;
  ss-random) run ss-random $RN $SS --config nano ;;
  ss5s-pretrained) run ss5s-pretrained $RN ${SS/tRNA/5s} --from "$PRE" ;;
  ss5s-random) run ss5s-random $RN ${SS/tRNA/5s} --config nano ;;
  ncrna-pretrained) run ncrna-pretrained $RN $NC --from "$PRE" ;;
  ncrna-random) run ncrna-random $RN $NC --config nano ;;
esac; done
