"""A canned DSPy LM for the cluster-agent tests: an engine answering in ChatAdapter format with fields
computed from the prompt by a handler (no network, deterministic), a handler clustering samples by their
first word, a fresh DSPy cache per test (import `memory_cache` into a test module to apply it) and a
one-criterion `CRITERIA`."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

import dspy
import pytest
from dspy.clients.cache import Cache
from dspy.lm15 import Message, Response, TextPart, Usage

from synthdspy.metrics.diversity.cluster_agent import DiversityCriteria
from synthdspy.signatures.diversity import Criterion

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


class CannedEngine:
    """A DSPy engine answering in ChatAdapter format with fields computed by ``handler``.

    ``handler(task, inputs)`` gets the signature's task ("propose", "merge_metadata",
    "merge_metrics", "condense", "cluster", "verify") and the parsed input fields.
    A handler returning a string sends it verbatim (to test unparseable answers).
    """

    def __init__(self, handler: Handler):
        self.handler = handler
        self.calls = 0
        self.lock = threading.Lock()

    def complete(self, request: Any) -> Response:
        with self.lock:
            self.calls += 1
        system = (
            request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        )
        user = request.messages[-1].text
        inputs = {
            name: _parse(value)
            for name, value in re.findall(
                r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n(?:\[\[ ## |Respond with)|\Z)", user, flags=re.S
            )
        }
        answer = self.handler(_task(system), inputs)
        if isinstance(answer, str):
            text = answer
        else:
            text = "".join(f"[[ ## {k} ## ]]\n{json.dumps(v)}\n\n" for k, v in answer.items())
            text += "[[ ## completed ## ]]"
        return Response(
            id=None,
            model="canned",
            message=Message.assistant([TextPart(text)]),
            finish_reason="stop",
            usage=Usage(input_tokens=100, output_tokens=10, total_tokens=110),
        )

    def stream(self, request: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _parse(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _task(system: str) -> str:
    outputs = system.split("Your output fields are:")[1].split("All interactions")[0]
    if "`verdicts`" in outputs:
        return "verify"
    if "`clusters`" in outputs:
        return "cluster"
    if "`criteria`" in outputs:
        return "condense"
    if "`merged`" in outputs:
        return "merge_metrics" if "1 to 5" in system.split("objective is:")[1] else "merge_metadata"
    return "propose"


def topic_handler(invalid_sizes: tuple[int, ...] = ()) -> Handler:
    """Clusters samples by their first word; the verifier rejects clusters whose size is listed."""

    def handle(task: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if task == "propose":
            return {
                "metadata": [
                    {"name": "Topic", "definition": "the first word"},
                    {"name": "register", "definition": "formal or not"},
                ],
                "metrics": [{"name": "length", "definition": "1 short .. 5 long"}],
            }
        if task in ("merge_metadata", "merge_metrics"):
            names = list(inputs["proposals"])[: int(inputs["k"])]
            return {"merged": [{"name": n, "definition": f"merged {n}"} for n in names]}
        if task == "condense":
            items = inputs["metadata"] + inputs["metrics"]
            return {
                "criteria": [
                    {"name": it["name"], "kind": "metadata", "definition": f"group by {it['name']}"}
                    for it in items[:-1]
                ]
            }
        if task == "cluster":
            groups: dict[str, list[int]] = {}
            for index, text in inputs["samples"].items():
                groups.setdefault(text.split()[0], []).append(int(index))
            return {
                "clusters": [
                    {
                        "cluster_id": c,
                        "sample_indices": ids,
                        "uniqueness_reasoning": f"all {w}",
                        "metadata": {"topic": w},
                        "metric_scores": [{"metric": "length", "score": 3}],
                    }
                    for c, (w, ids) in enumerate(sorted(groups.items()), 1)
                ]
            }
        return {
            "verdicts": [
                {
                    "cluster_id": c["cluster_id"],
                    "valid": len(c["sample_indices"]) not in invalid_sizes,
                    "reasoning": "checked",
                }
                for c in inputs["clusters"]
            ]
        }

    return handle


@pytest.fixture(autouse=True)
def memory_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(dspy, "cache", Cache(False, True, str(tmp_path / "dspy_cache")))


def canned_lm(handler: Handler, model: str = "canned/test", **kwargs: Any) -> tuple[dspy.LM, CannedEngine]:
    engine = CannedEngine(handler)
    return dspy.LM(model, engine=engine, cache=True, **kwargs), engine


CRITERIA = DiversityCriteria(
    criteria=(Criterion(name="topic", kind="metadata", definition="group by topic"),)
)
