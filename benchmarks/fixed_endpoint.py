"""An OpenAI-compatible chat endpoint that answers every request with one fixed valid response
after a fixed latency, costing almost no CPU (aiohttp, no parsing of the request body).

Used by ``benchmarks/generation_throughput.py`` in a separate process, so the client under test
owns the other core. The fixed answer is a DSPy ChatAdapter reply for a signature with one output
field named ``response`` (``synthdspy.signatures.qa.AnswerInstruction``).

Run: ``python benchmarks/fixed_endpoint.py --latency-s 0.1`` prints ``http://127.0.0.1:<port>/v1``
on its first line, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket

from aiohttp import web

ANSWER = "[[ ## response ## ]]\nA fixed answer from the benchmark endpoint.\n\n[[ ## completed ## ]]"
BODY = json.dumps({
    "id": "chatcmpl-fixed", "object": "chat.completion", "created": 0, "model": "fixed",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}],
    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
}).encode()


def app(latency_s: float) -> web.Application:
    """The aiohttp application: ``POST /v1/chat/completions`` and ``GET /v1/models``."""

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency_s)
        return web.Response(body=BODY, content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fixed", "object": "model"}]})

    application = web.Application()
    application.router.add_post("/v1/chat/completions", chat)
    application.router.add_get("/v1/models", models)
    return application


def main() -> None:
    """Bind a free port on 127.0.0.1, print the base URL, serve forever."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-s", type=float, default=0.1)
    args = parser.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    web.run_app(app(args.latency_s), sock=sock, print=None, access_log=None, backlog=4096)


if __name__ == "__main__":
    main()
