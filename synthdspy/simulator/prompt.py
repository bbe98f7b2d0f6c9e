"""Reading a request: parse the messages DSPy's ChatAdapter/JSONAdapter wrote into fields, schemas,
instructions, demos and input values (`parse_prompt`), and resolve a field's JSON schema."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

_HEADER = re.compile(r"^\[\[ ## (\w+) ## \]\]\s*$", re.MULTILINE)
_FIELD_LINE = re.compile(r"^\d+\. `(\w+)` \(")
_NOTE = re.compile(r"^\{(\w+)\}\s+# note: the value you produce (.*)$", re.DOTALL)


@dataclass(frozen=True)
class FieldSpec:
    """One signature field as the adapter described it: name, type text, description, schema."""

    name: str
    type_name: str
    desc: str
    schema: dict


@dataclass
class ParsedPrompt:
    """What the simulator understood of a request.

    mode: "chat" (ChatAdapter), "json" (JSONAdapter) or "text" (anything else). values: the
    last user message's input values; demos: (inputs, outputs) of prior user/assistant pairs.
    """

    mode: str
    instructions: str
    inputs: list[FieldSpec]
    outputs: list[FieldSpec]
    values: dict[str, Any]
    demos: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)


def _content_text(content: Any) -> str:
    """Text of an OpenAI message content (a string or a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return "" if content is None else str(content)


def _split_type(rest: str) -> tuple[str, str]:
    """Split "list[str]): desc" into ("list[str]", "desc"), balancing brackets and parentheses."""
    depth = 0
    for i, ch in enumerate(rest):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0 and ch == ")":
                return rest[:i], rest[i + 1 :].lstrip(":").strip()
            depth -= 1
    return rest, ""


def _parse_field_list(block: str) -> list[tuple[str, str, str]]:
    """Parse "1. `name` (type): desc" lines (plus continuation lines) into (name, type, desc)."""
    fields: list[list[str]] = []
    for line in block.splitlines():
        match = _FIELD_LINE.match(line)
        if match:
            type_name, desc = _split_type(line[match.end() :])
            fields.append([match.group(1), type_name, desc])
        elif fields and line.strip():
            fields[-1][2] = (fields[-1][2] + "\n" + line.strip()).strip()
    return [(n, t, d) for n, t, d in fields]


def _schema_from_note(type_name: str, note: str | None) -> dict:
    """JSON schema of an output field from the adapter's type note (or the bare type name)."""
    if note is None:
        return {"type": "string"}
    if note.startswith("must adhere to the JSON schema:"):
        return json.loads(note.split(":", 1)[1].strip())
    if note.startswith("must be True or False"):
        return {"type": "boolean"}
    if note.startswith("must be a single int"):
        return {"type": "integer"}
    if note.startswith("must be a single float"):
        return {"type": "number"}
    if "one of:" in note:
        if type_name.startswith("Literal[") and type_name.endswith("]"):
            try:
                values = ast.literal_eval("[" + type_name[len("Literal[") : -1] + "]")
                return {"enum": list(values)}
            except (ValueError, SyntaxError):
                pass
        return {"enum": [_maybe_json(v.strip()) for v in note.split("one of:", 1)[1].split("; ")]}
    return {"type": "string"}


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def _notes(system: str, mode: str) -> dict[str, str]:
    """Map output-field name -> type note, from the structure section of the system message."""
    notes: dict[str, str] = {}
    if mode == "json":
        start = system.find("{", system.find("Outputs will be a JSON object"))
        try:
            template, _ = json.JSONDecoder().raw_decode(system, start)
        except ValueError:
            return notes
        chunks = [str(v) for v in template.values()] if isinstance(template, dict) else []
    else:
        chunks = [c.strip() for c in _HEADER.split(system)[2::2]]
    for chunk in chunks:
        match = _NOTE.match(chunk.strip())
        if match:
            notes[match.group(1)] = match.group(2).strip()
    return notes


def _sections(text: str) -> dict[str, str]:
    """`[[ ## name ## ]]` sections of a message, in order, as name -> stripped text."""
    parts = _HEADER.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def _field_values(text: str, specs: list[FieldSpec], last: bool) -> dict[str, Any]:
    sections = _sections(text)
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in sections:
            continue
        raw = sections[spec.name]
        if last:
            raw = re.split(r"(?:\A|\n\n)Respond with ", raw)[0].strip()  # the adapter's closing line
        values[spec.name] = raw if spec.type_name == "str" else _maybe_json(raw)
    return values


def _assistant_values(text: str, mode: str) -> dict[str, Any]:
    if mode == "json":
        try:
            data = json.loads(text)
            return data if isinstance(data, dict) else {}
        except ValueError:
            return {}
    return {k: _maybe_json(v) for k, v in _sections(text).items() if k != "completed"}


def parse_prompt(messages: list[dict], response_format: Any = None) -> ParsedPrompt:
    """Parse OpenAI-style messages written by DSPy's ChatAdapter or JSONAdapter.

    Returns a `ParsedPrompt`. Messages that no DSPy adapter wrote give mode "text" with one
    string output field `text` and the last user message as input `prompt`. Never raises on odd
    input; unknown parts are ignored.
    """
    texts = [(m.get("role", "user"), _content_text(m.get("content"))) for m in messages]
    system = next((t for r, t in texts if r in ("system", "developer")), "")
    turns = [(r, t) for r, t in texts if r in ("user", "assistant")]
    last_user = next((t for r, t in reversed(turns) if r == "user"), "")
    if "Your output fields are:" not in system:
        out = FieldSpec("text", "str", "", {"type": "string"})
        return ParsedPrompt("text", system, [], [out], {"prompt": last_user})
    mode = "json" if ("Outputs will be a JSON object" in system or response_format) else "chat"
    head, _, rest = system.partition("Your output fields are:")
    out_block = rest.split("All interactions will be structured", 1)[0]
    in_block = head.split("Your input fields are:", 1)[-1]
    notes = _notes(system, mode)
    inputs = [FieldSpec(n, t, d, {}) for n, t, d in _parse_field_list(in_block)]
    outputs = [
        FieldSpec(n, t, d, _schema_from_note(t, notes.get(n))) for n, t, d in _parse_field_list(out_block)
    ]
    objective = system.split("your objective is:", 1)[-1] if "your objective is:" in system else ""
    instructions = "\n".join(line.strip() for line in objective.splitlines()).strip()
    demos = []
    for i in range(len(turns) - 2):
        if turns[i][0] == "user" and turns[i + 1][0] == "assistant":
            demo_in = _field_values(turns[i][1], inputs, last=False)
            demos.append((demo_in, _assistant_values(turns[i + 1][1], mode)))
    return ParsedPrompt(
        mode, instructions, inputs, outputs, _field_values(last_user, inputs, last=True), demos
    )


def _resolve(schema: dict, defs: dict) -> dict:
    while "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(s, defs).get("type") != "null"] or schema[key]
            return _resolve(options[0], defs)
    return schema
