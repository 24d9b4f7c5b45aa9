"""Run ftreg's benchmarks, each beside its baseline, and write the results and BENCHMARKS.md.

    python -m bench                  every benchmark; bench/results/<machine>-<date>.json and BENCHMARKS.md
    python -m bench cli training     only those (the report then holds only them)
    python -m bench --quick          a smoke run of every benchmark (tiny sizes, one repetition), written
                                     to a scratch folder: it checks the suite works, it times nothing
    python -m bench --render FILE    BENCHMARKS.md again from a results file, without measuring
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import machine
from bench.report import render
from bench.suite import Context

ROOT = Path(__file__).resolve().parent.parent
# In the order they run: later ones reuse what earlier ones made (the embedded base, the 124M-sized one).
BENCHMARKS = ("cli", "registry", "training", "memory", "generation", "serving", "artifacts", "data", "quality")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, one repetition, results in a scratch folder")
    parser.add_argument("--out", type=Path, help="the folder for the results, plots and report (default: the repository; with --quick, a scratch folder)")
    parser.add_argument("--render", type=Path, metavar="RESULTS", help="render BENCHMARKS.md from this results file and stop")
    args = parser.parse_args()
    if args.render:
        results = json.loads(args.render.read_text())
        out = args.out or ROOT
        render(results, out / "BENCHMARKS.md", out / "bench" / "plots", args.render)
        return

    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}; there are {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ftreg-bench-") as scratch:
        out = args.out or (Path(scratch) / "report" if args.quick else ROOT)
        context = Context(quick=args.quick, scratch=Path(scratch))
        record = machine.describe()
        sections, failed = [], []
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            print(f"[{time.perf_counter() - started:6.0f} s] {name}: {module.TITLE}", flush=True)
            begun = time.perf_counter()
            try:
                section = module.run(context)
            except Exception:  # noqa: BLE001 -- one broken benchmark is reported; the others still run
                traceback.print_exc()
                failed.append(name)
                continue
            section.seconds = time.perf_counter() - begun
            for target in section.targets:
                print(f"    {'met   ' if target.met else 'MISSED'} {target.claim}: {target.measured} vs {target.baseline} {target.ratio}", flush=True)
            sections.append(section)
        today = datetime.date.today().isoformat()
        results = {
            "command": "python -m bench" + (" --quick" if args.quick else "") + "".join(f" {name}" for name in args.names),
            "date": today,
            "seconds": time.perf_counter() - started,
            "machine": record,
            "sections": [section.to_json() for section in sections],
        }
        results_file = out / "bench" / "results" / f"{machine.slug(record)}-{today}{'-quick' if args.quick else ''}.json"
        results_file.parent.mkdir(parents=True, exist_ok=True)
        results_file.write_text(json.dumps(results, indent=1) + "\n")
        render(results, out / "BENCHMARKS.md", out / "bench" / "plots", results_file)
        print(f"[{results['seconds']:6.0f} s] wrote {results_file} and {out / 'BENCHMARKS.md'}")
    if failed:
        sys.exit(f"benchmarks that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
