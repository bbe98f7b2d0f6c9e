"""DSPy signatures declared in an experiment file: a signature string or typed field tables.

Both forms are handed to DSPy's own builder (``dspy.make_signature``, what ``dspy.Signature(...)``
calls): the string as written (``"passage: str -> question: str, answer: str"``), the tables as
``{name: (type, dspy.InputField(desc=...))}``. Before DSPy sees a type, its names are checked
against :data:`ALLOWED_TYPES`: DSPy would import a module for an unknown name, and a
configuration file must not import code.
"""

from __future__ import annotations

import ast
import keyword
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import dspy

# Type names a declared field may use (builtins and the typing forms DSPy resolves itself).
ALLOWED_TYPES = frozenset({"str", "int", "float", "bool", "list", "dict", "tuple", "Literal", "Optional",
                           "Union", "Any", "None"})


class SignatureSpecError(ValueError):
    """A signature string, field type or field name that cannot be built (one-line message)."""


def check_type_names(annotation: str) -> None:
    """Reject a type expression that names anything outside :data:`ALLOWED_TYPES`.

    Args:
        annotation: one Python type expression (``"int"``, ``"Literal['a', 'b']"``, ``"list[str]"``).

    Raises:
        SignatureSpecError: not an expression, a dotted name, or a name not allowed.
    """
    try:
        tree = ast.parse(annotation, mode="eval")
    except SyntaxError:
        raise SignatureSpecError(f"{annotation!r} is not a type expression") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            raise SignatureSpecError(f"dotted type {ast.unparse(node)!r} is not allowed; use "
                                     f"{', '.join(sorted(ALLOWED_TYPES))}")
        if isinstance(node, ast.Name) and node.id not in ALLOWED_TYPES:
            raise SignatureSpecError(f"unknown type {node.id!r}; use {', '.join(sorted(ALLOWED_TYPES))}")


def check_field_name(name: str) -> None:
    """Raise :class:`SignatureSpecError` unless ``name`` is a Python identifier not starting with ``_``."""
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise SignatureSpecError(f"field name {name!r} must be an identifier (letters, digits, _) "
                                 "not starting with _")


def _check_declared(text: str) -> None:
    """Check the field names and type names of a signature string before DSPy builds it.

    Raises:
        SignatureSpecError: a side that is not a ``name: type`` list, or a bad name or type.
    """
    for side in text.split("->"):
        try:
            args = ast.parse(f"def f({side}): pass").body[0].args.args  # type: ignore[attr-defined]
        except SyntaxError:
            raise SignatureSpecError(f"{side.strip()!r} is not a list of 'name: type' fields") from None
        for arg in args:
            check_field_name(arg.arg)
            if arg.annotation is not None:
                check_type_names(ast.unparse(arg.annotation))


def from_string(text: str, instructions: str | None = None) -> type[dspy.Signature]:
    """Build a signature from DSPy's string form.

    Args:
        text: ``"input: type, ... -> output: type, ..."``; a field without a type is ``str``.
        instructions: the task instructions (DSPy writes a default from the field names when None).

    Raises:
        SignatureSpecError: no or several ``->``, a side with no fields, a bad name or type, or a
            field on both sides (DSPy's own message where DSPy finds the fault).
    """
    if text.count("->") != 1:
        raise SignatureSpecError(f"{text!r} must contain exactly one '->' between inputs and outputs")
    _check_declared(text)
    if any(not side.strip() for side in text.split("->")):
        raise SignatureSpecError(f"{text!r} needs at least one input and one output field")
    try:
        return dspy.make_signature(text, instructions or None, custom_types={})
    except (ValueError, TypeError, SyntaxError) as exc:
        raise SignatureSpecError(" ".join(str(exc).split())) from None


def parse_type(spec: str | Sequence[Any]) -> Any:
    """The Python type a field table's ``type`` names.

    Args:
        spec: a type expression (``"str"``, ``"int"``, ``"list[str]"``, ``"Literal['a', 'b']"``), or a
            list of choices, which becomes ``Literal[...]`` of them.

    Raises:
        SignatureSpecError: an empty choice list, or a type that is not allowed or not valid.
    """
    if not isinstance(spec, str):
        choices = tuple(spec)
        if not choices:
            raise SignatureSpecError("a list of choices needs at least one value")
        return Literal[choices]  # type: ignore[valid-type]
    check_type_names(spec)
    try:
        return dspy.make_signature(f"value: {spec} -> out", "", custom_types={}).input_fields["value"].annotation
    except (ValueError, TypeError, SyntaxError) as exc:
        raise SignatureSpecError(f"{spec!r}: {' '.join(str(exc).split())}") from None


def from_tables(
    inputs: Mapping[str, tuple[Any, str]], outputs: Mapping[str, tuple[Any, str]], instructions: str | None = None
) -> type[dspy.Signature]:
    """Build a signature from ``{name: (type, description)}`` tables, inputs first, in table order.

    Raises:
        SignatureSpecError: no inputs or no outputs, a bad field name, or a name on both sides.
    """
    if not inputs or not outputs:
        raise SignatureSpecError("needs at least one [task.inputs.NAME] and one [task.outputs.NAME] table")
    both = sorted(set(inputs) & set(outputs))
    if both:
        raise SignatureSpecError(f"field(s) {both} are both inputs and outputs")
    fields: dict[str, tuple[Any, Any]] = {}
    for table, make in ((inputs, dspy.InputField), (outputs, dspy.OutputField)):
        for name, (type_, desc) in table.items():
            check_field_name(name)
            fields[name] = (type_, make(desc=desc) if desc else make())
    try:
        return dspy.make_signature(fields, instructions or None)
    except (ValueError, TypeError) as exc:
        raise SignatureSpecError(" ".join(str(exc).split())) from None
