"""Build the bundled support dataset (builtin:support, builtin:support-test) from its intents.

scripts/support_intents.json is the source: for each intent of the shop's support desk, one
canonical answer and the ways customers ask for it (eighteen to twenty). Every fourth question
(the first, fifth, ninth, ...) is held out, so the test split asks about every intent in words
training never saw. Questions are only ever appended: a prefix of either split stays the same.

Run: .venv/bin/python scripts/build_support_data.py [--check]
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTENTS = ROOT / "scripts" / "support_intents.json"
TARGET = ROOT / "ftreg" / "resources" / "support"
HELD_OUT_EVERY = 4


def splits(intents: list[dict]) -> dict[str, list[dict]]:
    built: dict[str, list[dict]] = {"train.json": [], "test.json": []}
    # Interleaved by position rather than grouped by intent: a prefix of either split (as the
    # tests and a `--max-steps` run take) still covers many intents.
    for position in range(max(len(intent["questions"]) for intent in intents)):
        split = "test.json" if position % HELD_OUT_EVERY == 0 else "train.json"
        for intent in intents:
            if position < len(intent["questions"]):
                built[split].append({"instruction": intent["questions"][position], "response": intent["answer"]})
    return built


def render(pairs: list[dict]) -> str:
    return json.dumps(pairs, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    built = splits(json.loads(INTENTS.read_text()))
    stale = [name for name, pairs in built.items() if (TARGET / name).read_text() != render(pairs)]
    if "--check" in sys.argv[1:]:
        sys.exit(f"stale: {', '.join(stale)} (run scripts/build_support_data.py)" if stale else 0)
    for name, pairs in built.items():
        (TARGET / name).write_text(render(pairs))
        print(f"{name}: {len(pairs)} pairs")
