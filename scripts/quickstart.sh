#!/usr/bin/env bash
# The main job, offline: publish the embedded base (first run only), fine-tune a support-bot
# adapter on the bundled data, list the registry, and answer two held-out questions with the
# bare base and with the adapter, side by side.
set -euo pipefail

ftreg base init
# The bundled recipe's defaults (1 epoch at 2e-4) are tuned for gpt2-sized bases; the
# embedded base is ~1.4M parameters, so it gets more epochs, a higher learning rate and rank.
ftreg train --strategy lora8bit --dataset builtin:support --name support \
  --epochs 6 --learning-rate 3e-3 -o r=16 -o alpha=32
ftreg list

questions=(
  "What's the deadline for sending items back?"
  "I can't remember my password, what do I do?"
)
for question in "${questions[@]}"; do
  echo
  echo "Q: $question"
  # One line per answer, so the two sit side by side.
  echo "  base (tiny-gpt2):  $(ftreg generate --base tiny-gpt2 --format instruction --greedy --max-new-tokens 48 "$question" | tr -s '\n' ' ')"
  echo "  adapter (support): $(ftreg generate --adapter support --greedy --max-new-tokens 48 "$question" | tr -s '\n' ' ')"
done
