"""Local OpenAI-compatible HTTP endpoint that serves the offline simulator (127.0.0.1 only).

It lets the real `dspy.LM("openai/<any>", api_base=url, api_key=...)` path (lm15's native OpenAI
client or LiteLLM with `engine="litellm"`) run against `synthdspy.simulator.Simulator`, with
latency and HTTP 429 / 500 injection, so client retries, error classes and concurrency are
exercised for real. Like the simulator itself, its answers are for exercising pipelines only.

Endpoints: POST /v1/chat/completions (OpenAI response shape with usage; `n` supported, `stream`
refused with 400) and GET /v1/models. DSPy strips `rollout_id` before sending, so over HTTP
different rollouts differ only through the request's `seed` (`dspy.LM(..., seed=k)`) or
temperature. Injected failures carry `Retry-After`
(seconds, from `retry_after_s`).

Library use: `with serve(port=0, latency_s=0.1) as base_url: ...` (base_url is
`http://127.0.0.1:PORT/v1`; the server stops when the block exits).
Command line: `python -m synthdspy.sim_server --port 8765 [--latency-s 0.1] [--error-rate 0.1] ...`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pydantic

from synthdspy.simulator import (
    SIMULATOR_BANNER,
    SimCall,
    SimOptions,
    SimulatedRateLimitError,
    SimulatedServerError,
    Simulator,
)

MODEL_ID = "sim-model"


class SimHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server holding one `Simulator`; bound to 127.0.0.1 only."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, port: int, simulator: Simulator) -> None:
        self.simulator = simulator
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: avoid 40 ms stalls
    server: SimHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence per-request logging."""

    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        self._send(
            status, {"error": {"message": message, "type": kind, "param": None, "code": kind}}, headers
        )

    def do_GET(self) -> None:  # noqa: N802 - stdlib hook name
        """GET /v1/models: the single simulated model."""
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "synthdspy-simulator"}
            self._send(200, {"object": "list", "data": [model]})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self) -> None:  # noqa: N802 - stdlib hook name
        """POST /v1/chat/completions: one simulated completion (or `n`), or an injected error."""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}", "not_found")
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            messages = body["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            self._error(400, f"bad request body: {exc}", "invalid_request_error")
            return
        if body.get("stream"):
            self._error(400, "the simulator endpoint does not stream", "invalid_request_error")
            return
        self._complete(body, messages)

    def _complete(self, body: dict, messages: list[dict]) -> None:
        sim = self.server.simulator
        call = SimCall(
            messages,
            temperature=body.get("temperature"),
            response_format=body.get("response_format"),
            seed=body.get("seed"),
        )
        retry = {"Retry-After": f"{sim.options.retry_after_s:g}"}
        try:
            replies = [sim.complete(call)]
        except SimulatedRateLimitError as exc:
            self._error(429, exc.message, "rate_limit_error", retry)
            return
        except SimulatedServerError as exc:
            self._error(500, exc.message, "server_error", retry)
            return
        extra = range(1, int(body.get("n") or 1))
        replies += [sim.answer(dataclasses.replace(call, candidate=i)) for i in extra]
        prompt_tokens = replies[0].prompt_tokens
        completion_tokens = sum(r.completion_tokens for r in replies)
        self._send(
            200,
            {
                "id": f"chatcmpl-sim-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", MODEL_ID),
                "choices": [
                    {"index": i, "message": {"role": "assistant", "content": r.text}, "finish_reason": "stop"}
                    for i, r in enumerate(replies)
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


@contextlib.contextmanager
def serve(port: int = 0, simulator: Simulator | None = None, **sim_options: Any) -> Iterator[str]:
    """Serve `simulator` (default: `Simulator(SimOptions(**sim_options))`) on 127.0.0.1:`port`
    (0 = any free port); pass your own `Simulator` to read its `faults` counter afterwards.

    Yields the base URL `http://127.0.0.1:PORT/v1`. The server thread is shut down and the
    socket closed when the block exits. Raises ValueError if both `simulator` and options are
    given, pydantic.ValidationError for bad options and OSError if the port is taken.
    """
    if simulator is not None and sim_options:
        raise ValueError("pass either a Simulator or its options, not both")
    server = SimHTTPServer(port, simulator or Simulator(SimOptions(**sim_options)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="sim-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: serve until interrupted (Ctrl-C)."""
    parser = argparse.ArgumentParser(
        prog="python -m synthdspy.sim_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=8765)
    for name in SimOptions.model_fields:
        kind = int if name == "seed" else float
        parser.add_argument(
            f"--{name.replace('_', '-')}", dest=name, type=kind, default=SimOptions.model_fields[name].default
        )
    args = vars(parser.parse_args(argv))
    port = args.pop("port")
    try:
        simulator = Simulator(SimOptions(**args))
    except pydantic.ValidationError as exc:
        parser.error(str(exc))
    print(SIMULATOR_BANNER, flush=True)
    with serve(port, simulator=simulator) as url:
        print(f"serving the simulator at {url} (model id {MODEL_ID!r}); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
