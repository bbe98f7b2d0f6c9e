"""Local OpenAI-compatible HTTP endpoint that serves the offline simulator (127.0.0.1 only).

It lets the real `dspy.LM("openai/<any>", api_base=url, api_key=...)` path (lm15's native OpenAI
client or LiteLLM with `engine="litellm"`) run against `synthdspy.simulator.Simulator`, so client
retries, error classes, rate limiting and concurrency are exercised for real. Like the simulator
itself, its answers are for exercising pipelines and benchmarks only.

Endpoints: POST /v1/chat/completions (OpenAI response shape with usage; `n` supported, `stream`
refused with 400) and GET /v1/models (flagged `"synthdspy_simulator": true`). DSPy strips
`rollout_id` before sending, so over HTTP different rollouts differ only through the request's
`seed` (`dspy.LM(..., seed=k)`) or temperature.

Two layers of misbehaviour:
- `SimOptions` (the simulator's own): fixed latency and seeded HTTP 429 / 500 injection carrying
  `Retry-After` (seconds, from `retry_after_s`), and malformed answers;
- `ProviderOptions` (`synthdspy.provider_server`, all off by default): behaving like a hosted
  provider: RPM / TPM sliding windows with OpenAI's 429 bodies, `retry-after` and
  `x-ratelimit-*` headers, API-key checks (401), insufficient quota, unknown models (404),
  context length (400), content filter, 500 / 503 / 529, lognormal latency, hung requests and
  connections dropped mid-answer. Answers are always cut to the request's `max_tokens`
  (finish_reason "length"). See that module's doc for the exact order and shapes.

Library use: `with serve(port=0, latency_s=0.1) as base_url: ...` (base_url is
`http://127.0.0.1:PORT/v1`), or `with serve_provider(provider=ProviderOptions(rpm=60)) as ep:`
(`ep.url`, `ep.stats()`, `ep.reset_stats()`). The server stops when the block exits; hung
requests and open connections end at once.
Command line: `python -m synthdspy.sim_server --port 8765 [--latency-s 0.1] [--error-rate 0.1]
[--rpm 120] [--tpm 100000] [--api-key KEY] [--hang-rate 0.1] ...` (`--help` lists them all).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pydantic

from synthdspy.base_sim import answer_completion
from synthdspy.provider_server import (
    MODEL_ID,
    Answer,
    Provider,
    ProviderOptions,
    completion_body,
    fault_answer,
    max_tokens_of,
    openai_error,
    request_key,
)
from synthdspy.simulator import (
    SIMULATOR_BANNER,
    SimCall,
    SimOptions,
    SimulatedRateLimitError,
    SimulatedServerError,
    Simulator,
)

__all__ = [
    "MODEL_ID",
    "ProviderHandle",
    "ProviderOptions",
    "SimHTTPServer",
    "main",
    "parse_args",
    "serve",
    "serve_provider",
]


class SimHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server holding one `Simulator` and one `Provider`; bound to 127.0.0.1 only.

    `stop()` ends it promptly: hung or sleeping requests wake, open connections are shut.
    """

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, port: int, simulator: Simulator, provider: Provider | None = None) -> None:
        self.simulator = simulator
        self.provider = provider or Provider()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection (so `stop` can shut it), then handle it in a thread."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget and close a finished connection."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def stop(self) -> None:
        """Wake sleeping handlers, stop serving, shut open connections and close the socket."""
        self.provider.stop.set()
        self.shutdown()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()


