"""synthdspy generate side by side with Bespoke Curator against one rate-limited endpoint.

Both tools answer the same 200 instructions of `../shared/data/self_instruct/
user_oriented_instructions.jsonl` (in file order; each instruction followed by its first input,
when it has one) through the simulator's OpenAI-compatible endpoint (`synthdspy.sim_server.
serve_provider`, in this process, 127.0.0.1 only), limited to `--rpm` (120) requests per 60-second
sliding window with OpenAI's 429s and `x-ratelimit-*` headers, lognormal latency (median 0.3 s).
The endpoint also sets a token limit far above what the run needs (`--tpm`, 10,000,000), so that,
as OpenAI's do, its headers carry both limits. Each tool runs as its user would run it, in a
subprocess, against a fresh endpoint:

- synthdspy: `synthdspy generate EXP.toml -n 200` with task `qa` (a seed with an `instruction`
  is answered directly: one call, one record), no gates, generator on the endpoint;
- Curator: a `curator.LLM` subclass with `backend="openai"` and `backend_params={"base_url":
  URL, "api_key": KEY}` (Curator's documented way to reach an OpenAI-compatible server), run on
  the same prompts, in its own virtual environment (`--curator-python`, default
  `.cache/curator-venv/bin/python`: Curator pins older litellm/openai/datasets/pandas than
  synthdspy's, so it is not installed into `.venv`). Caching, telemetry and the hosted viewer are
  off; tiktoken reads the encodings LiteLLM bundles (no download); any connection to a host other
  than 127.0.0.1 is refused and counted.

Neither tool gets a rate hint by default (both learn the limit from the endpoint's headers:
synthdspy from every answer, Curator from one probe request before the run); `--rpm-hint` gives
both the endpoint's limit. Prints, per tool: requests sent, 429 share, records produced, wall time
(process start to exit) split into start-up (to the first success), span (first to last success)
and finish (last success to exit), sustained successful requests per minute as a share of the
limit, and bodies answered 200 twice; then synthdspy / Curator. Targets: synthdspy's wall time
and 429 share no worse than Curator's, and synthdspy sends at most 5% more requests than records
asked for. Runtime: about 2 x n / rpm minutes (4 minutes at the defaults).

Set up once: `python3 -m venv .cache/curator-venv && .cache/curator-venv/bin/pip install
bespokelabs-curator`. Run from the repository root: `python benchmarks/curator_comparison.py
[--n 200] [--rpm 120] [--rpm-hint]`.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTIONS = ROOT / ".." / "shared" / "data" / "self_instruct" / "user_oriented_instructions.jsonl"
CURATOR_PYTHON = ROOT / ".cache" / "curator-venv" / "bin" / "python"
KEY_ENV = "SYNTHDSPY_BENCH_KEY"
KEY = "sk-bench-local-0123456789"
MAX_TOKENS = 2048
TEMPERATURE = 0.7


def prompts(n: int) -> list[dict[str, str]]:
    """The first `n` instructions, each with its first input appended (when not empty)."""
    rows = []
    for line in INSTRUCTIONS.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        instances = item.get("instances") or [{}]
        given = (instances[0].get("input") or "").strip()
        text = item["instruction"].strip() + (f"\n\n{given}" if given else "")
        rows.append({"id": item["id"], "instruction": text})
        if len(rows) == n:
            break
    return rows


def experiment_toml(url: str, seeds: Path, out: Path, rpm: int | None) -> str:
    """The synthdspy experiment: `qa` over the seed file, no gates, every role on the endpoint."""
    hint = f"rpm = {rpm}\n" if rpm else ""
    roles = "".join(
        f'[lm.{role}]\nmodel = "openai/sim-model"\napi_base = "{url}"\napi_key_env = "{KEY_ENV}"\n'
        f"temperature = {TEMPERATURE}\nmax_tokens = {MAX_TOKENS}\n{hint}\n"
        for role in ("generator", "judge", "reflection")
    )
    return (f'name = "curator_comparison"\n\n{roles}[seeds]\nsource = "{seeds}"\ntrain_size = 8\ndev_size = 8\n\n'
            f'[task]\nname = "qa"\n\n[tracking]\nautolog = false\n\n[output]\ndir = "{out}"\n')


def tiktoken_dir(python: Path) -> str:
    """The tiktoken encodings LiteLLM bundles (in Curator's environment, else in synthdspy's)."""
    for venv in (python.parent.parent, ROOT / ".venv"):
        found = sorted(venv.glob("lib/python*/site-packages/litellm/litellm_core_utils/tokenizers"))
        if found:
            return str(found[0])
    return ""


def base_env(tmp: Path, python: Path) -> dict[str, str]:
    """Environment shared by both tools: the key, private caches, tiktoken's encodings on disk,
    no network for price maps, hub look-ups, telemetry or hosted viewers."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "BESPOKE_API_KEY", "CURATOR_VIEWER")}
    env.update({
        KEY_ENV: KEY, "DSPY_CACHEDIR": str(tmp / "dspy_cache"), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "NO_COLOR": "1", "DO_NOT_TRACK": "1",
        "TELEMETRY_ENABLED": "false", "CURATOR_VIEWER": "0", "HOSTED_CURATOR_VIEWER": "0",
        "CURATOR_DISABLE_CACHE": "1", "CURATOR_CACHE_DIR": str(tmp / "curator_cache"),
        "CURATOR_DISABLE_RICH_DISPLAY": "1", "BESPOKE_CURATOR_TRACKER_DISABLED": "1",
        "TIKTOKEN_CACHE_DIR": tiktoken_dir(python),
    })
    return env


