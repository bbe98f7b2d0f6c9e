"""In-context alignment for base (non-chat) models: chat messages rendered as one completion prompt.

A base model served on a text-completion endpoint (``/v1/completions``: vLLM, llama.cpp, TGI,
OpenAI's instruct models) has no chat template and no instruction tuning. URIAL (Lin et al.
2023, "The Unlocking Spell on Base LLMs: Rethinking Alignment via In-Context Learning", sec. 3)
aligns it in context instead: a fixed preamble describing a helpful assistant, then a few
stylistic query/answer examples, then the query, each part under ``# Query:`` / ``# Answer:``
headers between triple backticks. This module renders the messages a DSPy adapter wrote into
that layout (:meth:`BasePrompt.render`), and turns the model's continuation back into what the
adapter parses (:meth:`BasePrompt.finish`).

Layout of a rendered prompt (``prefix`` is the preamble and examples, verbatim)::

    {prefix}

    # Query:
    ```
    {demo user message}          one block per user/assistant pair before the last query
    ```

    # Answer:
    ```
    {demo assistant message}
    ```

    # Query:
    ```
    {system messages}

    {last user message}
    ```

    # Answer:
    ```
    {primer}

The primer is the first field header the ChatAdapter asked for (``[[ ## question ## ]]``, read
from its closing line "... starting with the field `[[ ## question ## ]]` ..."), so the base
model continues inside the expected format; it is put back in front of the completion before the
adapter parses it. Generation stops at :data:`STOP` (the adapter's end marker, or the start of a
next query), which a base model would otherwise write on its own.

The shipped ``urial`` prefix (``synthdspy/data/urial_prefix.txt``) is written for this project:
a preamble in the spirit of URIAL's and three examples (an explanation, a numbered list, and a
reply in ``[[ ## field ## ]]`` sections, which is our addition so the model sees DSPy's format).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
BUILTIN_PREFIXES = {"urial": DATA / "urial_prefix.txt", "none": None}
QUERY = "# Query:\n```\n"
ANSWER = "\n```\n\n# Answer:\n```\n"
END = "\n```\n\n"
#: Stop sequences of every text-completion request: the ChatAdapter's end marker, or a new query.
STOP = ("[[ ## completed ## ]]", "\n# Query:")
_PRIMER = re.compile(r"starting with the field `(\[\[ ## \w+ ## \]\])`")


def read_prefix_file(path: str | Path) -> str:
    """The text of a prefix file (UTF-8, used verbatim).

    Raises:
        ValueError: one line naming the file: missing, unreadable, not UTF-8 or empty.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"no such file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc}") from None
    if not text.strip():
        raise ValueError(f"{str(path)!r} is empty")
    return text


def load_prefix(name: str | None, path: str | Path | None) -> str:
    """The prefix text: the file at ``path`` if given, else the built-in ``name`` (``urial``, the
    default, or ``none`` for no prefix).

    Raises:
        ValueError: an unknown built-in name, or a file :func:`read_prefix_file` rejects.
    """
    if path is not None:
        return read_prefix_file(path)
    key = name or "urial"
    if key not in BUILTIN_PREFIXES:
        raise ValueError(f"unknown prefix {key!r}; built in: {', '.join(BUILTIN_PREFIXES)}")
    builtin = BUILTIN_PREFIXES[key]
    return "" if builtin is None else read_prefix_file(builtin)


def content_text(content: Any) -> str:
    """Text of a chat message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


@dataclass(frozen=True)
class Rendered:
    """A rendered completion prompt and the primer it ends with (also the prompt's last line)."""

    text: str
    primer: str


@dataclass(frozen=True)
class BasePrompt:
    """Renders chat messages into a URIAL-style completion prompt behind ``prefix`` (see the
    module docstring for the layout and the source)."""

    prefix: str

    def render(self, messages: list[dict]) -> Rendered:
        """The completion prompt for OpenAI-style ``messages`` (system, then user/assistant turns).

        System messages go, in order, at the head of the last query; each earlier user message
        is a query answered by the assistant message after it; a trailing assistant message is
        a prefill and becomes the primer. Raises nothing on odd input (no user message: the
        system text alone is the query).
        """
        system = [content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
        turns = [(m.get("role"), content_text(m.get("content")))
                 for m in messages if m.get("role") in ("user", "assistant")]
        prefill = turns.pop()[1] if turns and turns[-1][0] == "assistant" else None
        last = turns.pop()[1] if turns and turns[-1][0] == "user" else ""
        blocks = [self.prefix.strip()] if self.prefix.strip() else []
        pending: str | None = None
        for role, text in turns:
            if role == "user":
                pending = text if pending is None else f"{pending}\n\n{text}"
            elif pending is not None:
                blocks.append(f"{QUERY}{pending.strip()}{ANSWER}{text.strip()}{END}".rstrip("\n"))
                pending = None
        query = "\n\n".join(part.strip() for part in [*system, last] if part.strip())
        match = _PRIMER.search(last)
        primer = prefill if prefill is not None else (match.group(1) + "\n" if match else "")
        blocks.append(f"{QUERY}{query}{ANSWER}{primer}")
        return Rendered("\n\n".join(blocks), primer)

    @staticmethod
    def finish(completion: str, primer: str, stop: list[str] | tuple[str, ...] = STOP) -> str:
        """What the adapter parses: ``primer`` + the completion, cut at the first ``stop``
        sequence (servers that ignore ``stop`` are trimmed here too), without the answer block's
        closing fence (the last of an odd number of triple backticks, when nothing follows it)."""
        text = completion
        cuts = [text.find(s) for s in stop if s and s in text]
        if cuts:
            text = text[: min(cuts)]
        body = text.rstrip()
        if body.endswith("```") and (primer + body).count("```") % 2 == 1:
            text = body[:-3].rstrip()
        return primer + text
