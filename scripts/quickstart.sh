#!/usr/bin/env bash
# The main job, offline: publish the embedded base (first run only), fine-tune a support-bot
# adapter on the bundled data with the recipe tuned for that base, list the registry, answer
# two held-out questions with the bare base and with the adapter, side by side, and measure both
# on held-out questions.
set -euo pipefail
cd "$(dirname "$0")/.."

ftreg base init
ftreg train --config recipes/support-tiny-gpt2.toml
ftreg list

questions=(
  "What's the deadline for sending items back?"
  "I can't remember my password, what do I do?"
)
# One generate call per model answers both questions (each call loads the model once).
answers() { ftreg generate "$@" --greedy --max-new-tokens 64 --json "${questions[@]}"; }
base=$(answers --base tiny-gpt2 --format instruction)
adapter=$(answers --adapter support)
python - "$base" "$adapter" <<'PY'
import json
import sys

base, adapter = (json.loads(argument) for argument in sys.argv[1:])
for bare, tuned in zip(base, adapter):
    print(f"\nQ: {bare['prompt']}")
    print(f"  base (tiny-gpt2):  {' '.join(bare['completion'].split())}")
    print(f"  adapter (support): {' '.join(tuned['completion'].split())}")
PY

echo
ftreg compare support tiny-gpt2 --dataset builtin:support-test --limit 40 --samples 0
