"""``custom``: a task declared in the experiment file alone, as a DSPy signature plus field mappings.

Example (``experiments/custom_task.toml`` is a complete file)::

    [task]
    name = "custom"
    signature = "passage: str -> question: str, answer: str"
    instructions = "Ask one question the passage answers, and answer it from the passage."
    inputs_from = { passage = "source" }          # signature input <- seed field (default: same name)
    record = { instruction = "question", input = "passage", output = "answer" }

or, with types and descriptions, field tables instead of ``signature``::

    [task.inputs.passage]
    desc = "a news passage"
    [task.outputs.difficulty]
    type = ["easy", "medium", "hard"]             # a list of choices is a Literal
"""

from __future__ import annotations

import json
from typing import Any, Literal

import dspy
from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from synthdspy.custom_signature import SignatureSpecError, from_string, from_tables, parse_type
from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.tasks.base import Task, require, sampling_config

RecordField = Literal["instruction", "input", "output"]


def _fail(message: str) -> PydanticCustomError:
    """A validation error whose message is ``message`` as written (no "Value error," prefix)."""
    return PydanticCustomError("custom_task", "{detail}", {"detail": message})


class FieldSpec(Params):
    """One declared field: ``type`` is a type expression (``str``, ``int``, ``list[str]`` ...) or a list
    of choices (a ``Literal``); ``desc`` tells the LM what the field holds."""

    type: str | list[str | int | float | bool] = "str"
    desc: str = ""

    @field_validator("type")
    @classmethod
    def _buildable(cls, value: str | list[Any]) -> str | list[Any]:
        try:
            parse_type(value)
        except SignatureSpecError as exc:
            raise _fail(str(exc)) from None
        return value


class CustomParams(Params):
    """Parameters of the ``custom`` task: the signature (a string, or ``inputs``/``outputs`` field
    tables), its instructions, seed field -> input (``inputs_from``) and record field -> signature
    field (``record``) mappings."""

    inputs: dict[str, FieldSpec] = Field(default_factory=dict)
    outputs: dict[str, FieldSpec] = Field(default_factory=dict)
    signature: str | None = Field(None, validate_default=True)
    instructions: str = ""
    inputs_from: dict[str, str] = Field(default_factory=dict, validate_default=True)
    record: dict[RecordField, str] = Field(default_factory=dict, validate_default=True)

    @field_validator("signature")
    @classmethod
    def _one_signature(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "inputs" not in info.data or "outputs" not in info.data:
            return value  # a field table is invalid and already reported
        tables = bool(info.data["inputs"] or info.data["outputs"])
        if value is not None and tables:
            raise _fail("give the fields either as this string or as [task.inputs.NAME]/[task.outputs.NAME] "
                        "tables, not both")
        if value is None and not tables:
            raise _fail('required: a DSPy signature such as "passage: str -> question: str, answer: str", '
                        "or [task.inputs.NAME] and [task.outputs.NAME] tables")
        try:
            _build(value, info.data["inputs"], info.data["outputs"])
        except SignatureSpecError as exc:
            raise _fail(str(exc)) from None
        return value

    @field_validator("inputs_from")
    @classmethod
    def _known_inputs(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        sig = _built(info)
        unknown = sorted(set(value) - set(sig.input_fields)) if sig else []
        if unknown:
            raise _fail(f"{unknown} are not input fields of the signature; its inputs are {list(sig.input_fields)}")
        return value

    @field_validator("record")
    @classmethod
    def _known_fields(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        sig = _built(info)
        for key, name in value.items():
            if sig and name not in sig.fields:
                raise _fail(f"{key} = {name!r} is not a field of the signature; its fields are {list(sig.fields)}")
        return value

    def build_signature(self) -> type[dspy.Signature]:
        """The DSPy signature these parameters declare, with ``instructions``."""
        return _build(self.signature, self.inputs, self.outputs, self.instructions)


def _build(signature: str | None, inputs: dict[str, FieldSpec], outputs: dict[str, FieldSpec],
           instructions: str = "") -> type[dspy.Signature]:
    """The signature from the string when given, else from the field tables.

    Raises:
        SignatureSpecError: as :func:`from_string` and :func:`from_tables`.
    """
    if signature is not None:
        return from_string(signature, instructions)
    tables = [{name: (parse_type(f.type), f.desc) for name, f in t.items()} for t in (inputs, outputs)]
    return from_tables(*tables, instructions)


def _built(info: ValidationInfo) -> type[dspy.Signature] | None:
    """The signature of the fields validated so far, or None when one of them failed."""
    if not {"inputs", "outputs", "signature"} <= set(info.data):
        return None
    return _build(info.data["signature"], info.data["inputs"], info.data["outputs"])


def _as_text(value: Any) -> str:
    """A record field's text: strings stripped, lists and dicts as JSON, anything else ``str()``."""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)


@register_task("custom", CustomParams)
class CustomTask(Task):
    """A task declared in the experiment file alone: a DSPy signature and field mappings.

    One predictor call and one record per seed and rollout. Each signature input is read from the
    seed field ``inputs_from`` names (default: the field of the same name). ``record`` maps the
    record's ``instruction``, ``input`` and ``output`` to signature fields (inputs or outputs;
    ``output`` defaults to the first output field); outputs not mapped go into ``record.metadata``
    with their types kept (an ``int`` stays an int). Map ``input`` to the source passage for
    grounding gates. The predictor is compiled like any built-in task's; a saved program stores
    these parameters, and loading it rebuilds the signature from them.
    """

    name = "custom"

    def __init__(self, **params: Any) -> None:
        super().__init__()
        cfg = CustomParams.model_validate(params)
        self.predict = dspy.Predict(cfg.build_signature())
        outputs = list(self.predict.signature.output_fields)
        self.inputs_from = {name: cfg.inputs_from.get(name, name) for name in self.predict.signature.input_fields}
        self.mapping: dict[str, str] = {"output": outputs[0], **cfg.record}
        self.extra_outputs = [name for name in outputs if name not in self.mapping.values()]

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        values = dict(zip(self.inputs_from, require(seed, self.name, *self.inputs_from.values()), strict=True))
        pred = self.predict(**values, config=sampling_config(rollout))
        fields = {**values, **{name: pred[name] for name in self.predict.signature.output_fields}}
        return [
            self.record(
                seed, rollout, 0, **{key: _as_text(fields[name]) for key, name in self.mapping.items()},
                metadata={name: fields[name] for name in self.extra_outputs},
            )
        ]
