"""Peak memory and time of `ftreg data check` on a 1,000,000-row JSONL file, next to a careful baseline.

Target (issue 13): peak memory under 1 GiB. The baseline is what a careful user writes with
`datasets`: `Dataset.from_json` (memory-mapped Arrow) and a batched `map` of the same tokenizer
to get token lengths. Each command runs in its own process; peak memory is that process's
maximum resident set size.
Run: .venv/bin/python bench/data_check_memory.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_BYTES = 1 << 30
BASELINE = """
import sys, datasets, transformers
datasets.disable_progress_bars()
tokenizer = transformers.AutoTokenizer.from_pretrained(sys.argv[2])
data = datasets.Dataset.from_json(sys.argv[1], cache_dir=sys.argv[3])
def lengths(batch):
    prompts = tokenizer(batch["instruction"], add_special_tokens=False)["input_ids"]
    answers = tokenizer(batch["response"], add_special_tokens=False)["input_ids"]
    return {"length": [len(p) + len(a) + 1 for p, a in zip(prompts, answers)]}
print(max(data.map(lengths, batched=True, remove_columns=data.column_names)["length"]))
"""


def write_rows(path: Path, rows: int) -> None:
    """The bundled support pairs, repeated with a row number so no two rows are duplicates."""
    from ftreg.datasets.loading import dataset_path

    pairs = json.loads(dataset_path("builtin:support").read_text())
    with path.open("w") as out:
        for row in range(rows):
            pair = pairs[row % len(pairs)]
            out.write(json.dumps({"instruction": f"{pair['instruction']} (#{row})", "response": pair["response"]}) + "\n")


def measure(command: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of one child process (Linux reports ru_maxrss in KiB)."""
    start = time.perf_counter()
    pid = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).pid
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {os.waitstatus_to_exitcode(status)}")
    return time.perf_counter() - start, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    ftreg = str(Path(sys.executable).with_name("ftreg"))
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "FTREG_HOME": str(Path(work) / "home")}
        data = Path(work) / "rows.jsonl"
        write_rows(data, args.rows)
        subprocess.run([ftreg, "base", "init"], env=env, stdout=subprocess.DEVNULL, check=True)
        base_path = json.loads(subprocess.run([ftreg, "show", "tiny-gpt2", "--json"], env=env, capture_output=True, text=True, check=True).stdout)["path"]
        print(f"{args.rows:,} rows, {data.stat().st_size / 2**20:.0f} MiB of JSONL; one run each, its own process")
        print(f"{'command':<34}{'wall s':>8}{'peak MiB':>10}  target")
        runs = {
            "ftreg data check": [ftreg, "data", "check", str(data)],
            "datasets from_json + map": [sys.executable, "-c", BASELINE, str(data), base_path, str(Path(work) / "cache")],
        }
        ok = True
        for label, command in runs.items():
            seconds, peak = measure(command, env)
            mark = ""
            if label.startswith("ftreg"):
                ok = peak < TARGET_BYTES
                mark = ("ok" if ok else "MISSED") + " (< 1024 MiB)"
            print(f"{label:<34}{seconds:>8.1f}{peak / 2**20:>10.0f}  {mark}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
