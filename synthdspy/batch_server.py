"""OpenAI's files and batches endpoints on the simulator's HTTP server (`synthdspy.sim_server`).

Implements the documented shapes of the OpenAI Batch API (platform.openai.com/docs/guides/batch,
API reference "Files" and "Batch"):

- POST /v1/files (multipart: `purpose=batch`, `file` = JSONL, one request a line:
  `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`) -> file object;
  GET /v1/files/{id} -> file object; GET /v1/files/{id}/content -> the file's bytes.
- POST /v1/batches (`input_file_id`, `endpoint`, `completion_window` "24h", `metadata`) -> batch
  object; GET /v1/batches/{id} -> batch object with `status` (validating, in_progress,
  finalizing, completed, expired, failed), `request_counts` {total, completed, failed},
  `output_file_id` (one line per answered request: `{"id", "custom_id", "response":
  {"status_code", "request_id", "body"}, "error": null}`) and `error_file_id` (the failed and
  expired requests: `{"id", "custom_id", "response": null | {status_code, body}, "error":
  {"code", "message"}}`). An input file with a bad line gives a `failed` batch with `errors`.

Timing and faults come from `ProviderOptions`: a batch is `validating` for the first 10 % of
`batch_delay_s`, `in_progress` (counts rising linearly) until 80 %, `finalizing` until 100 %,
then `completed`. `batch_fail_rate`: share of requests answered 500 `server_error` in the error
file; `batch_expire_rate`: share left unfinished, the batch then ends `expired` (as a batch past
its 24 h window does) with those requests as `batch_expired` in the error file. Draws are seeded
(`seed`). Answers are the simulator's, as on the chat route; the bearer key is checked as there.

`batch_counts(server)` gives `{"files", "submissions", "batch_requests", "retrievals"}`.
"""

from __future__ import annotations

import dataclasses
import email.parser
import json
import random
import re
import threading
import time
import uuid
from typing import Any

from synthdspy.provider_server import Answer, completion_body, openai_error
from synthdspy.simulator import SimCall, SimulatedRateLimitError, SimulatedServerError

_FILE = re.compile(r"^/v1/files/([\w-]+)(/content)?/?$")
_BATCH = re.compile(r"^/v1/batches/([\w-]+)/?$")


@dataclasses.dataclass
class _Batch:
    """One batch: its object fields and the precomputed outcome of each request."""

    id: str
    input_file_id: str
    endpoint: str
    created: float
    metadata: dict
    outputs: list[dict]
    errors: list[dict]
    expire: bool
    output_file_id: str | None = None
    error_file_id: str | None = None


