"""How close `synthdspy generate` runs to a provider's rate limit without tripping it.

The simulator endpoint (`synthdspy.sim_server.serve_provider`, in this process, 127.0.0.1 only)
behaves like a hosted provider limited to `--rpm` (120) requests per 60-second sliding window:
over the limit it answers OpenAI's 429 with `retry-after` and `x-ratelimit-*` headers, and every
answer takes a lognormal latency (median `--latency-s` 0.3 s, sigma 0.5). The simulator writes
the text, so the records are not training data. `synthdspy generate experiments/grounded_qa.toml
-n N` runs as a user would run it (the CLI in a subprocess) with generator and judge pointed at
the endpoint, twice, each against a fresh endpoint, a fresh response cache and a fresh output
directory:

- adaptive: no `rpm` configured; the client learns the limit from the headers;
- rpm-set: `lm.generator.rpm` and `lm.judge.rpm` set to the endpoint's limit (the baseline).

For each run it prints requests sent, the 429 share (429 rate_limit_exceeded / requests), the
sustained rate of successful requests as a share of the limit ((successes - 1) / (last success
- first success) * 60 / rpm), bodies answered 200 twice (paid twice), the seconds from first to last
success (span) and from process start to the first success (start-up), wall time, and records
passed and rejected by the gates (the CLI's summary line); then the ratio adaptive / rpm-set.
Targets (the issue): 429 share <= 5%, sustained rate >= 85% of the limit, no body paid twice.

Runtime: about (requests / rpm) minutes per run; grounded_qa makes a generator call and up to
two judge calls per question pair, so -n 100 sends roughly 300 requests: about 3 minutes a run.

Run from the repository root: `python benchmarks/provider_limits.py [--n 100] [--rpm 120]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from synthdspy.sim_server import ProviderOptions, serve_provider
from synthdspy.simulator import SIMULATOR_BANNER

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "experiments/grounded_qa.toml"
KEY_ENV = "SYNTHDSPY_BENCH_KEY"
KEY = "sk-bench-local-0123456789"
ROLES = ("generator", "judge")
TARGETS = {"429_share": 0.05, "sustained": 0.85, "duplicates": 0}


def offline_env(tmp: Path) -> dict[str, str]:
    """The subprocess environment: the key, a private response cache, no network for price maps,
    hub look-ups or telemetry."""
    env = dict(os.environ)
    env.update({
        KEY_ENV: KEY,
        "DSPY_CACHEDIR": str(tmp / "dspy_cache"),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
        "NO_COLOR": "1",
    })
    return env


def generate_command(url: str, n: int, out: Path, rpm: int | None) -> list[str]:
    """The `synthdspy generate` command line for one run (`rpm` set on both roles, or not)."""
    sets = [f"output.dir={out}", "tracking.autolog=false"]
    for role in ROLES:
        sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={url}", f"lm.{role}.api_key_env={KEY_ENV}"]
        if rpm is not None:
            sets.append(f"lm.{role}.rpm={rpm}")
    command = [sys.executable, "-m", "synthdspy", "generate", EXPERIMENT, "-n", str(n), "--export", "jsonl"]
    for item in sets:
        command += ["--set", item]
    return command


def sustained_share(stats: dict[str, Any], rpm: int) -> float:
    """Successful requests per minute between the first and the last success, over `rpm`."""
    first, last, successes = stats["first_success_t"], stats["last_success_t"], stats["successes"]
    if first is None or last is None or successes < 2 or last <= first:
        return 0.0
    return (successes - 1) / (last - first) * 60.0 / rpm


def run_once(label: str, n: int, rpm: int, latency_s: float, configured: int | None, timeout_s: float,
             keep: Path | None) -> dict[str, Any]:
    """One generate run against a fresh endpoint; returns its figures (and the CLI's exit code)."""
    options = ProviderOptions(rpm=rpm, api_key=KEY, latency_median_s=latency_s, latency_sigma=0.5, seed=0)
    with tempfile.TemporaryDirectory(prefix=f"provider-limits-{label}-") as tmp_name:
        tmp = Path(tmp_name)
        with serve_provider(provider=options) as endpoint:
            command = generate_command(endpoint.url, n, tmp / "out", configured)
            start = time.monotonic()  # the endpoint stamps successes with time.monotonic() too
            try:
                proc = subprocess.run(command, cwd=ROOT, env=offline_env(tmp), capture_output=True, text=True,
                                      timeout=timeout_s, check=False)
                rc, output = proc.returncode, proc.stdout + proc.stderr
            except subprocess.TimeoutExpired:
                rc, output = 124, f"timed out after {timeout_s:g}s"
            tail = output[-1500:]
            end = time.monotonic()
            stats = endpoint.stats()
        records = tmp / "out" / "generate" / "records.jsonl"
        exported = sum(1 for _ in records.open()) if records.exists() else 0
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"{label}.log").write_text(tail)
    requests = stats["requests"]
    return {
        "label": label, "rc": rc, "tail": tail, "requests": requests, "by_status": stats["by_status"],
        "rate_limited": stats["rate_limited"], "share_429": stats["rate_limited"] / requests if requests else 0.0,
        "sustained": sustained_share(stats, rpm), "duplicates": stats["duplicate_successes"],
        "successes": stats["successes"], "wall_s": end - start, "exported": exported, **summary_counts(output),
        "startup_s": (stats["first_success_t"] or end) - start,
        "span_s": (stats["last_success_t"] or end) - (stats["first_success_t"] or end),
    }


