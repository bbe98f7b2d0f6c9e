"""Wall time and peak memory of ``synthdspy generate`` from 10k to 100k records, and the resume.

Each size runs ``synthdspy generate experiments/quickstart.toml -n N`` (task ``textbook``, no
gates: one simulator call per record) on the in-process simulator at concurrency 64, into a
fresh output directory, in its own subprocess; a small parent process per size waits for it and
reads its peak resident memory with ``resource.getrusage(RUSAGE_CHILDREN)`` (so one size's peak
never hides another's). Printed per size: wall seconds, peak RSS in MB, and both per 1,000 records
(linear growth keeps the per-1k figures flat). Then, for the largest size:

* ``resume``: the same command again (every record is already done): its wall time, and the time
  to reopen the store and its unit journal alone (:class:`synthdspy.store.RecordStore`,
  :class:`synthdspy.run_dir.UnitJournal`);
* ``mlflow.db``: the database size after the run (traces are sampled, see
  :mod:`synthdspy.trace_sampling`).

Usage::

    python benchmarks/generate_scale.py                 # 10000 30000 100000
    python benchmarks/generate_scale.py --sizes 1000 3000 --out /tmp/scale

The simulator's text is not evidence of quality; this measures the pipeline only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "synthdspy"]
EXPERIMENT = ROOT / "experiments" / "quickstart.toml"


def command(n: int, out: Path) -> list[str]:
    """The generate command line for ``n`` records into ``out`` (no gates, concurrency 64; seeds
    drawn with ``sampling_seed = n``, so no size replays another's calls from DSPy's cache)."""
    return [*CLI, "generate", str(EXPERIMENT), "-n", str(n), "-o", str(out), "--set", "gates=[]",
            "--set", "lm.generator.concurrency=64", "--set", f"seeds.sampling_seed={n}"]


def measure_child(argv: list[str], cache: Path) -> dict[str, float | str]:
    """Run ``argv`` to completion with DSPy's disk cache in ``cache`` (a fresh one per size: no
    size replays calls an earlier run cached); its wall seconds, peak RSS in MB and its summary
    lines (the counts and the seconds the generate loop itself took).

    Raises:
        subprocess.CalledProcessError: the command failed.
    """
    start = time.perf_counter()
    env = {**os.environ, "DSPY_CACHEDIR": str(cache)}
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, argv, stderr=done.stderr[-2000:])
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
    lines = (done.stdout + done.stderr).splitlines()
    summary = [line for line in lines if "units run now" in line or " new in " in line]
    return {"wall_s": wall, "peak_mb": peak_kb / 1024, "summary": " | ".join(summary)}


def measured(n: int, out: Path) -> dict[str, Any]:
    """Run one generate of ``n`` records in a fresh parent process (so RUSAGE_CHILDREN is its alone)."""
    probe = [sys.executable, __file__, "--child", str(n), "--out", str(out)]
    done = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def reopen_seconds(out: Path) -> float:
    """Seconds to open the store and the unit journal in ``out`` (a fresh process, imports excluded)."""
    code = ("import time,sys; from synthdspy.store import RecordStore; from synthdspy.run_dir import UnitJournal; "
            "from pathlib import Path; d=Path(sys.argv[1]); t=time.perf_counter(); s=RecordStore(d); j=UnitJournal(d); "
            "print(time.perf_counter()-t, len(s), len(j.done)); s.close()")
    done = subprocess.run([sys.executable, "-c", code, str(out / "generate" / "store")], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    seconds, records, units = done.stdout.split()
    print(f"  reopen: {float(seconds):.2f}s for {records} records and {units} finished units")
    return float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--out", type=Path, default=Path("/tmp/synthdspy-generate-scale"))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_child(command(args.child, args.out), args.out / "dspy_cache")))
        return
    print(f"generate {EXPERIMENT.name} (task textbook, no gates), simulator, concurrency 64")
    print(f"{'records':>8} {'wall s':>8} {'peak MB':>8} {'s/1k':>7} {'MB/1k':>7}")
    for n in sorted(args.sizes):
        out = args.out / f"n{n}"
        shutil.rmtree(out, ignore_errors=True)
        fig = measured(n, out)
        print(f"{n:>8} {fig['wall_s']:>8.1f} {fig['peak_mb']:>8.0f} {fig['wall_s'] / n * 1000:>7.2f} "
              f"{fig['peak_mb'] / n * 1000:>7.2f}", flush=True)
    largest = max(args.sizes)
    out = args.out / f"n{largest}"
    again = measured(largest, out)
    print(f"resume of {largest} (all records done): command {again['wall_s']:.1f}s, peak {again['peak_mb']:.0f} MB")
    print(f"  {again['summary']}")
    reopen_seconds(out)
    db = out / "mlflow.db"
    print(f"mlflow.db after {largest}: {db.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