def synthdspy_command(url: str, tmp: Path, seeds: Path, n: int, rpm: int | None) -> list[str]:
    """Write the experiment file and return the `synthdspy generate` command line."""
    exp = tmp / "experiment.toml"
    exp.write_text(experiment_toml(url, seeds, tmp / "out", rpm), encoding="utf-8")
    return [sys.executable, "-m", "synthdspy", "generate", str(exp), "-n", str(n), "--export", "jsonl"]


def curator_command(python: Path, url: str, tmp: Path, seeds: Path, rpm: int | None) -> list[str]:
    """The command line that runs this file's Curator worker under Curator's interpreter."""
    command = [str(python), str(Path(__file__).resolve()), "--worker", "--url", url, "--seeds", str(seeds),
               "--result", str(tmp / "curator.json"), "--work-dir", str(tmp / "curator")]
    return command + (["--hint", str(rpm)] if rpm else [])


def worker(url: str, seeds: Path, result: Path, work_dir: Path, hint: int | None) -> None:
    """Run Curator on the seed prompts (under Curator's interpreter) and write what it produced."""
    import socket

    blocked: list[str] = []
    connect = socket.socket.connect

    def loopback_only(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            blocked.append(str(host))
            raise OSError(f"benchmark: connection to {host} refused (127.0.0.1 only)")
        return connect(sock, address)

    socket.socket.connect = loopback_only  # type: ignore[method-assign]
    from bespokelabs import curator

    class Answer(curator.LLM):
        """Answer each instruction (with its input) as a single user message."""

        def prompt(self, row: dict) -> str:
            return row["instruction"]

        def parse(self, row: dict, response: str) -> dict:
            return {"id": row["id"], "instruction": row["instruction"], "response": response}

    rows = [json.loads(line) for line in seeds.read_text(encoding="utf-8").splitlines() if line.strip()]
    params: dict[str, Any] = {"base_url": url, "api_key": KEY, "require_all_responses": False}
    if hint:
        params["max_requests_per_minute"] = hint
    llm = Answer(model_name="sim-model", backend="openai", backend_params=params,
                 generation_params={"temperature": TEMPERATURE, "max_tokens": MAX_TOKENS})
    error = ""
    try:
        produced = sum(1 for r in llm(rows, working_dir=str(work_dir)).dataset if r.get("response"))
    except Exception as exc:  # reported, not raised: the driver prints it
        produced, error = 0, f"{type(exc).__name__}: {exc}"[:500]
    result.write_text(json.dumps({"records": produced, "blocked": blocked, "error": error}))


def sustained_share(stats: dict[str, Any], rpm: int) -> float:
    """Successful requests per minute between the first and the last success, over `rpm`."""
    first, last, successes = stats["first_success_t"], stats["last_success_t"], stats["successes"]
    if first is None or last is None or successes < 2 or last <= first:
        return 0.0
    return (successes - 1) / (last - first) * 60.0 / rpm


def phases(stats: dict[str, Any], start: float, end: float) -> dict[str, float]:
    """Seconds from process start to the first success (start-up), from the first to the last
    success (span) and from the last success to process exit (finish)."""
    first, last = stats["first_success_t"] or end, stats["last_success_t"] or end
    return {"startup_s": first - start, "span_s": last - first, "finish_s": end - last}


def run_tool(tool: str, args: argparse.Namespace, rows: list[dict[str, str]]) -> dict[str, Any]:
    """One tool's run against a fresh endpoint; returns its figures."""
    from synthdspy.sim_server import ProviderOptions, serve_provider

    options = ProviderOptions(rpm=args.rpm, tpm=args.tpm or None, api_key=KEY, latency_median_s=args.latency_s,
                              latency_sigma=0.5, seed=0)
    hint = args.rpm if args.rpm_hint else None
    with tempfile.TemporaryDirectory(prefix=f"curator-comparison-{tool}-") as tmp_name:
        tmp = Path(tmp_name)
        seeds = tmp / "instructions.jsonl"
        seeds.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        with serve_provider(provider=options) as endpoint:
            if tool == "synthdspy":
                command = synthdspy_command(endpoint.url, tmp, seeds, len(rows), hint)
            else:
                command = curator_command(args.curator_python, endpoint.url, tmp, seeds, hint)
            start = time.monotonic()  # the endpoint stamps successes with time.monotonic() too
            try:
                proc = subprocess.run(command, cwd=ROOT, env=base_env(tmp, args.curator_python), capture_output=True,
                                      text=True, timeout=args.timeout_s, check=False)
                rc, tail = proc.returncode, (proc.stdout + proc.stderr)[-2000:]
            except subprocess.TimeoutExpired:
                rc, tail = 124, f"timed out after {args.timeout_s:g}s"
            end = time.monotonic()
            stats = endpoint.stats()
        extra: dict[str, Any] = {}
        if tool == "synthdspy":
            records_file = tmp / "out" / "generate" / "records.jsonl"
            records = sum(1 for _ in records_file.open()) if records_file.exists() else 0
        else:
            result = tmp / "curator.json"
            extra = json.loads(result.read_text()) if result.exists() else {"records": 0, "error": "no result"}
            records = extra.pop("records")
    requests = stats["requests"]
    return {"tool": tool, "rc": rc, "tail": tail, "requests": requests, "by_status": stats["by_status"],
            "share_429": stats["rate_limited"] / requests if requests else 0.0, "records": records,
            "wall_s": end - start, "sustained": sustained_share(stats, args.rpm), **phases(stats, start, end),
            "duplicates": stats["duplicate_successes"], **extra}


def ratio(a: float, b: float) -> str:
    """a / b as text ('-' when b is 0)."""
    return f"{a / b:.2f}" if b else "-"


def main() -> None:
    """Run both tools and print the table, the ratios and which targets are met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="instructions (records asked for)")
    parser.add_argument("--rpm", type=int, default=120, help="the endpoint's requests per minute")
    parser.add_argument("--tpm", type=int, default=10_000_000, help="the endpoint's tokens per minute (0: none)")
    parser.add_argument("--latency-s", type=float, default=0.3, help="median latency of an answer")
    parser.add_argument("--rpm-hint", action="store_true", help="give both tools the endpoint's rpm")
    parser.add_argument("--curator-python", type=Path, default=CURATOR_PYTHON)
    parser.add_argument("--timeout-s", type=float, default=1200.0, help="limit of one tool's run")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hint", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.url, args.seeds, args.result, args.work_dir, args.hint)
        return
    if not args.curator_python.exists():
        sys.exit(f"{args.curator_python} not found; set up Curator's environment first (see this file's doc)")
    from synthdspy.simulator import SIMULATOR_BANNER

    rows = prompts(args.n)
    print(SIMULATOR_BANNER)
    print(f"endpoint: {args.rpm} requests/min (60 s window), tpm {args.tpm or 'none'}, latency median "
          f"{args.latency_s:g} s; {len(rows)} instructions; rpm hint: {'both' if args.rpm_hint else 'none'}")
    results = []
    for tool in ("synthdspy", "curator"):
        r = run_tool(tool, args, rows)
        results.append(r)
        print(f"  {tool}: exit {r['rc']}, statuses {r['by_status']}, {r['wall_s']:.1f}s", flush=True)
        if r["rc"] != 0 or r.get("error"):
            print(r.get("error") or "", r["tail"], sep="\n")
        if r.get("blocked"):
            print(f"  {tool}: refused connections to {sorted(set(r['blocked']))}")
    print(f"{'tool':<10} {'requests':>8} {'429':>6} {'records':>7} {'wall_s':>7} {'startup':>7} {'span':>7} "
          f"{'finish':>7} {'sustained':>9} {'paid2x':>6}")
    for r in results:
        print(f"{r['tool']:<10} {r['requests']:>8} {r['share_429']:>6.1%} {r['records']:>7} {r['wall_s']:>7.1f} "
              f"{r['startup_s']:>7.1f} {r['span_s']:>7.1f} {r['finish_s']:>7.1f} {r['sustained']:>9.1%} "
              f"{r['duplicates']:>6}")
    s, c = results
    print(f"ratio synthdspy/curator: requests {ratio(s['requests'], c['requests'])}, wall "
          f"{ratio(s['wall_s'], c['wall_s'])}, 429 share {ratio(s['share_429'], c['share_429'])}, records "
          f"{ratio(s['records'], c['records'])}")
    extra = s["requests"] / len(rows) - 1.0
    checks = {
        "wall time no worse than Curator's": s["wall_s"] <= c["wall_s"],
        "429 share no worse than Curator's": s["share_429"] <= c["share_429"],
        f"requests at most 5% over records asked for ({extra:+.1%})": extra <= 0.05,
    }
    for name, ok in checks.items():
        print(f"  {'met' if ok else 'MISSED'}: {name}")
    if args.json is not None:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "tail"} for r in results], indent=2))


if __name__ == "__main__":
    main()