def summary_counts(output: str) -> dict[str, int]:
    """Records passed and rejected, from the CLI's summary line ("passed P, rejected R ...")."""
    found = re.search(r"passed (\d+), rejected (\d+)", output)
    return {"passed": int(found[1]), "rejected": int(found[2])} if found else {"passed": 0, "rejected": 0}


def verdict(row: dict[str, Any]) -> str:
    """Which of the issue's targets the run misses ('ok' when none)."""
    missed = []
    if row["share_429"] > TARGETS["429_share"]:
        missed.append(f"429 share {row['share_429']:.1%} > 5%")
    if row["sustained"] < TARGETS["sustained"]:
        missed.append(f"sustained {row['sustained']:.1%} < 85%")
    if row["duplicates"] > TARGETS["duplicates"]:
        missed.append(f"{row['duplicates']} bodies paid twice")
    return "; ".join(missed) or "ok"


def ratio(a: float, b: float) -> str:
    """a / b as text ('-' when b is 0)."""
    return f"{a / b:.2f}" if b else "-"


def main() -> None:
    """Run adaptive and rpm-set generation against the limited endpoint and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="records to generate per run (-n)")
    parser.add_argument("--rpm", type=int, default=120, help="the endpoint's requests per minute")
    parser.add_argument("--latency-s", type=float, default=0.3, help="median latency of an answer")
    parser.add_argument("--timeout-s", type=float, default=1200.0, help="limit of one generate run")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep-logs", type=Path, default=None, help="write each run's CLI output tail here")
    args = parser.parse_args()
    print(SIMULATOR_BANNER)
    print(f"endpoint: {args.rpm} requests/min (60 s window), latency median {args.latency_s:g} s; "
          f"{EXPERIMENT} -n {args.n}, generator and judge on the endpoint")
    rows = []
    for label, configured in (("adaptive", None), ("rpm-set", args.rpm)):
        row = run_once(label, args.n, args.rpm, args.latency_s, configured, args.timeout_s, args.keep_logs)
        rows.append(row)
        print(f"  {label}: exit {row['rc']}, {row['requests']} requests, statuses {row['by_status']}, "
              f"{row['wall_s']:.1f}s", flush=True)
        if row["rc"] not in (0, 1):
            print(row["tail"])
    header = (f"{'run':<9} {'requests':>8} {'429':>6} {'sustained':>9} {'paid2x':>6} {'startup':>7} {'span':>7} "
              f"{'wall_s':>7} {'passed':>6} {'rejected':>8}  targets")
    print(header)
    for r in rows:
        print(f"{r['label']:<9} {r['requests']:>8} {r['share_429']:>6.1%} {r['sustained']:>9.1%} "
              f"{r['duplicates']:>6} {r['startup_s']:>7.1f} {r['span_s']:>7.1f} {r['wall_s']:>7.1f} {r['passed']:>6} "
              f"{r['rejected']:>8}  {verdict(r)}")
    a, b = rows
    print(f"ratio adaptive/rpm-set: requests {ratio(a['requests'], b['requests'])}, "
          f"sustained {ratio(a['sustained'], b['sustained'])}, wall {ratio(a['wall_s'], b['wall_s'])}, "
          f"passed {ratio(a['passed'], b['passed'])}")
    if args.json is not None:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "tail"} for r in rows], indent=2))


if __name__ == "__main__":
    main()