class BatchStore:
    """Files and batches of one server (thread-safe); see the module doc."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.files: dict[str, tuple[dict, bytes]] = {}
        self.batches: dict[str, _Batch] = {}
        self.counts = {"files": 0, "submissions": 0, "batch_requests": 0, "retrievals": 0}
        self._lock = threading.Lock()
        self._rng = random.Random(server.provider.options.seed)

    def add_file(self, name: str, purpose: str, data: bytes) -> dict:
        """Store an uploaded file; returns its file object."""
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        obj = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
               "filename": name, "purpose": purpose, "status": "processed"}
        with self._lock:
            self.files[file_id] = (obj, data)
            if purpose == "batch":
                self.counts["files"] += 1
        return obj

    def create(self, body: dict) -> Answer:
        """POST /v1/batches: validate the input file, answer every request now (revealed over
        `batch_delay_s`); 400 for an unknown file or window, a `failed` batch for bad lines."""
        file_id, endpoint = body.get("input_file_id"), body.get("endpoint")
        if file_id not in self.files:
            return openai_error(400, f"No such File object: {file_id}", "invalid_request_error", None, "input_file_id")
        if body.get("completion_window") != "24h":
            return openai_error(400, "completion_window must be '24h'", "invalid_request_error", None)
        batch = _Batch(f"batch_{uuid.uuid4().hex[:24]}", file_id, str(endpoint), time.time(),
                       body.get("metadata") or {}, [], [], False)
        lines, problems = self._parse(self.files[file_id][1], str(endpoint))
        with self._lock:
            self.counts["submissions"] += 1
            self.counts["batch_requests"] += len(lines)
        if problems:
            batch.errors = problems
        else:
            self._answer(batch, lines)
        with self._lock:
            self.batches[batch.id] = batch
        return Answer(200, self.view(batch))

    def _parse(self, data: bytes, endpoint: str) -> tuple[list[dict], list[dict]]:
        lines, problems, seen = [], [], set()
        for number, text in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                if line["custom_id"] in seen:
                    raise ValueError(f"duplicate custom_id {line['custom_id']!r}")
                if line.get("method") != "POST" or line.get("url") != endpoint:
                    raise ValueError(f"method must be POST and url {endpoint}")
                if not isinstance(line["body"].get("messages"), list):
                    raise ValueError("body.messages must be a list")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                problems.append({"code": "invalid_request", "message": str(exc), "param": None, "line": number})
                continue
            seen.add(line["custom_id"])
            lines.append(line)
        return lines, problems

    def _answer(self, batch: _Batch, lines: list[dict]) -> None:
        options = self.server.provider.options
        for line in lines:
            with self._lock:
                u = self._rng.random()
            custom = line["custom_id"]
            if u < options.batch_expire_rate:
                batch.expire = True
                message = "This request could not be executed before the completion window expired."
                batch.errors.append(_error_line(custom, "batch_expired", message))
            elif u < options.batch_expire_rate + options.batch_fail_rate:
                error = {"message": "The server had an error while processing your request.", "type": "server_error"}
                batch.errors.append({**_error_line(custom, "server_error", error["message"]),
                                     "response": {"status_code": 500, "request_id": uuid.uuid4().hex,
                                                  "body": {"error": error}}})
            else:
                status, payload = _simulate(self.server.simulator, line["body"])
                entry = {"id": f"batch_req_{uuid.uuid4().hex[:20]}", "custom_id": custom, "error": None,
                         "response": {"status_code": status, "request_id": uuid.uuid4().hex, "body": payload}}
                (batch.outputs if status == 200 else batch.errors).append(entry)

    def view(self, batch: _Batch) -> dict:
        """The batch object now (status by elapsed time; files written when it ends)."""
        total = len(batch.outputs) + len(batch.errors)
        delay = self.server.provider.options.batch_delay_s
        share = (time.time() - batch.created) / delay if delay > 0 else 1.0
        expired = [e for e in batch.errors if (e.get("error") or {}).get("code") == "batch_expired"]
        status = ("validating" if share < 0.1 else "in_progress" if share < 0.8 else "finalizing" if share < 1.0
                  else "expired" if batch.expire else "completed")
        if batch.errors and not batch.outputs and all("line" in e for e in batch.errors):
            status = "failed"  # input validation failed
        done = min(1.0, max(0.0, (share - 0.1) / 0.7))
        failed = len(batch.errors) - len(expired)
        counts = ({"total": total, "completed": len(batch.outputs), "failed": len(batch.errors)}
                  if status in ("completed", "expired") else
                  {"total": total, "completed": int(len(batch.outputs) * done), "failed": int(failed * done)})
        if status in ("completed", "expired") and batch.output_file_id is None:
            self._write_files(batch)
        ended = int(batch.created + delay) if status in ("completed", "expired", "failed") else None
        return {
            "id": batch.id, "object": "batch", "endpoint": batch.endpoint, "input_file_id": batch.input_file_id,
            "completion_window": "24h", "status": status, "created_at": int(batch.created),
            "in_progress_at": int(batch.created) if status != "validating" else None,
            "expires_at": int(batch.created) + 86400, "completed_at": ended if status == "completed" else None,
            "expired_at": ended if status == "expired" else None, "failed_at": ended if status == "failed" else None,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "errors": {"object": "list", "data": batch.errors} if status == "failed" else None,
            "request_counts": counts, "metadata": batch.metadata,
        }

    def _write_files(self, batch: _Batch) -> None:
        def jsonl(rows: list[dict]) -> bytes:
            return "".join(json.dumps(r) + "\n" for r in rows).encode()

        with self._lock:
            if batch.output_file_id is not None:
                return
        out = self.add_file(f"{batch.id}_output.jsonl", "batch_output", jsonl(batch.outputs))["id"]
        err = None
        if batch.errors:
            err = self.add_file(f"{batch.id}_error.jsonl", "batch_output", jsonl(batch.errors))["id"]
        with self._lock:
            batch.output_file_id, batch.error_file_id = out, err


def _error_line(custom_id: str, code: str, message: str) -> dict:
    return {"id": f"batch_req_{uuid.uuid4().hex[:20]}", "custom_id": custom_id, "response": None,
            "error": {"code": code, "message": message}}


def _simulate(simulator: Any, body: dict) -> tuple[int, dict]:
    """(status, body) of one chat request answered by the simulator, as the chat route does."""
    call = SimCall(body["messages"], temperature=body.get("temperature"),
                   response_format=body.get("response_format"), seed=body.get("seed"))
    try:
        replies = [simulator.complete(call)]
    except (SimulatedRateLimitError, SimulatedServerError) as exc:
        status = 429 if isinstance(exc, SimulatedRateLimitError) else 500
        return status, {"error": {"message": exc.message, "type": "server_error", "param": None, "code": None}}
    replies += [simulator.answer(dataclasses.replace(call, candidate=i)) for i in range(1, int(body.get("n") or 1))]
    return 200, completion_body(body, replies)


def batch_store(server: Any) -> BatchStore:
    """The server's :class:`BatchStore`, made on first use."""
    store = server.__dict__.get("batch_store")
    if store is None:
        store = server.__dict__.setdefault("batch_store", BatchStore(server))
    return store


