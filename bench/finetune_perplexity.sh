#!/usr/bin/env bash
# Fine-tuning quality: `toy perplexity` on the held-out tail of tinyshakespeare before and
# after LoRA and full fine-tuning on its head, for stories260K (a real TinyStories model)
# and for a model `toy train` made from scratch on other text (Debian's licence texts,
# with stories260K's vocabulary).
#   bench/finetune_perplexity.sh [BUILD_DIR=build] [STEPS=300]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-300}
toy=$build/toy
fixtures=${TOY_FIXTURES:-../shared/fixtures}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

text=$fixtures/text/tinyshakespeare.txt
bytes=$(stat -c %s "$text")
head -c $((bytes * 9 / 10)) "$text" >"$work/train.txt"
tail -c $((bytes / 10)) "$text" >"$work/held-out.txt"
ppl() { "$toy" perplexity -c 128 -t 2 "$@" -f "$work/held-out.txt" 2>&1 | sed -n 's/.*PPL = \([0-9.]*\).*/\1/p'; }
finetune() { "$toy" finetune -t 2 -q -c 128 --batch 8 --steps "$steps" --data "$work/train.txt" \
  --val-fraction 0 --eval-batches 4 "$@" | sed -n 's/.*tokens_per_s \([0-9]*\).*/\1/p'; }

cat /usr/share/common-licenses/* >"$work/licenses.txt"
"$toy" train -o "$work/scratch.gguf" --data "$work/licenses.txt" --vocab-from "$fixtures/models/stories260K.gguf" \
  --n-embd 128 --n-layer 4 --n-head 4 --n-ff 384 -c 128 --batch 8 --steps 600 --lr 2e-3 --warmup 50 -t 2 -q >/dev/null

echo "| model | base PPL | LoRA (r 16, all-linear, lr 2e-3) | tok/s | full (lr 1e-3) | tok/s |"
echo "|---|---|---|---|---|---|"
for name in stories260K scratch; do
  model=$fixtures/models/stories260K.gguf
  [ "$name" = scratch ] && model=$work/scratch.gguf
  base=$(ppl -m "$model")
  lora_tps=$(finetune -m "$model" -o "$work/$name-lora.gguf" -r 16 --lora-targets all-linear --lr 2e-3)
  lora=$(ppl -m "$model" --lora "$work/$name-lora.gguf")
  full_tps=$(finetune -m "$model" -o "$work/$name-full.gguf" --full --lr 1e-3)
  full=$(ppl -m "$work/$name-full.gguf")
  echo "| $name | $base | $lora | $lora_tps | $full | $full_tps |"
done
