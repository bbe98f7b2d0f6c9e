"""How grouping requests are recognised (the cluster-agent's steps): array-of-objects schemas and
their properties, indexed sample inputs, numbered criteria and proposed-cluster lists."""

from __future__ import annotations

import re
from typing import Any

from synthdspy.simulator.aspects import _aspect_for
from synthdspy.simulator.fields import _name_words
from synthdspy.simulator.prompt import _resolve

_SCALE_WORDS = re.compile(r"metric|scor|scale|rating|\b1\s*(?:-|to)\s*5\b", re.IGNORECASE)
_DEFINITION_KEYS = {"definition", "description", "meaning", "explanation", "rule", "desc"}
_KIND_KEYS = {"kind", "type", "category"}


def _scale_range(desc: str, schema: dict) -> tuple[int, int]:
    """(low, high) integer scores of a score field: schema bounds, else the smallest and largest
    numbers in its description ("1 (lowest) to 5 (highest)"), else 1-5."""
    numbers = [int(n) for n in re.findall(r"-?\d+", desc)]
    lo = schema.get("minimum", min(numbers) if len(numbers) >= 2 else 1)
    hi = schema.get("maximum", max(numbers) if len(numbers) >= 2 else 5)
    return int(lo), max(int(lo), int(hi))


def _props(schema: dict, defs: dict) -> dict[str, dict]:
    """Properties of an array-of-objects schema's items (resolved), or {} for anything else."""
    schema = _resolve(schema, defs)
    if schema.get("type") != "array":
        return {}
    return {
        k: _resolve(v, defs) for k, v in _resolve(schema.get("items", {}), defs).get("properties", {}).items()
    }


def _prop_of(props: dict[str, dict], words: set[str], kind: str | None = None) -> str | None:
    """First property named with one of `words` (and of JSON type `kind`, if given)."""
    return next(
        (k for k, v in props.items() if _name_words(k) & words and kind in (None, v.get("type"))), None
    )


def _int_list_prop(props: dict[str, dict]) -> str | None:
    """The first property that is an array of integers (a cluster's member indices)."""
    return next(
        (
            k
            for k, v in props.items()
            if v.get("type") == "array" and v.get("items", {}).get("type") == "integer"
        ),
        None,
    )


def _indexed_texts(value: Any) -> dict[int, str] | None:
    """A dict input mapping integer keys (JSON strings "1", "2"...) to texts, as ints -> str."""
    if not isinstance(value, dict) or not value:
        return None
    try:
        texts = {int(k): v for k, v in value.items() if isinstance(v, str)}
    except (TypeError, ValueError):
        return None
    return texts if len(texts) == len(value) else None


def _parse_criteria(text: str) -> list[tuple[str, bool]]:
    """(name, is_scale) of each numbered criterion line ("2. length (metric): ...")."""
    found = []
    for match in re.finditer(r"^\s*\d+[.)]\s*([^():\n]+?)\s*(?:\(([^)]*)\))?\s*:", text, re.MULTILINE):
        name, kind = match.group(1).strip(), match.group(2) or ""
        scale = bool(_SCALE_WORDS.search(kind)) if kind else _aspect_for(name, True) is not None
        found.append((name, scale))
    return found

def _int_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, int) and not isinstance(i, bool) for i in value)
    )


def _cluster_list(value: Any) -> bool:
    """A list of objects, at least one of them holding a list of integers (proposed clusters)."""
    return (
        isinstance(value, list)
        and all(isinstance(c, dict) for c in value)
        and any(_int_list(v) for c in value for v in c.values())
    )