def _chat_messages(body: dict) -> None:
    """Validate a chat request body: a ``messages`` list, ``max_tokens >= 0``, ``n >= 1``."""
    if not isinstance(body["messages"], list):
        raise TypeError("messages must be a list")
    if (max_tokens_of(body) or 0) < 0 or int(body.get("n") or 1) < 1:
        raise ValueError("max_tokens must be >= 0 and n >= 1")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: avoid 40 ms stalls
    server: SimHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence per-request logging."""

    def _send(self, answer: Answer, drop: bool = False) -> bool:
        """Write `answer` (with the rate-limit headers); with `drop`, only half the body, then
        close the connection. False when the client had gone away."""
        body = json.dumps(answer.payload).encode()
        try:
            self.send_response(answer.status, "Overloaded" if answer.status == 529 else None)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in {**self.server.provider.rate_headers(), **answer.headers}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if drop else body)
            self.wfile.flush()
        except OSError:  # the client closed the connection (e.g. it timed out on a hang)
            self.close_connection = True
            return False
        if drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        return True

    def _finish(self, answer: Answer, key: str | None = None) -> None:
        # Counted before writing, so a client that has its answer sees it counted; an answer
        # whose client has gone (timed out) still counts, as a provider still bills it.
        self.server.provider.stats.record(answer, key)
        self._send(answer)

    def _no_route(self) -> Answer:
        return openai_error(404, f"Invalid URL ({self.command} {self.path})", "invalid_request_error", None)

    def do_GET(self) -> None:  # noqa: N802 - stdlib hook name
        """GET /v1/models: the served models, flagged as the simulator."""
        from synthdspy.batch_server import handle_batch_route  # files and batches (OpenAI Batch API)

        if handle_batch_route(self):
            return
        if self.path.rstrip("/") not in ("/v1/models", "/models"):
            self._send(self._no_route())
            return
        provider = self.server.provider
        self._send(provider.check_auth(self.headers.get("Authorization")) or Answer(200, provider.models()))

    def do_POST(self) -> None:  # noqa: N802 - stdlib hook name
        """POST /v1/chat/completions: screened by the provider, answered by the simulator."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        from synthdspy.batch_server import handle_batch_route

        if handle_batch_route(self, raw):
            return
        if self.path.rstrip("/") in ("/v1/completions", "/completions"):  # base models (synthdspy.base_sim)
            answer_completion(self, raw)
            return
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send(self._no_route())
            return
        body = self.accept(raw, _chat_messages)
        if body is None:
            return
        messages = body["messages"]
        admitted, fault = self.admit(body)
        if admitted:
            self._complete(body, messages, fault)

    def accept(self, raw: bytes, check: Callable[[dict], Any]) -> dict | None:
        """Count the request, check its key, parse ``raw`` as JSON and validate it with ``check``
        (raising ValueError, KeyError or TypeError on a bad body), refuse streaming: the parsed
        body, or None when an error (401, 400) was answered here. Shared by the chat and
        completions routes."""
        provider = self.server.provider
        provider.stats.count("requests")
        denied = provider.check_auth(self.headers.get("Authorization"))
        if denied is not None:
            self._finish(denied)
            return None
        try:
            body = json.loads(raw or b"{}")
            check(body)
        except (ValueError, KeyError, TypeError) as exc:
            self._finish(openai_error(400, f"bad request body: {exc}", "invalid_request_error", None))
            return None
        if body.get("stream"):
            self._finish(openai_error(400, "the simulator endpoint does not stream", "invalid_request_error", None))
            return None
        return body

    def admit(self, body: dict) -> tuple[bool, str | None]:
        """Screen a parsed request ``body`` (quota, context window, RPM/TPM) and draw its latency
        and fault as the provider would, for the chat and completions routes alike.

        Returns ``(True, fault)`` when the request goes on to an answer (``fault`` is a fault the
        answer itself shows, or None); ``(False, None)`` when it was answered here (a refusal or a
        5xx fault) or dropped (the server is stopping during its latency or hang).
        """
        provider = self.server.provider
        denied = provider.screen(body)
        if denied is not None:
            self._finish(denied)
            return False, None
        fault, latency_s = provider.draw()
        if not provider.sleep(latency_s):
            self.close_connection = True  # the server is stopping: no answer
            return False, None
        if fault in ("server_error", "unavailable", "overloaded"):
            self._finish(fault_answer(fault))
            return False, None
        if fault == "hang":
            provider.stats.count("hung")
            if not provider.sleep(provider.options.hang_s):
                self.close_connection = True
                return False, None
        return True, fault

    def _complete(self, body: dict, messages: list[dict], fault: str | None) -> None:
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
            self._finish(_sim_error(429, exc.message, "rate_limit_error", retry))
            return
        except SimulatedServerError as exc:
            self._finish(_sim_error(500, exc.message, "server_error", retry))
            return
        extra = range(1, int(body.get("n") or 1))
        replies += [sim.answer(dataclasses.replace(call, candidate=i)) for i in extra]
        answer = Answer(200, completion_body(body, replies, content_filter=fault == "content_filter"))
        if fault == "drop":
            self.server.provider.stats.count("dropped")
            self._send(answer, drop=True)
        else:
            self._finish(answer, request_key(body))


def _sim_error(status: int, message: str, kind: str, headers: dict[str, str]) -> Answer:
    """The simulator's own injected errors (`SimOptions`), in their historical shape."""
    return Answer(status, {"error": {"message": message, "type": kind, "param": None, "code": kind}}, headers, kind)


