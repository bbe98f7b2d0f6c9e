"""Every signature synthdspy ships turns a malformed LM answer into DSPy's parse error, never into a
half-filled prediction (the task or gate then fails its unit with that error, see test_generation)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError

import synthdspy.signatures
from synthdspy.simulator import SimLM


def shipped_signatures() -> list[type[dspy.Signature]]:
    found = {}
    for info in pkgutil.iter_modules(synthdspy.signatures.__path__):
        module = importlib.import_module(f"synthdspy.signatures.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, dspy.Signature) and obj.__module__ == module.__name__:
                found[f"{info.name}.{name}"] = obj
    return [found[k] for k in sorted(found)]


SIGNATURES = shipped_signatures()


def test_the_catalog_of_signatures_is_found():
    names = {s.__name__ for s in SIGNATURES}
    assert {"DiagnoseFailure", "WriteTopicLesson", "WriteStyledLesson", "WriteLesson", "ClusterSamples"} <= names


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(use_json_adapter_fallback=False), dspy.JSONAdapter()],
                         ids=["chat", "json"])
@pytest.mark.parametrize("signature", SIGNATURES, ids=lambda s: s.__name__)
def test_a_malformed_answer_raises_a_parse_error(signature, adapter):
    inputs = {name: "x" for name in signature.input_fields}
    with dspy.context(lm=SimLM(malformed_rate=1.0, cache=False), adapter=adapter), pytest.raises(AdapterParseError):
        dspy.Predict(signature)(**inputs)