def batch_counts(server: Any) -> dict[str, int]:
    """Counters of the batch routes: files uploaded for batches, batches submitted, requests in
    them, and batch retrievals."""
    store = batch_store(server)
    with store._lock:
        return dict(store.counts)


def _multipart(handler: Any, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """{field: (filename, bytes)} of a multipart/form-data body."""
    head = f"Content-Type: {handler.headers.get('Content-Type', '')}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + raw)
    parts = message.get_payload() if message.is_multipart() else []
    return {p.get_param("name", header="content-disposition"): (p.get_filename(), p.get_payload(decode=True) or b"")
            for p in parts}


def handle_batch_route(handler: Any, raw: bytes | None = None) -> bool:
    """Answer a files or batches request on `handler` (the sim server's request handler); False
    when the path is not one of these routes. `raw`: the POST body, already read."""
    path = handler.path.split("?")[0].rstrip("/")
    is_post = handler.command == "POST"
    if not (path in ("/v1/files", "/v1/batches") or _FILE.match(path) or _BATCH.match(path)):
        return False
    store = batch_store(handler.server)
    denied = handler.server.provider.check_auth(handler.headers.get("Authorization"))
    if denied is not None:
        handler._send(denied)
        return True
    if is_post and path == "/v1/files":
        fields = _multipart(handler, raw or b"")
        name, data = fields.get("file", (None, None))
        purpose = (fields.get("purpose", (None, b""))[1] or b"").decode()
        if data is None:
            handler._send(openai_error(400, "a multipart 'file' field is required", "invalid_request_error", None))
            return True
        handler._send(Answer(200, store.add_file(name or "upload.jsonl", purpose, data)))
    elif is_post and path == "/v1/batches":
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            handler._send(openai_error(400, f"bad request body: {exc}", "invalid_request_error", None))
            return True
        handler._send(store.create(body))
    elif (match := _BATCH.match(path)) and not is_post:
        batch = store.batches.get(match.group(1))
        with store._lock:
            store.counts["retrievals"] += 1
        handler._send(Answer(200, store.view(batch)) if batch else
                      openai_error(404, f"No batch found with id '{match.group(1)}'.", "invalid_request_error", None))
    elif (match := _FILE.match(path)) and not is_post:
        found = store.files.get(match.group(1))
        if found is None:
            handler._send(openai_error(404, f"No such File object: {match.group(1)}", "invalid_request_error", None))
        elif match.group(2):
            _send_bytes(handler, found[1])
        else:
            handler._send(Answer(200, found[0]))
    else:
        handler._send(openai_error(405, f"{handler.command} {path} is not supported", "invalid_request_error", None))
    return True


def _send_bytes(handler: Any, data: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