@dataclasses.dataclass
class ProviderHandle:
    """What `serve_provider` yields: the base URL and the server's counters.

    url: `http://127.0.0.1:PORT/v1`. server: the running `SimHTTPServer`.
    """

    url: str
    server: SimHTTPServer

    def stats(self) -> dict[str, Any]:
        """The chat-request counters (see `synthdspy.provider_server.ProviderStats.snapshot`)."""
        return self.server.provider.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters (the rate-limit windows are kept)."""
        self.server.provider.stats.reset()


@contextlib.contextmanager
def serve_provider(
    port: int = 0,
    provider: ProviderOptions | None = None,
    simulator: Simulator | None = None,
    **sim_options: Any,
) -> Iterator[ProviderHandle]:
    """Serve `simulator` (default: `Simulator(SimOptions(**sim_options))`) on 127.0.0.1:`port`
    (0 = any free port), misbehaving per `provider` (default: all off); yields a `ProviderHandle`
    (`.url` = `http://127.0.0.1:PORT/v1`, `.stats()`, `.reset_stats()`). The server is stopped
    (hung requests and open connections ended) and the socket closed when the block exits.

    Raises ValueError if both `simulator` and options are given, pydantic.ValidationError for
    bad options and OSError if the port is taken.
    """
    if simulator is not None and sim_options:
        raise ValueError("pass either a Simulator or its options, not both")
    server = SimHTTPServer(port, simulator or Simulator(SimOptions(**sim_options)), Provider(provider))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="sim-server", daemon=True)
    thread.start()
    try:
        yield ProviderHandle(f"http://127.0.0.1:{server.server_address[1]}/v1", server)
    finally:
        server.stop()
        thread.join()


@contextlib.contextmanager
def serve(
    port: int = 0,
    simulator: Simulator | None = None,
    provider: ProviderOptions | None = None,
    **sim_options: Any,
) -> Iterator[str]:
    """`serve_provider` yielding only the base URL `http://127.0.0.1:PORT/v1` (pass your own
    `Simulator` to read its `faults` counter afterwards). Raises as `serve_provider` does."""
    with serve_provider(port, provider, simulator, **sim_options) as handle:
        yield handle.url


def _provider_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `ProviderOptions` field (`--provider-seed` for its seed)."""
    for name, info in ProviderOptions.model_fields.items():
        flag = "--provider-seed" if name == "seed" else f"--{name.replace('_', '-')}"
        dest = f"provider_{name}"
        if name == "insufficient_quota":
            parser.add_argument(flag, dest=dest, action="store_true", help="answer every chat request 429")
        elif name == "models":
            parser.add_argument(flag, dest=dest, metavar="IDS", help="comma-separated model ids served (default: any)")
        else:
            kind = {"api_key": str, "rpm": int, "tpm": int, "context_window": int, "seed": int}.get(name, float)
            parser.add_argument(flag, dest=dest, type=kind, default=info.default, metavar=name.upper())


def parse_args(argv: list[str] | None = None) -> tuple[int, Simulator, ProviderOptions]:
    """Parse the command line into (port, simulator, provider options). Exits with status 2
    (argparse's error) on unknown flags or invalid option values."""
    parser = argparse.ArgumentParser(prog="python -m synthdspy.sim_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    for name in SimOptions.model_fields:
        kind = int if name == "seed" else float
        parser.add_argument(
            f"--{name.replace('_', '-')}", dest=name, type=kind, default=SimOptions.model_fields[name].default
        )
    _provider_flags(parser)
    args = vars(parser.parse_args(argv))
    port = args.pop("port")
    chosen = {k.removeprefix("provider_"): args.pop(k) for k in list(args) if k.startswith("provider_")}
    if chosen["models"] is not None:
        chosen["models"] = [m.strip() for m in chosen["models"].split(",") if m.strip()]
    try:
        return port, Simulator(SimOptions(**args)), ProviderOptions(**chosen)
    except pydantic.ValidationError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: serve until interrupted (Ctrl-C). Exits 2 on bad options, and with one
    line when the port is taken."""
    port, simulator, provider = parse_args(argv)
    print(SIMULATOR_BANNER, flush=True)
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(serve(port, simulator=simulator, provider=provider))
        except OSError as exc:
            raise SystemExit(f"sim_server: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        models = ", ".join(repr(m) for m in provider.models or [MODEL_ID])
        print(f"serving the simulator at {url} (model ids {models}); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
