"""Offline simulated language model: exercises synthdspy pipelines with no LLM reachable.

What it is for: running every stage of a pipeline (signatures, adapters, optimizers, judges,
gates, stores, MLflow tracking, retries) on a machine without an LLM, deterministically and fast.
What it is NOT: a language model, or a source of training data. Its text is composed from the
request's own input fields by seeded templates. Nothing it writes is fit to train on, and every
command that uses it must say so (`SIMULATOR_BANNER`; `lm=sim/...` in provenance and params).

How it plugs into DSPy 3.4
    `SimLM` is a `dspy.LM` (hence a `dspy.BaseLM`) whose custom engine (`SimEngine`, passed as
    `dspy.LM(engine=...)`, the 3.4 replacement of the deprecated `BaseLM.forward` subclassing)
    writes the answers. Because it is a managed `dspy.LM`:
    - DSPy's response cache works: an identical call (same messages, temperature, rollout_id)
      is served from cache and never reaches the engine;
    - DSPy's own retry loop applies: in DSPy 3.4 every engine (native lm15, LiteLLM, custom)
      makes one attempt and `dspy.LM` retries errors classified transient up to `num_retries`
      times. Injected rate limits and server errors are raised as `SimulatedRateLimitError` /
      `SimulatedServerError`, subclasses of `dspy.lm15.RateLimitError` / `ServerError`, so DSPy
      retries them (sleeping `retry_after_s`) and, once retries are spent, raises
      `dspy.utils.exceptions.LMRateLimitError` / `LMServerError` (check with
      `dspy.utils.exceptions.is_retryable_lm_error`);
    - usage is reported per call (prompt/completion tokens, counted as word and punctuation
      tokens of the text); cost is recorded as 0.0 in the LM history.
    The engine contract (`complete(Request)`) does not carry DSPy's `rollout_id`; `SimLM` passes
    it (and the candidate index for `n > 1`) to its engine through a context variable set
    around each call. A bare `dspy.LM(engine=SimEngine(...))` therefore ignores `rollout_id`.
    `SimLM(seed=...)` travels as the request's `seed` option, so DSPy's cache key includes it.

How answers are written (an honest toy; see `compose_answer`)
    The system message that DSPy's ChatAdapter/JSONAdapter write is parsed for the input and
    output fields (names, types, descriptions, JSON schemas, constraints) and the instructions
    after "your objective is:"; prior user/assistant pairs are demos; the last user message
    holds the input values. Every output field gets a value valid for its type and schema, in
    the adapter's format (`[[ ## field ## ]]` sections for Chat, a JSON object for JSON).
    Randomness is seeded by sha256 of (messages, rollout_id, temperature, seed, candidate);
    temperature (None counts as 1.0) sets how often seeded choices leave the plainest option.
    Quality knobs are keyword families in the instructions (`KNOBS`): grounding, step-by-step
    reasoning, keyword use, persona/style and diversity each change what is written in a
    measurable direction; grounded demos raise grounding and demo lengths are mimicked.
    Field roles come from names and descriptions (`_field_kind`): numbered steps go only to
    reasoning fields (reasoning, rationale, explanation, steps, solution, or a description asking
    for steps), or to an answer-like main output when the signature has no reasoning field at
    any depth; short fields (persona, question, option, title, label...) never get them. List
    inputs are used item by item, never pasted as JSON: an output named as the singular of a
    list input (persona <- personas), or described as "copied from <list>", copies one item
    (seeded; the best word match with the topic and items when a fit is asked for). A request
    with a topic or list items and no source text is "composed": passage i of n is about item
    i, built from sentence frames with the keywords shared out, longer and more nuanced for
    later items, repeating two frames unless the diversity knob asks for variety; quiz options
    are distinct items and the answer is the item the passages linked to the question's focus.
    Object properties are written in dependency order (text, lists, copies, reasoning last).
    Judge-like requests (numeric, bool or Literal outputs about a candidate input) are scored
    by `judge_features` (overlap with a source, coverage of the instruction, repetition, JSON
    debris, length, vocabulary, reasoning where asked). Optimizer requests that rewrite an
    instruction (an output field named like `new_instruction` next to an input holding the
    current one) return it with seeded `KNOB_PHRASES` appended, more often those the feedback
    hints at, so instruction search has something real to find.
    Grouping requests (`_Grouping`; the LLM cluster-agent's steps) are recognised by structure,
    never by signature name, and answered by measuring the samples, an input mapping 1-based
    integers to texts. An output that is a list of objects with an integer-list property is a
    clustering: the samples are partitioned (each index exactly once) by average-linkage
    clustering on `similarity` (content words, word 3-gram shingles, line labels such as
    "Input:", shared opening) at `CLUSTER_THRESHOLD`, nudged by seeded noise that grows with
    temperature, so near-duplicate or same-template texts share a cluster and unrelated ones
    stand alone; each cluster states what its members share, metadata values and 1-5 scores
    measured for the criteria named in a numbered-criteria input. A list of objects with a
    boolean property next to an input list of clusters is a verification: a multi-sample cluster
    whose mean pairwise similarity is below `VERIFY_THRESHOLD` (or that names a missing sample)
    is invalid, with the similarity as the reason. Lists of objects with name and definition
    properties are criteria: proposed from the samples (the properties that vary most among
    them: topic, format, purpose, tone, length, repetitiveness...), merged to exactly `k` from a
    name -> definitions input, or condensed to one sentence per named input item, names kept.

Fault injection (`SimOptions`): fixed latency, rate limits, server errors and malformed answers
(a truncated answer the adapter cannot parse). The decision for each attempt is a seeded draw on
(request, attempt number), the attempt number counting calls with the same request, so a retry
of a failed request gets a fresh draw and can succeed, and runs are reproducible. DSPy caches
a malformed answer like any other: retry a parse failure with a new `rollout_id` (as
`dspy.Refine`/`dspy.BestOfN` do) or with `cache=False`.
"""

from __future__ import annotations

import ast
import asyncio
import contextvars
import dataclasses
import hashlib
import json
import math
import random
import re
import statistics
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import dspy
import pydantic
from dspy import lm15

SIMULATOR_BANNER = (
    "*** SIMULATED LM (sim/...): every output below comes from synthdspy's offline simulator, "
    "NOT a language model. It only exercises the pipeline; do not train on or publish its data. ***"
)


def simulator_banner() -> str:
    """Return `SIMULATOR_BANNER`, the line every command using the simulator must print."""
    return SIMULATOR_BANNER


# --------------------------------------------------------------------------------------------
# Options and injected errors
# --------------------------------------------------------------------------------------------


class SimOptions(pydantic.BaseModel):
    """Simulator settings. Rates are probabilities per attempt; their sum must not exceed 1.

    seed: base seed mixed into every draw. latency_s: fixed seconds slept per attempt.
    error_rate: share of attempts failing with a simulated HTTP 500. rate_limit_rate: share
    failing with a simulated HTTP 429. malformed_rate: share answered with a truncated answer
    the adapter cannot parse. retry_after_s: retry hint (seconds) carried by injected errors.
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    latency_s: float = pydantic.Field(0.0, ge=0.0)
    error_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    rate_limit_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    malformed_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    retry_after_s: float = pydantic.Field(0.0, ge=0.0)

    @pydantic.model_validator(mode="after")
    def _rates_sum(self) -> SimOptions:
        total = self.error_rate + self.rate_limit_rate + self.malformed_rate
        if total > 1.0:
            raise ValueError(f"error_rate + rate_limit_rate + malformed_rate = {total:g} exceeds 1")
        return self


class SimulatedTransientError(Exception):
    """Base of the simulator's injected transient failures; safe to retry."""


class SimulatedRateLimitError(SimulatedTransientError, lm15.RateLimitError):
    """Injected rate limit (HTTP 429); DSPy maps it to the retryable `LMRateLimitError`."""


class SimulatedServerError(SimulatedTransientError, lm15.ServerError):
    """Injected server error (HTTP 500); DSPy maps it to the retryable `LMServerError`."""


# --------------------------------------------------------------------------------------------
# Parsing DSPy adapter prompts
# --------------------------------------------------------------------------------------------

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
            raw = re.split(r"\n\nRespond with ", raw)[0].strip()
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


# --------------------------------------------------------------------------------------------
# Measurable text properties (shared by the writer and the judge)
# --------------------------------------------------------------------------------------------

_STOPWORD_TEXT = (
    "a an the and or but if of to in on at by for with from as is are was were be been being it its "
    "this that these those there their they them he she his her we you your our i me my not no so "
    "than then too very can could would should will may might do does did has have had into about "
    "over also which who what when where why how all any each some such more most other only own "
    "same just tell write give describe please make"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_REASONING_MARKERS = re.compile(
    r"\b(because|therefore|thus|hence|since|so that|as a result|step \d+)\b|^\s*\d+[.)]\s",
    re.IGNORECASE | re.MULTILINE,
)
_DEBRIS = re.compile(r"\[\s*\"|\"\s*,\s*\"|\{\s*\"|\"\s*\]|\[\s*\]|\{\s*\}")
_LINE_PREFIX = re.compile(r"^\s*(?:step \d+:|\d+[.)]|[a-h][.)]|[-*])\s*", re.IGNORECASE)
SENSIBLE_WORDS = (20, 900)


def content_words(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens of `text` that are not stopwords (the unit of overlap)."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS]


def count_tokens(text: str) -> int:
    """Simulated token count: words plus punctuation marks (no tokenizer is involved)."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def split_sentences(text: str) -> list[str]:
    """Sentences of `text` (split at . ! ? and line breaks) having at least three words."""
    pieces = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in pieces if len(p.split()) >= 3]


def overlap(candidate: str, source: str) -> float:
    """Share of the candidate's content words that occur in the source, in [0, 1]; 0 if empty."""
    words = content_words(candidate)
    if not words:
        return 0.0
    vocab = set(content_words(source))
    return sum(w in vocab for w in words) / len(words)


def coverage(candidate: str, request: str) -> float:
    """Share of the distinct content words of `request` found in `candidate`, in [0, 1]; 1 if the
    request has none (nothing to cover)."""
    wanted = set(content_words(request))
    if not wanted:
        return 1.0
    return len(wanted & set(content_words(candidate))) / len(wanted)


def repetition(text: str, n: int = 4) -> float:
    """How repetitive `text` is, in [0, 1]: the larger of the duplicate-sentence share
    (1 - distinct / all sentences, after dropping "Step N:"/numbering prefixes, case-folded) and
    the repeated word n-gram share (1 - distinct / all word n-grams, n = 4 by default)."""
    sentences = [_LINE_PREFIX.sub("", s).lower() for s in split_sentences(text)]
    dup = 1.0 - len(set(sentences)) / len(sentences) if sentences else 0.0
    words = re.findall(r"[a-z0-9']+", text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    rep = 1.0 - len(set(grams)) / len(grams) if grams else 0.0
    return max(dup, rep)


def debris(text: str) -> float:
    """Share of the non-empty lines of `text` holding JSON list/object debris (`["`, `", "`,
    `{"`, `"]`, `[]`, `{}`) that a writer pasted instead of prose, in [0, 1]."""
    lines = [line for line in text.splitlines() if line.strip()]
    return sum(bool(_DEBRIS.search(line)) for line in lines) / len(lines) if lines else 0.0


def richness(text: str, full: float = 0.8) -> float:
    """Vocabulary richness in [0, 1]: the type-token ratio of the content words (distinct / all),
    divided by `full` (a ratio of 0.8 or more counts as fully rich) and capped at 1; 0 if empty."""
    words = content_words(text)
    return min(1.0, len(set(words)) / len(words) / full) if words else 0.0


def length_score(words: int, low: int = SENSIBLE_WORDS[0], high: int = SENSIBLE_WORDS[1]) -> float:
    """1.0 for a word count inside [low, high]; words / low below it; high / words above it."""
    if words < low:
        return words / low
    return 1.0 if words <= high else high / words


def asks_for_reasoning(request: str) -> bool:
    """True when an instruction or rubric asks for reasoning (the `KNOBS["reasoning"]` family)."""
    return detect_knobs(request)["reasoning"]


def judge_features(candidate: str, source: str | None, request: str = "", rubric: str = "") -> dict[str, float]:
    """Measured properties of a candidate record, and the quality score built from them.

    Inputs: the candidate text; the source it should be grounded in (None or "" for none); the
    request it answers (instruction/question inputs, for coverage); the rubric (with the request,
    decides whether reasoning is asked for).

    Features, each in [0, 1] (`words` is a count):
      overlap    `overlap(candidate, source)`, support of its words in the source (0 without one);
      coverage   `coverage(candidate, request)`, share of the request's content words it takes up;
      reasoning  1.0 if reasoning markers occur (because/therefore/thus/step N/numbered lines);
      asked      1.0 if the request or rubric asks for reasoning (`asks_for_reasoning`);
      length     `length_score(words)`, 1 inside `SENSIBLE_WORDS` = (20, 900) words;
      richness   `richness(candidate)`, content-word type-token ratio / 0.8, capped at 1;
      repetition `repetition(candidate)`, duplicate sentences or repeated word 4-grams;
      debris     `debris(candidate)`, share of lines holding pasted JSON list/object syntax.

    Quality, in [0, 1]:
      content = mean(length, coverage, richness[, reasoning if asked])             (no source)
      content = 0.6 overlap + 0.15 length + 0.25 (reasoning if asked else coverage) (with source)
      quality = content * (1 - repetition) * (1 - debris)
    The weights are this simulator's own convention (no paper): support in the source dominates,
    as in faithfulness judges; repetition, pasted structure and a thin vocabulary are what rubric
    judges punish in synthetic text, so they scale or lower the score; reasoning counts only
    where the request or rubric asks for it.
    """
    words = len(candidate.split())
    asked = asks_for_reasoning(request + "\n" + rubric)
    feats = {
        "overlap": overlap(candidate, source) if source else 0.0,
        "coverage": coverage(candidate, request),
        "reasoning": 1.0 if _REASONING_MARKERS.search(candidate) else 0.0,
        "asked": 1.0 if asked else 0.0,
        "length": length_score(words),
        "richness": richness(candidate),
        "repetition": repetition(candidate),
        "debris": debris(candidate),
        "words": float(words),
    }
    if source:
        third = feats["reasoning"] if asked else feats["coverage"]
        content = 0.6 * feats["overlap"] + 0.15 * feats["length"] + 0.25 * third
    else:
        parts = [feats["length"], feats["coverage"], feats["richness"]] + ([feats["reasoning"]] if asked else [])
        content = sum(parts) / len(parts)
    feats["quality"] = content * (1.0 - feats["repetition"]) * (1.0 - feats["debris"])
    return feats

# --------------------------------------------------------------------------------------------
# Instruction knobs and field roles
# --------------------------------------------------------------------------------------------

KNOBS: dict[str, tuple[str, ...]] = {
    "grounding": ("source", "the passage", "grounded", "faithful", "cite", "only from", "evidence"),
    "reasoning": ("step by step", "step-by-step", "reason", "explain"),
    "keywords": ("keyword",),
    "persona": ("persona", "style", "voice", "audience", "tone"),
    "diversity": ("diverse", "vary", "varied", "distinct", "unusual", "different angle"),
}

_SOURCE_WORDS = {
    "source",
    "passage",
    "context",
    "document",
    "reference",
    "article",
    "chunk",
    "doc",
    "evidence",
}
_CANDIDATE_WORDS = {
    "output",
    "answer",
    "response",
    "candidate",
    "completion",
    "generation",
    "prediction",
    "record",
    "chosen",
    "rejected",
    "text",
    "summary",
    "claim",
    "sample",
}
_KEYWORD_WORDS = {"keyword", "keywords", "terms", "entities", "concepts"}
_VOICE_WORDS = {"persona", "voice", "role", "author", "speaker"}
_STYLE_WORDS = {"style", "tone", "register"}
_AUDIENCE_WORDS = {"audience", "reader", "readers", "personas", "audiences"}
_SUIT_WORDS = re.compile(r"\b(suit|suits|suited|fit|fits|fitting|best|most appropriate|match)", re.IGNORECASE)
_TOPIC_WORDS = {"topic", "subject", "theme", "domain", "category"}
_COUNT_NAMES = {"n", "num", "count", "k", "number", "num_items", "n_items", "num_questions", "n_questions"}
_REASON_KINDS = {
    "reasoning",
    "rationale",
    "explanation",
    "thought",
    "thinking",
    "analysis",
    "critique",
    "feedback",
    "justification",
    "reason",
    "reasons",
    "steps",
    "solution",
    "solutions",
    "derivation",
    "proof",
}
_OPTION_KINDS = {"option", "options", "choice", "choices", "alternative", "alternatives", "distractor"}
_QUESTION_KINDS = {
    "question",
    "questions",
    "query",
    "queries",
    "instruction",
    "instructions",
    "prompt",
    "problem",
}
_TITLE_KINDS = {
    "title",
    "topic",
    "topics",
    "name",
    "heading",
    "subject",
    "label",
    "category",
    "tag",
    "tags",
    "keyword",
    "keywords",
    "entity",
    "entities",
    "term",
    "terms",
    "concept",
    "concepts",
    "persona",
    "style",
    "reader",
    "audience",
    "voice",
    "tone",
    "role",
}
_RUBRIC_WORDS = {"rubric", "criteria", "criterion", "guidelines", "requirements"}
_STEPS_DESC = re.compile(r"step[- ]by[- ]step|\bsteps\b|\breasoning\b", re.IGNORECASE)


def _name_words(name: str) -> set[str]:
    return set(name.lower().split("_"))


def detect_knobs(instructions: str) -> dict[str, bool]:
    """Which `KNOBS` families the instructions mention (case-insensitive).

    Back-quoted field names (DSPy's default "Given the fields `source`..." text) are removed
    first, so a field called `source` does not by itself switch grounding on.
    """
    text = re.sub(r"`[^`]*`", " ", instructions).lower()
    return {knob: any(word in text for word in words) for knob, words in KNOBS.items()}


def _field_kind(name: str, desc: str = "") -> str:
    """Role of an output field: "reasoning", "option", "question", "title" (short labels, names,
    concepts, personas) or "passage" (free text). Names decide first; a description asking for
    steps makes an otherwise free-text field a reasoning field. Short roles never get steps."""
    words = _name_words(name)
    if words & _REASON_KINDS:
        return "reasoning"
    if words & _OPTION_KINDS:
        return "option"
    if words & _QUESTION_KINDS:
        return "question"
    if words & _TITLE_KINDS:
        return "title"
    if _STEPS_DESC.search(desc):
        return "reasoning"
    return "passage"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _as_list(value: Any) -> list[str]:
    """Items of a list input as strings (dict items by their values); a string splits at , ; and
    line breaks."""
    if isinstance(value, list):
        items = [" ".join(map(_as_text, v.values())) if isinstance(v, dict) else _as_text(v) for v in value]
        return [item.strip() for item in items if item.strip()]
    text = _as_text(value)
    return [p.strip() for p in re.split(r"[,;\n]", text) if p.strip()]


def _mid(item: str) -> str:
    """`item` as written mid-sentence: a leading capital is lowered only for plain common-noun
    phrases ("Building foundations" -> "building foundations"; "Newton's laws", "Roman Empire" and
    "PhD" stay)."""
    words = item.split()
    if not words or "'" in words[0] or not words[0].isalpha() or words[0][1:] != words[0][1:].lower():
        return item
    if any(w[:1].isupper() for w in words[1:]):
        return item
    return item[:1].lower() + item[1:]


def _phrase(item: str) -> str:
    """A persona sentence ("A nurse in Manila.") as a noun phrase ("a nurse in Manila")."""
    text = item.strip().rstrip(".!")
    first = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if first in ("A", "An", "The") else text


def _lower_first(sentence: str) -> str:
    """`sentence` with its first letter lowered, unless it starts a name ("Newton's", "PhD",
    "I", or a capitalised word other than a stopword followed by another: "Roman Empire")."""
    words = sentence.split()
    if not words:
        return sentence
    first = words[0]
    if first.lower() in _STOPWORDS and first != "I":
        return sentence[:1].lower() + sentence[1:]
    keep = (
        not first.isalpha()
        or first == "I"
        or first[1:] != first[1:].lower()
        or (len(words) > 1 and words[1][:1].isupper())
    )
    return sentence if keep else sentence[:1].lower() + sentence[1:]


def _stems(text: str) -> set[str]:
    """Content words of `text` with a plural "s" dropped (bridges -> bridge), for word matching."""
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in content_words(text)}


def _cap(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") else name


# --------------------------------------------------------------------------------------------
# Answer composition
# --------------------------------------------------------------------------------------------

_FILLER = (
    "This is an important point about {topic}.",
    "There are several aspects of {topic} to consider.",
    "Overall, {topic} is a relevant and interesting subject.",
    "Many people have opinions about {topic}.",
    "It is worth thinking about {topic} in more detail.",
    "{topic} matters in many situations.",
    "A good understanding of {topic} helps in practice.",
    "Some details about {topic} are often overlooked.",
    "People approach {topic} in different ways.",
    "The basics of {topic} are easy to state but harder to apply.",
    "Questions about {topic} come up again and again.",
    "Examples make {topic} easier to follow.",
)
_PLAIN_OPENINGS = ("", "In summary, ")
_DIVERSE_OPENINGS = (
    "",
    "Notably, ",
    "From another angle, ",
    "Put simply, ",
    "Interestingly, ",
    "In practical terms, ",
    "A closer look shows that ",
    "Consider this: ",
    "One detail stands out: ",
    "Seen broadly, ",
    "Against expectations, ",
    "On reflection, ",
    "At its core, ",
    "For a newcomer, ",
    "In contrast, ",
    "To be precise, ",
    "Importantly, ",
    "As a concrete case, ",
    "Historically, ",
    "Taken together, ",
)
KNOB_PHRASES: dict[str, tuple[str, ...]] = {
    "grounding": ("Ground every statement in the source passage.", "Use only facts found in the passage."),
    "reasoning": ("Think step by step before answering.", "Explain the reasoning step by step."),
    "keywords": ("Use each of the given keywords.", "Work every listed keyword into the text."),
    "persona": ("Write in the voice and style of the given persona.", "Match the persona's tone."),
    "diversity": ("Vary the angle, opening and structure.", "Take an unusual, distinct angle each time."),
}
_KNOB_HINTS: dict[str, tuple[str, ...]] = {
    "grounding": ("overlap", "unsupported", "hallucinat", "factual"),
    "reasoning": ("steps", "reasoning", "logic"),
    "keywords": ("keywords", "terms"),
    "persona": ("persona", "you are a"),
    "diversity": ("repetit", "duplicate", "similar", "creative"),
}
_PLAIN_QUESTIONS = ("What does the text say about {x}?", "What is {x}?")
_DIVERSE_QUESTIONS = (
    "What does the text say about {x}?",
    "Why does {x} matter here?",
    "How is {x} described?",
    "In what way does {x} relate to the rest of the text?",
    "Which role does {x} play?",
    "What would change without {x}?",
    "How would you explain {x} to a newcomer?",
    "What evidence is given about {x}?",
    "When does {x} become important?",
    "What is surprising about {x}?",
)


# Composed sentences about a topic, for requests with no source text (a topic, its subtopics and
# keywords). {a}/{A}: the passage's focus item (mid-sentence / sentence start); {a2}: another
# item; {k}/{K}, {k2}: keywords (other items when keywords are not asked for); {t}: the topic.
# With the diversity knob off only the first two of each pool are used, so texts repeat.
_BASIC = (
    "{A} is a central part of {t}.",
    "Most questions about {a} come back to {k}.",
    "{A} is easiest to grasp through {k}.",
    "In {t}, {a} is usually the first thing to understand, because it sets the terms for {k}.",
    "A simple example shows how {k} works within {a}.",
    "{K} describes one concrete way in which {a} is carried out.",
    "Students of {t} meet {a} early and return to it often.",
    "The idea of {k} gives {a} a precise meaning.",
    "Anyone who works with {a} soon learns to watch {k} closely.",
    "One way to picture {a} is to follow {k} from start to finish.",
    "Take {k} away and {a} becomes hard to explain at all.",
    "Early accounts of {a} already mentioned {k}, though only in passing.",
)
_NUANCE = (
    "However, {k} behaves differently once {a} grows in scale, so the simple picture needs refinement.",
    "The trade-off between {k} and {k2} shapes many decisions about {a}.",
    "An exception arises where {a} meets {a2}: {k} no longer tells the whole story.",
    "Specialists still debate how much weight {k} deserves next to {a2}.",
    "Because {a} depends on {k}, a change in one soon shows up in the other.",
    "Seen together, {a} and {a2} show why {t} cannot be reduced to a single rule.",
    "A common mistake is to treat {k} as fixed, when in practice it varies with {a}.",
    "Therefore, judging {a} well means checking how {k} and {k2} interact.",
    "Under unusual conditions, {a} can even reverse what {k} normally suggests.",
    "The limits of {k} become clear only when {a2} enters the picture.",
)
_KEYWORD_FRAMES = tuple(t for t in _BASIC if "{k}" in t or "{K}" in t)
_AUDIENCE = (
    "This {style}lesson on {t} is written for {r}.",
    "Imagine you are {r}: {t} touches your world more than it first seems.",
    "For {r}, the best way into {t} is through {a}.",
    "If you are {r}, start with one question: what holds {a} together?",
)
_QUIZ_QUESTIONS = (
    "Which idea does the lesson link most closely to {a}?",
    "In {t}, which term belongs with {a}?",
    "According to the lesson, what helps explain {a}?",
    "Which concept would you check first when studying {a}?",
)
_MAIN_WORDS = {"answer", "response", "output", "completion", "text", "result"}
_COPY_DESC = re.compile(r"\b(?:copied|copy|chosen|taken|picked|one of)\b[^.;]*?\bfrom\s+(?:the\s+)?`?(\w+)")
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}


def _schema_fields(schema: dict, defs: dict, depth: int = 0) -> list[tuple[str, str]]:
    """(name, description) of every property nested in `schema` (arrays, objects, $refs)."""
    schema = _resolve(schema, defs)
    if depth > 6:
        return []
    found: list[tuple[str, str]] = []
    if schema.get("type") == "array":
        found += _schema_fields(schema.get("items", {}), defs, depth + 1)
    for key, sub in schema.get("properties", {}).items():
        found.append((key, sub.get("description", "")))
        found += _schema_fields(sub, defs, depth + 1)
    return found


@dataclass
class _Writer:
    """Composes field values for one request from its inputs, knobs and a seeded RNG.

    Inputs are sorted by name: source texts (`_SOURCE_WORDS`), keyword lists, the voice to write
    as (a str persona), the style, audience candidates (a list of personas/readers), the topic,
    other list inputs (`aspects`, e.g. subtopics) and other texts. A request with a topic or
    list items but no source text is "composed": passages are sentences built from `_BASIC` and
    `_NUANCE` templates about its items; otherwise sentences are drawn from the source.
    """

    prompt: ParsedPrompt
    rng: random.Random
    temperature: float
    knobs: dict[str, bool]
    source: str = ""
    sentences: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    persona: str = ""
    style: str = ""
    audience: str = ""
    topic: str = "the subject"
    aspects: list[str] = field(default_factory=list)
    lists: dict[str, list[str]] = field(default_factory=dict)
    composed: bool = False
    demo_grounding: float = 0.0
    candidates: dict[str, str] = field(default_factory=dict)
    reasoning_field: bool = False
    position: tuple[int, int] = (0, 1)
    siblings: dict[str, Any] = field(default_factory=dict)
    picks: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    introduced: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    target: tuple[str, str] | None = None
    shift: int | None = None

    @classmethod
    def build(cls, prompt: ParsedPrompt, rng: random.Random, temperature: float) -> _Writer:
        """Sort the request's inputs into the writer's roles (see the class docstring)."""
        writer = cls(prompt, rng, temperature, detect_knobs(prompt.instructions))
        sources, others = [], []
        for name, value in prompt.values.items():
            words = _name_words(name)
            if isinstance(value, list):
                writer.lists[name] = _as_list(value)
            if words & _KEYWORD_WORDS:
                writer.keywords = _as_list(value)
            elif words & _AUDIENCE_WORDS:
                if not isinstance(value, list):
                    writer.audience = _phrase(_as_text(value))
            elif words & _VOICE_WORDS and not isinstance(value, list):
                writer.persona = (writer.persona + " " + _as_text(value)).strip()
            elif words & _STYLE_WORDS and not isinstance(value, list):
                writer.style = _as_text(value).split(":", 1)[0].strip()
            elif isinstance(value, list):
                writer.aspects += [item for item in _as_list(value) if item not in writer.aspects]
            elif words & _SOURCE_WORDS:
                sources.append(_as_text(value))
            elif words & _CANDIDATE_WORDS:
                writer.candidates[name] = _as_text(value)
                others.append(_as_text(value))
            else:
                if words & _TOPIC_WORDS:
                    writer.topic = _as_text(value).strip() or writer.topic
                others.append(_as_text(value))
        writer.source = "\n".join(sources) if sources else "\n".join(others)
        writer.sentences = split_sentences(writer.source) or [s for s in [writer.source.strip()] if s]
        writer.composed = not sources and (writer.topic != "the subject" or bool(writer.aspects))
        if writer.topic == "the subject":
            frequent = _frequent_words(writer.source, 1)
            writer.topic = (frequent or writer.aspects or writer.keywords or ["the subject"])[0]
        writer.demo_grounding = _demo_grounding(prompt)
        fields = [(o.name, o.desc) for o in prompt.outputs]
        for o in prompt.outputs:
            fields += _schema_fields(o.schema, o.schema.get("$defs", {}))
        writer.reasoning_field = any(_field_kind(n, d) == "reasoning" for n, d in fields)
        return writer

    # ---- randomness -----------------------------------------------------------------------
    def choose(self, options: list | tuple) -> Any:
        """Pick an option: the first with probability 1 - min(1, temperature), else uniform."""
        if not options:
            return ""
        if self.rng.random() < min(1.0, self.temperature):
            return options[self.rng.randrange(len(options))]
        return options[0]

    # ---- text pieces ----------------------------------------------------------------------
    @property
    def grounding_p(self) -> float:
        """Probability that a sentence slot is filled from the source (the grounding knob); for a
        composed request, that it is a composed sentence rather than generic filler (raised by
        the grounding and keyword knobs)."""
        bonus = 0.1 if self.demo_grounding >= 0.5 else 0.0
        if self.composed:
            return min(0.95, 0.7 + (0.25 if self.knobs["grounding"] or self.knobs["keywords"] else 0.0) + bonus)
        return min(0.95, 0.35 + (0.5 if self.knobs["grounding"] else 0.0) + bonus)

    def _source_sentence(self, used: set[str]) -> str | None:
        pool = self.sentences if self.knobs["diversity"] else self.sentences[:2]
        fresh = [s for s in pool if s not in used] or pool
        if not fresh:
            return None
        return fresh[self.rng.randrange(len(fresh))] if self.temperature > 0 else fresh[0]

    def _filler(self) -> str:
        pool = _FILLER if self.knobs["diversity"] else _FILLER[:3]
        return self.choose(pool).format(topic=self.topic)

    def _opening(self, sentence: str) -> str:
        opening = self.choose(_DIVERSE_OPENINGS if self.knobs["diversity"] else _PLAIN_OPENINGS)
        if not opening:
            return sentence
        return opening + _lower_first(sentence)

    def sentences_for(self, count: int) -> list[str]:
        """`count` sentences, each from the source with probability `grounding_p`, else filler
        (composed sentences about the first item for a composed request)."""
        if self.composed:
            return self._composed(self.aspects[0] if self.aspects else self.topic, 0, count, [])
        out: list[str] = []
        used: set[str] = set()
        for _ in range(count):
            sentence = self._source_sentence(used) if self.rng.random() < self.grounding_p else None
            if sentence:
                used.add(sentence)
            out.append(sentence or self._filler())
        if out:
            out[0] = self._opening(out[0])
        return out

    def _add_keywords(self, sentences: list[str]) -> list[str]:
        wanted = (
            self.keywords if self.knobs["keywords"] else self.keywords[:1] if self.rng.random() < 0.3 else []
        )
        for kw in wanted:
            if kw.lower() in " ".join(sentences).lower():
                continue
            with_kw = [s for s in self.sentences if kw.lower() in s.lower()]
            sentences.append(self.choose(with_kw) if with_kw else f"This also involves {kw}.")
        return sentences

    def _add_persona(self, sentences: list[str]) -> list[str]:
        if not (self.knobs["persona"] and self.persona and sentences):
            return sentences
        first = sentences[0]
        sentences[0] = f"Speaking as {self.persona}: {_lower_first(first)}"
        return sentences

    def _steps(self, sentences: list[str]) -> str:
        lines = [f"Step {i}: {s}" for i, s in enumerate(sentences, 1)]
        lines.append("Therefore, the answer follows from these steps.")
        return "\n".join(lines)

    def _length_for(self, name: str, default: int) -> int:
        lengths = [
            len(split_sentences(_as_text(out[name])) or [1]) for _, out in self.prompt.demos if out.get(name)
        ]
        if lengths:
            return max(1, min(8, round(statistics.median(lengths))))
        return default + (self.rng.randrange(2) if self.temperature > 0 else 0)

    # ---- composed text (no source) ------------------------------------------------------------
    def _template(self, pool: tuple[str, ...], slot: int) -> str:
        """A template: with diversity, a seeded one not used yet in this request; else one of
        the pool's first two, by slot (so plain texts repeat the same frames)."""
        if not self.knobs["diversity"]:
            return pool[slot % 2]
        fresh = [t for t in pool if t not in self.used] or list(pool)
        template = fresh[self.rng.randrange(len(fresh))]
        self.used.add(template)
        return template

    def _fill(self, template: str, focus: str, kws: list[str], slot: int) -> tuple[str, str | None]:
        """(sentence, keyword it names or None) for `template` about `focus`, cycling through `kws`."""
        others = [a for a in self.aspects if a != focus] or [self.topic]
        k = kws[slot % len(kws)] if kws else others[slot % len(others)]
        k2 = kws[(slot + 1) % len(kws)] if len(kws) > 1 else others[(slot + 1) % len(others)]
        topic = "the wider subject" if focus == self.topic else _mid(self.topic)
        values = {"a": _mid(focus), "A": _cap(focus), "a2": _mid(others[slot % len(others)]), "k": _mid(k),
                  "K": _cap(k), "k2": _mid(k2), "t": topic}
        named = k if k in kws and ("{k}" in template or "{K}" in template) else None
        return _cap(template.format(**values)), named

    def _composed(self, focus: str, index: int, count: int, kws: list[str]) -> list[str]:
        """`count` sentences about `focus`: basic frames first, then `index` nuance frames (later
        passages are more nuanced); each slot is generic filler with probability 1 - grounding_p."""
        out: list[str] = []
        nuance = min(index, count - 1)
        for slot in range(count):
            if self.rng.random() >= self.grounding_p:
                out.append(self._filler())
                continue
            pool = _NUANCE if slot >= count - nuance else _BASIC
            sentence, k = self._fill(self._template(pool, slot), focus, kws, slot)
            if k:
                self.links.append((focus, k))
            out.append(sentence)
        missing = [k for k in kws if k.lower() not in " ".join(out).lower()]
        for k in missing:
            sentence, _ = self._fill(self._template(_KEYWORD_FRAMES, len(out)), focus, [k], 0)
            self.links.append((focus, k))
            out.append(sentence)
        if out:
            out[0] = self._opening(out[0])
        return out

    def passage(self, name: str, short: bool) -> str:
        """Passage `i` of `n` (from `position`) about item `i`, longer and more nuanced for later
        items; keywords are shared out across passages when the keyword knob is on; with the
        persona knob the first passage addresses the chosen reader (and voice, if any)."""
        index, total = self.position
        items = self.aspects or self.keywords or [self.topic]
        shift = self.rng.randrange(len(items)) if self.knobs["diversity"] and index == 0 else 0
        self.shift = shift if self.shift is None else self.shift
        focus = items[(index + self.shift) % len(items)]
        if self.knobs["keywords"]:
            kws = self.keywords[index::total] or self.keywords[index % max(1, len(self.keywords)) :][:1]
        else:
            kws = self.keywords[:1] if index == 0 and self.rng.random() < 0.3 else []
        reader = self.reader() if index == 0 and self.knobs["persona"] else ""
        count = 1 if short else max(1, self._length_for(name, 2) + index - bool(reader))
        sentences = self._composed(focus, index, count, kws)
        if reader:
            frames = _AUDIENCE if self.knobs["diversity"] else _AUDIENCE[:1]
            frame = frames[self.rng.randrange(len(frames))]
            style = f"{self.style} " if self.style else ""
            sentences.insert(0, _cap(frame.format(style=style, t=_mid(self.topic), r=reader, a=_mid(focus))))
        self.introduced = [focus] + [k for k in kws if k != focus]
        return " ".join(self._add_persona(sentences))

    def reader(self) -> str:
        """The audience: a str audience input, else the item picked from a list of readers."""
        if self.audience:
            return self.audience
        name = next((n for n in self.lists if _name_words(n) & _AUDIENCE_WORDS), None)
        return _phrase(self.pick(name, self.lists[name], "")) if name else ""

    # ---- copied values -------------------------------------------------------------------------
    def copy_source(self, name: str, desc: str) -> tuple[str, list[str]] | None:
        """(list name, items) an output must copy one item of: a sibling or input list named in the
        description ("copied exactly from options"), or the list input whose name is this field's
        plural (persona <- personas). None when neither applies."""
        match = _COPY_DESC.search(desc)
        if match:
            key = match.group(1)
            for pool in (self.siblings, self.prompt.values):
                for candidate in (key, key + "s"):
                    if isinstance(pool.get(candidate), list) and pool[candidate]:
                        return candidate, _as_list(pool[candidate])
        for key, items in self.lists.items():
            if items and _singular(key) == name and key != name:
                return key, items
        return None

    def pick(self, key: str, items: list[str], desc: str) -> str:
        """One item of list `key`, the same for the whole request. The quiz target when it is one
        of the items; when the instructions or descriptions ask for a suiting/fitting choice, the
        item sharing most content words (`_stems`) with the topic, items, keywords and style (ties
        broken by the seeded RNG); else a seeded choice."""
        if key in self.picks and self.picks[key] in items:
            return self.picks[key]
        if self.target and self.target[1] in items:
            choice = self.target[1]
        else:
            spec = next((f.desc for f in self.prompt.inputs if f.name == key), "")
            if _SUIT_WORDS.search(" ".join((self.prompt.instructions, desc, spec))):
                context = _stems(" ".join([self.topic, self.style, *self.aspects, *self.keywords]))
                scores = [len(context & _stems(item)) for item in items]
                best = [item for item, s in zip(items, scores, strict=True) if s == max(scores)]
                choice = best[self.rng.randrange(len(best))]
            else:
                choice = items[self.rng.randrange(len(items))]
        self.picks[key] = choice
        return choice

    def options(self, count: int) -> list[str]:
        """`count` distinct short options: the quiz target first, then keywords, items and frequent
        source words (never the question's own focus), shuffled by the seeded RNG."""
        target = [self.target[1]] if self.target else []
        enough = self.composed and len(self.keywords) + len(self.aspects) >= count
        extra = [] if enough else [*_frequent_words(self.source, 8), self.topic]
        pool = target + self.keywords + self.aspects + extra
        seen: list[str] = []
        focus = _mid(self.target[0]).lower() if self.target else None
        for item in map(_mid, pool):
            if item.lower() not in {s.lower() for s in seen} and item.lower() != focus:
                seen.append(item)
        head, rest = seen[: len(target)], seen[len(target) :]
        self.rng.shuffle(rest)
        chosen = (head + rest)[:count]
        self.rng.shuffle(chosen)
        return chosen + [f"none of {_mid(self.topic)} ({i})" for i in range(count - len(chosen))]

    # ---- values by kind ---------------------------------------------------------------------
    def text(self, name: str, desc: str) -> str:
        """A string value for field `name`: an optimizer's rewritten instruction, a copied list
        item, an option, a question, a title, a math solution, reasoning or a passage."""
        kind = _field_kind(name, desc)
        short = bool(re.search(r"\b(short|brief|one sentence|single sentence)\b", desc.lower()))
        if "instruction" in name.lower() and self._base_instruction() is not None:
            return self.rewrite_instruction(name)
        copied = self.copy_source(name, desc)
        if copied:
            return self.pick(copied[0], copied[1], desc)
        if kind == "option":
            return self.options(1)[0]
        if kind == "question":
            return self.question()
        if kind == "title":
            return self.title()
        if "####" in desc:
            result, steps = self.math()
            body = self._steps(steps) if self.knobs["reasoning"] else f"The answer is {result}."
            return f"{body}\n#### {result}"
        if kind == "reasoning":
            return self.reasoning()
        if self.composed:
            return self.passage(name, short)
        sentences = self.sentences_for(1 if short else self._length_for(name, 2))
        sentences = self._add_persona(self._add_keywords(sentences))
        if self.knobs["reasoning"] and not self.reasoning_field and _name_words(name) & _MAIN_WORDS:
            return self._steps(sentences)
        return " ".join(sentences)

    def _base_instruction(self) -> str | None:
        return next((_as_text(v) for k, v in self.prompt.values.items() if "instruction" in k.lower()), None)

    def rewrite_instruction(self, name: str) -> str:
        """An optimizer's proposed instruction: the given one plus seeded `KNOB_PHRASES`.

        Each knob the base instruction lacks is added with probability 0.35, or 0.7 when the
        other inputs (feedback, tips, demos) hint at it (`_KNOB_HINTS`; for diversity, also an
        input of 200+ words, such as example outputs, whose `repetition` is 0.3 or more), so
        proposals differ in which quality knobs they switch on and an optimizer can select the
        useful ones. Fields
        named like `shortened_instruction` get the base cut to its first sentences instead.
        """
        base = (self._base_instruction() or "").strip() or "Complete the task."
        if re.search(r"short|compress|concise", name.lower()):
            return " ".join(split_sentences(base)[:2]) or base
        texts = [_as_text(v) for k, v in self.prompt.values.items() if "instruction" not in k.lower()]
        context = " ".join(texts).lower()
        repetitive = any(len(t.split()) >= 200 and repetition(t) >= 0.3 for t in texts)
        present = detect_knobs(base)
        added = []
        for knob, phrases in KNOB_PHRASES.items():
            if present[knob]:
                continue
            hinted = any(word in context for word in KNOBS[knob] + _KNOB_HINTS[knob])
            hinted = hinted or (knob == "diversity" and repetitive)
            if self.rng.random() < (0.7 if hinted else 0.35):
                added.append(self.choose(phrases))
        return " ".join([base, *added])

    def question(self) -> str:
        """A question: for a composed request, about an item the passages linked to a keyword
        (which becomes the quiz target); else about a frequent source word or keyword."""
        if self.composed:
            links = self.links or [(a, k) for a in self.aspects[:1] for k in (self.keywords or self.aspects)[1:2]]
            focus, target = links[self.rng.randrange(len(links))] if links else (self.topic, self.topic)
            self.target = (focus, _mid(target))
            template = self.choose(_QUIZ_QUESTIONS) if self.knobs["diversity"] else _QUIZ_QUESTIONS[0]
            return _cap(template.format(a=_mid(focus), t=_mid(self.topic)))
        grounded = self.rng.random() < self.grounding_p
        pool_words = _frequent_words(" ".join(self.sentences), 8) if grounded else []
        if self.knobs["keywords"] and self.keywords:
            pool_words = self.keywords + pool_words
        focus = (
            self.choose(pool_words) if self.knobs["diversity"] else (pool_words or [""])[0]
        ) or self.topic
        template = self.choose(_DIVERSE_QUESTIONS if self.knobs["diversity"] else _PLAIN_QUESTIONS)
        question = template.format(x=focus)
        if self.knobs["persona"] and self.persona:
            question = f"For {self.persona}: {question}"
        return question

    def title(self) -> str:
        """A short label: a composed request's most recently introduced item (or its topic),
        else two to four frequent source words."""
        if self.composed:
            return self.introduced[0] if self.introduced else self.topic
        words = _frequent_words(self.source, 6)
        if self.knobs["diversity"] and words:
            self.rng.shuffle(words)
        picked = words[: 2 + (self.rng.randrange(3) if self.temperature > 0 else 1)] or [self.topic]
        return " ".join(picked).capitalize()

    def concepts(self, count: int) -> list[str]:
        """What the last composed passage introduced (its focus item and keywords), at most
        `count`; falls back to titles when nothing was introduced yet."""
        if self.introduced:
            return self.introduced[: max(1, count)]
        return [self.title()]

    def reasoning(self) -> str:
        """Numbered steps ending in "Therefore" with the reasoning knob, else one terse line. After
        a quiz (a target and a sibling answer), the steps explain why that answer is right."""
        answer = next((v for k, v in self.siblings.items() if _name_words(k) & {"answer"}), None)
        if self.target and isinstance(answer, str):
            return self._explain(answer)
        if self.knobs["reasoning"]:
            count = max(3, self._length_for("reasoning", 3))
            steps = [f"{i}. {s}" for i, s in enumerate(self.sentences_for(count), 1)]
            return "\n".join(steps + [f"{count + 1}. Therefore, the answer follows from these points."])
        return "The answer follows from the input."

    def _explain(self, answer: str) -> str:
        focus = _mid(self.target[0]) if self.target else _mid(self.topic)
        if not self.knobs["reasoning"]:
            return f"{_cap(answer)} is correct because the lesson links it to {focus}."
        pool = next((v for v in self.siblings.values() if isinstance(v, list) and answer in v), [])
        options = [o for o in pool if isinstance(o, str) and o != answer]
        others = ", ".join(_mid(o) for o in options) or "the other options"
        steps = [
            f"The question asks which idea belongs with {focus}.",
            f"The lesson ties {focus} to {_mid(answer)} when it explains how {focus} works.",
            f"The other options ({others}) belong to different parts of {_mid(self.topic)}.",
            f"Therefore, the correct option is {answer}.",
        ]
        return "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))

    def math(self) -> tuple[int | float, list[str]]:
        """(result, worked steps): the input's first numbers combined by seeded +, -, *.

        Plausible-looking arithmetic, not a solution: the simulator never checks the question.
        """
        numbers = [_number(x) for x in re.findall(r"-?\d+(?:\.\d+)?", self.source)][:3]
        if not numbers:
            guess = self.rng.randint(1, 10)
            return guess, [f"The answer is {guess}."]
        result, steps = numbers[0], []
        for number in numbers[1:]:
            op = self.choose(("+", "*", "-"))
            new = result + number if op == "+" else result * number if op == "*" else result - number
            new = _number(new)
            steps.append(f"{result} {op} {number} = {new}.")
            result = new
        return result, steps or [f"The answer is {result}."]

    def math_answer(self) -> int | float:
        """The result of `math()`."""
        return self.math()[0]


def _number(value: float | str) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else round(number, 2)


def _frequent_words(text: str, k: int) -> list[str]:
    """Up to `k` most frequent content words longer than 3 letters (ties: first occurrence)."""
    counts: dict[str, int] = {}
    for w in content_words(text):
        if len(w) > 3 and not w.isdigit():
            counts[w] = counts.get(w, 0) + 1
    order = {w: i for i, w in enumerate(counts)}
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], order[kv[0]]))[:k]]


def _demo_grounding(prompt: ParsedPrompt) -> float:
    """Mean overlap of the demos' string outputs with their own inputs (0 without demos)."""
    scores = []
    for inputs, outputs in prompt.demos:
        source = "\n".join(_as_text(v) for v in inputs.values())
        texts = [v for v in outputs.values() if isinstance(v, str) and v.strip()]
        if source and texts:
            scores.append(overlap(" ".join(texts), source))
    return sum(scores) / len(scores) if scores else 0.0


# --------------------------------------------------------------------------------------------
# Values for JSON schemas, judge scores
# --------------------------------------------------------------------------------------------

_RANGE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(-?\d+(?:\.\d+)?)")
_POSITIVE = {
    "yes",
    "pass",
    "passed",
    "true",
    "good",
    "supported",
    "correct",
    "accept",
    "keep",
    "valid",
    "grounded",
    "faithful",
    "entailed",
    "high",
    "approve",
    "approved",
}
_NEGATIVE = {
    "no",
    "fail",
    "failed",
    "false",
    "bad",
    "unsupported",
    "incorrect",
    "reject",
    "drop",
    "invalid",
    "ungrounded",
    "unfaithful",
    "contradicted",
    "low",
    "deny",
    "rejected",
}
_GROUNDING_FLAGS = {"supported", "grounded", "faithful", "factual", "consistent", "entailed", "attributable"}
# A yes/no output about reasoning (step_by_step, shows_reasoning, ...) follows the reasoning markers.
_REASONING_FLAGS = {"step", "steps", "stepwise", "reasoning", "chain"}


def score_range(desc: str, schema: dict, integer: bool) -> tuple[float, float]:
    """(low, high) for a numeric field: schema bounds, a "Constraints:" line, a "1-10"/"1 to 10"
    range in the description, else 1-10 for integers and 0-1 for floats."""
    lo, hi = schema.get("minimum"), schema.get("maximum")
    for text, key in (
        ("greater than or equal to: ", "lo"),
        ("less than or equal to: ", "hi"),
        ("greater than: ", "lo"),
        ("less than: ", "hi"),
    ):
        match = re.search(re.escape(text) + r"(-?\d+(?:\.\d+)?)", desc)
        if match and key == "lo" and lo is None:
            lo = float(match.group(1)) + (1 if integer and text == "greater than: " else 0)
        elif match and key == "hi" and hi is None:
            hi = float(match.group(1)) - (1 if integer and text == "less than: " else 0)
    if lo is None or hi is None:
        match = _RANGE.search(desc.split("Constraints:")[0])
        if match:
            lo, hi = (
                lo if lo is not None else float(match.group(1)),
                hi if hi is not None else float(match.group(2)),
            )
    default = (1.0, 10.0) if integer else (0.0, 1.0)
    lo = default[0] if lo is None else float(lo)
    hi = max(lo, default[1] if hi is None else float(hi))
    return lo, hi


@dataclass
class _Judge:
    """Scores candidate inputs by `judge_features` against the source inputs, the request
    (instruction/question inputs) and the rubric inputs."""

    candidates: dict[str, str]
    source: str
    rng: random.Random
    temperature: float
    request: str = ""
    rubric: str = ""

    def measure(self, candidate: str) -> dict[str, float]:
        """`judge_features` of one candidate text in this request's context."""
        return judge_features(candidate, self.source or None, self.request, self.rubric)

    def features(self, name: str) -> dict[str, float]:
        words = _name_words(name)
        pick = next((c for c in self.candidates if _name_words(c) & words), next(iter(self.candidates)))
        return self.measure(self.candidates[pick])

    def noise(self) -> float:
        return self.rng.gauss(0.0, 0.03 * min(1.0, self.temperature))

    def number(self, name: str, desc: str, schema: dict, integer: bool) -> int | float:
        lo, hi = score_range(desc, schema, integer)
        quality = min(1.0, max(0.0, self.features(name)["quality"] + self.noise()))
        value = lo + quality * (hi - lo)
        return int(round(value)) if integer else round(value, 3)

    def flag(self, name: str) -> bool:
        feats = self.features(name)
        words = _name_words(name)
        if words & _REASONING_FLAGS:
            measure = feats["reasoning"]
        elif words & _GROUNDING_FLAGS and self.source:
            measure = feats["overlap"]
        else:
            measure = feats["quality"]
        return measure + self.noise() >= 0.5

    def label(self, name: str, options: list) -> Any:
        lowered = [str(o).lower() for o in options]
        quality = self.features(name)["quality"] + self.noise()
        names = list(self.candidates)
        if len(options) == len(names) >= 2:
            best = max(
                range(len(names)),
                key=lambda i: self.measure(self.candidates[names[i]])["quality"],
            )
            return options[best]
        pos = [o for o, low in zip(options, lowered, strict=True) if low in _POSITIVE]
        neg = [o for o, low in zip(options, lowered, strict=True) if low in _NEGATIVE]
        if pos and neg:
            return pos[0] if quality >= 0.5 else neg[0]
        index = round(min(1.0, max(0.0, quality)) * (len(options) - 1))
        return options[index]

    def reason(self) -> str:
        """The measured features behind the score, as one or two sentences."""
        name = next(iter(self.candidates))
        f = self.measure(self.candidates[name])
        support = (
            f"{f['overlap']:.2f} of its content words occur in the source"
            if self.source
            else "no source to check against"
        )
        asked = "asked for" if f["asked"] else "not asked for"
        return (
            f"Measured on `{name}`: {support}; it covers {f['coverage']:.2f} of the request's words; "
            f"repetition {f['repetition']:.2f}, JSON debris {f['debris']:.2f}; reasoning markers "
            f"{'present' if f['reasoning'] else 'absent'} ({asked}); {int(f['words'])} words "
            f"(length score {f['length']:.2f}); quality {f['quality']:.2f}."
        )


def _resolve(schema: dict, defs: dict) -> dict:
    while "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(s, defs).get("type") != "null"] or schema[key]
            return _resolve(options[0], defs)
    return schema


def _is_judge(prompt: ParsedPrompt, writer: _Writer) -> bool:
    scalar = any(
        _resolve(o.schema, o.schema.get("$defs", {})).get("type") in ("integer", "number", "boolean")
        or "enum" in o.schema
        for o in prompt.outputs
    )
    return scalar and bool(writer.candidates)


def _count_hint(writer: _Writer, name: str, desc: str = "") -> int:
    """Items for a list field: a count input (n, num_items...), else the demos' median length,
    else a range ("3 to 5": seeded within it) or number word ("four") in the description, else 3."""
    for key, value in writer.prompt.values.items():
        if key.lower() in _COUNT_NAMES and isinstance(value, int) and not isinstance(value, bool):
            return max(1, min(20, value))
    lengths = [len(out[name]) for _, out in writer.prompt.demos if isinstance(out.get(name), list)]
    if lengths:
        return max(1, min(20, round(statistics.median(lengths))))
    match = _RANGE.search(desc)
    if match:
        lo, hi = sorted(int(float(x)) for x in match.groups())
        return max(1, min(20, writer.choose(list(range(lo, hi + 1)))))
    word = next((_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", desc.lower()) if w in _NUMBER_WORDS), None)
    return word or 3


def _order(props: dict) -> list[str]:
    """Order to write an object's properties in: free text first, then lists and labels, then
    values copied from a sibling ("copied from options"), reasoning last (it explains the rest)."""

    def rank(key: str) -> int:
        desc = props[key].get("description", "") if isinstance(props[key], dict) else ""
        if _COPY_DESC.search(desc):
            return 2
        kind = _field_kind(key, desc)
        return 3 if kind == "reasoning" else 0 if kind in ("passage", "question") else 1

    return sorted(props, key=rank)


def value_for(schema: dict, name: str, desc: str, writer: _Writer, judge: _Judge | None, defs: dict) -> Any:
    """A value valid for `schema` (JSON schema subset: enum/const/string/integer/number/boolean/
    array/object/$ref/anyOf), written by `writer`, scored by `judge` when one is given."""
    schema = _resolve(schema, defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return judge.label(name, schema["enum"]) if judge else writer.choose(schema["enum"])
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("integer", "number"):
        integer = kind == "integer"
        if judge:
            return judge.number(name, desc, schema, integer)
        if _name_words(name) & {"answer", "result", "solution", "total"}:
            answer = writer.math_answer()
            return int(answer) if integer else float(answer)
        lo, hi = score_range(desc, schema, integer)
        return writer.rng.randint(int(lo), int(hi)) if integer else round(writer.rng.uniform(lo, hi), 3)
    if kind == "boolean":
        return judge.flag(name) if judge else writer.rng.random() < 0.5
    if kind == "array":
        item = schema.get("items", {})
        count = _count_hint(writer, name, desc)
        count = max(schema.get("minItems", 0), min(schema.get("maxItems", count), count))
        singular = _singular(name)
        if _resolve(item, defs).get("type", "string") == "string" and not judge:
            if _field_kind(name) == "option":
                return writer.options(count)
            if _field_kind(name) == "title" and writer.composed:
                return writer.concepts(count)
        items: list[Any] = []
        outer = writer.position
        for index in range(count):
            writer.position = (index, count)
            value = value_for(item, singular, "", writer, judge, defs)
            if isinstance(value, str) and value in items and writer.knobs["diversity"]:
                value = value_for(item, singular, "", writer, judge, defs)
            items.append(value)
        writer.position = outer
        return items
    if kind == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict):
            keys = _frequent_words(writer.source, 2) or ["item"]
            return {key: value_for(extra, key, "", writer, judge, defs) for key in keys}
        outer_siblings, writer.siblings = writer.siblings, {}
        for key in _order(props):
            sub = props[key]
            writer.siblings[key] = value_for(sub, key, sub.get("description", ""), writer, judge, defs)
        values, writer.siblings = writer.siblings, outer_siblings
        return {key: values[key] for key in props}
    if judge and _field_kind(name, desc) == "reasoning":
        return judge.reason()
    text = writer.text(name, desc)
    return text[: schema["maxLength"]] if "maxLength" in schema else text


# --------------------------------------------------------------------------------------------
# Grouping requests: cluster indexed samples, verify clusters, propose/merge/condense criteria
# --------------------------------------------------------------------------------------------

CLUSTER_THRESHOLD = 0.3  # average-linkage clustering merges groups at least this similar
VERIFY_THRESHOLD = 0.25  # a multi-sample cluster less cohesive than this is judged invalid
_LINE_LABEL = re.compile(r"^[ \t]*([A-Za-z][A-Za-z ]{0,24}?)[ \t]*:", re.MULTILINE)
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \w+ import|for .+:\s*$|if .+:\s*$|return\b|#include|function\b)"
    r"|[;{}]\s*$",
    re.MULTILINE,
)
_NUMBERED_LINE = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)
_BULLET_LINE = re.compile(r"^\s*[-*\u2022]\s", re.MULTILINE)
_INFORMAL = re.compile(
    r"n't\b|'(?:m|re|ll|ve|d)\b|!|\b(?:hi|hey|guys|lol|gonna|wanna|awesome|cool)\b", re.IGNORECASE
)
_GREETING = re.compile(r"^\s*(?:hi|hello|hey|dear|greetings)\b", re.IGNORECASE)
_SCALE_WORDS = re.compile(r"metric|scor|scale|rating|\b1\s*(?:-|to)\s*5\b", re.IGNORECASE)
_NAME_KEYS = {"name", "title", "label", "criterion", "metric", "attribute"}
_DEFINITION_KEYS = {"definition", "description", "meaning", "explanation", "rule", "desc"}
_KIND_KEYS = {"kind", "type", "category"}


@dataclass(frozen=True)
class TextProfile:
    """What `similarity` compares in a text: its content-word stems (`_stems`), its word 3-gram
    shingles, its line labels (a word or two and a colon at a line start: "Input:", "Subject:",
    lower-cased, without the colon), the share of its non-empty lines that carry a label, and its
    first three words (lower-cased)."""

    stems: frozenset[str]
    shingles: frozenset[tuple[str, ...]]
    labels: frozenset[str]
    opening: tuple[str, ...]
    labelled_share: float = 0.0

    @classmethod
    def of(cls, text: str) -> TextProfile:
        """Profile of `text`."""
        words = re.findall(r"[a-z0-9']+", text.lower())
        lines = [line for line in text.splitlines() if line.strip()]
        labelled = len(_LINE_LABEL.findall(text))
        return cls(
            frozenset(_stems(text)),
            frozenset(zip(words, words[1:], words[2:], strict=False)),
            frozenset(m.strip().lower() for m in _LINE_LABEL.findall(text)),
            tuple(words[:3]),
            min(1.0, labelled / len(lines)) if lines else 0.0,
        )


def _without_shared_stems(profiles: dict[int, TextProfile]) -> dict[int, TextProfile]:
    """Drop from every profile the content stems that more than half of the shown samples use.

    What several texts share with the whole batch (a template's wording, a common format) says
    nothing about which of them belong together, as a judge reading them side by side would see;
    what remains are the distinguishing words (topics). Shingles are kept, so near-duplicates still
    match. Batches of fewer than three samples are left as they are.
    """
    if len(profiles) < 3:
        return profiles
    counts = Counter(stem for p in profiles.values() for stem in p.stems)
    common = {stem for stem, n in counts.items() if n > len(profiles) / 2}
    return {i: dataclasses.replace(p, stems=p.stems - common) for i, p in profiles.items()}


def _jaccard(a: frozenset, b: frozenset) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def similarity(a: str | TextProfile, b: str | TextProfile) -> float:
    """Surface similarity of two texts in [0, 1]: the simulator's stand-in for a judge's sense that
    two texts share a topic or a template.

    The largest of three Jaccard similarities: of the content-word stems (same topic), of the
    word 3-gram shingles (near-duplicates; Broder 1997, "On the resemblance and containment of
    documents"), and 0.8 x that of the line labels (same form, e.g. "Input:"/"Output:" pairs),
    scaled by the smaller share of labelled lines (a shared "Question:/Answer:" footer under
    long prose is a weak likeness; texts made of labelled lines are a strong one);
    plus 0.2, capped at 1, when both open with the same three words. Two empty texts count as
    identical (1.0), an empty and a non-empty one as unrelated (0.0). The weights, and
    `CLUSTER_THRESHOLD` = 0.3 they are read against, are this simulator's own, set by hand so
    that unrelated real responses (the self-instruct predictions, news passages) stay apart
    and same-template ones group (no paper).
    """
    p = a if isinstance(a, TextProfile) else TextProfile.of(a)
    q = b if isinstance(b, TextProfile) else TextProfile.of(b)
    if not p.opening or not q.opening:
        return 1.0 if p.opening == q.opening else 0.0
    score = max(
        _jaccard(p.stems, q.stems),
        _jaccard(p.shingles, q.shingles),
        0.8 * min(p.labelled_share, q.labelled_share) * _jaccard(p.labels, q.labels),
    )
    if len(p.opening) == 3 and p.opening == q.opening:
        score += 0.2
    return min(1.0, score)


def _majority(labels: list[str]) -> str:
    """Most common label (ties: first seen)."""
    return Counter(labels).most_common(1)[0][0] if labels else ""


def _format_label(text: str) -> str:
    """Form of one text: empty, code, numbered/bulleted list, labelled lines, short phrase, prose."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "empty"
    if len(_CODE_LINE.findall(text)) >= 2:
        return "code"
    if len(_NUMBERED_LINE.findall(text)) >= 2:
        return "numbered list"
    if len(_BULLET_LINE.findall(text)) >= 2:
        return "bulleted list"
    labels = [m.strip() for m in _LINE_LABEL.findall(text)]
    if len(labels) >= 2:
        common = [label for label, _ in Counter(labels).most_common(2)]
        return f"labelled lines ({', '.join(label + ':' for label in common)})"
    if len(lines) == 1 and len(text.split()) <= 12:
        return "short phrase"
    return "multi-line prose" if len(lines) >= 3 else "prose"


def _purpose_label(text: str) -> str:
    """What one text does: nothing, a message, questions, a list, code or statements."""
    form = _format_label(text)
    first = (split_sentences(text) or [text.strip()])[0]
    if form == "empty":
        return "no content"
    if _GREETING.match(text):
        return "message to someone"
    if first.rstrip().endswith("?") or text.count("?") >= 2:
        return "questions"
    if form in ("code", "numbered list", "bulleted list"):
        return form if form == "code" else "list of items"
    return "statement or answer"


def _informality(text: str) -> float:
    """Informal markers (contractions, exclamation marks, chatty words) per word, scaled so that
    one marker in 20 words counts as fully informal; in [0, 1]."""
    words = len(text.split())
    return min(1.0, len(_INFORMAL.findall(text)) / (0.05 * words)) if words else 0.0


def _tone_label(text: str) -> str:
    """"formal" (no informal marker), "neutral", "informal" (`_informality` >= 0.5) or "no content"."""
    level = _informality(text)
    return (
        "no content" if not text.strip() else "informal" if level >= 0.5 else "neutral" if level else "formal"
    )


def _specificity(text: str) -> float:
    """Share of words that are numbers, 9+ letters long, or capitalised names (a capital not at a
    sentence, line or label start), divided by 0.3 and capped at 1 (this simulator's own scale)."""
    words = list(re.finditer(r"[A-Za-z0-9']+", text))
    if not words:
        return 0.0
    specific, end = 0, 0
    for match in words:
        word, gap = match.group(), text[end : match.start()]
        end = match.end()
        name = word[:1].isupper() and match.start() > 0 and not re.search(r"[.!?:\n]", gap)
        specific += word.isdigit() or len(word) >= 9 or name
    return min(1.0, specific / len(words) / 0.3)


def _structure(text: str) -> float:
    """Share of non-empty lines that are list items or labelled lines; 0 for one unbroken block."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return 0.0
    marked = (
        len(_NUMBERED_LINE.findall(text)) + len(_BULLET_LINE.findall(text)) + len(_LINE_LABEL.findall(text))
    )
    return min(1.0, marked / len(lines))


def _length_level(text: str) -> float:
    """log10(1 + words) / 3, capped at 1: 10 words ~ 0.35, 100 ~ 0.67, 1000 or more = 1."""
    return min(1.0, math.log10(1 + len(text.split())) / 3)


def _topic_value(texts: list[str]) -> str:
    """The two most frequent content words of the texts, "a / b"."""
    words = _frequent_words(" ".join(texts), 2)
    return " / ".join(words) if words else "none (no content words)"


@dataclass(frozen=True)
class _Aspect:
    """A property a grouping criterion can name. Categorical aspects have `value` (texts -> a
    label); scales have `measure` (one text -> [0, 1]) and `scale` (what low and high mean)."""

    key: str
    names: tuple[str, ...]
    pattern: str
    definition: str
    value: Any = None
    measure: Any = None
    scale: str = ""

    def matches(self, text: str) -> bool:
        """Whether a criterion name (or text) refers to this aspect."""
        return re.search(self.pattern, text.lower().replace("_", " ")) is not None

    def describe(self) -> str:
        """The definition, followed by the scale for a scale aspect."""
        return f"{self.definition} {self.scale}".strip()


_CATEGORIES = (
    _Aspect(
        "topic",
        ("topic", "subject_area", "domain"),
        r"topic|subject|domain|theme|content|field",
        "The subject the text is about.",
        value=_topic_value,
    ),
    _Aspect(
        "format",
        ("format", "text_format", "genre"),
        r"format|genre|\bform\b|layout|text type",
        "The form of the text: prose, a list, labelled lines, code, a short phrase.",
        value=lambda ts: _majority([_format_label(t) for t in ts]),
    ),
    _Aspect(
        "purpose",
        ("purpose", "communicative_intent", "task_type"),
        r"purpose|intent|task|function|goal",
        "What the text does: answers, asks, lists, addresses someone or gives code.",
        value=lambda ts: _majority([_purpose_label(t) for t in ts]),
    ),
    _Aspect(
        "tone",
        ("tone", "register", "style"),
        r"tone|style|register|voice|mood|sentiment",
        "The tone of the writing: formal, neutral or informal.",
        value=lambda ts: _majority([_tone_label(t) for t in ts]),
    ),
    _Aspect(
        "audience",
        ("audience", "target_reader"),
        r"audience|reader",
        "Who the text is written for: general readers or specialists.",
        value=lambda ts: (
            "specialists" if statistics.mean(map(_specificity, ts)) >= 0.5 else "general readers"
        ),
    ),
)
_SCALES = (
    _Aspect(
        "length",
        ("length", "verbosity"),
        r"length|long|verbos|word count|brevity",
        "How long the text is.",
        measure=_length_level,
        scale="1 = a few words, 3 = about a paragraph, 5 = several hundred words.",
    ),
    _Aspect(
        "repetitiveness",
        ("repetitiveness", "redundancy"),
        r"repet|redundan|degenera|loop",
        "How much the text repeats itself.",
        measure=repetition,
        scale="1 = no repeated phrase, 3 = some repeated phrases, 5 = mostly the same lines again and again.",
    ),
    _Aspect(
        "specificity",
        ("specificity", "level_of_detail"),
        r"specific|detail|concrete|technical|precis|informat",
        "How concrete the wording is: names, numbers and technical terms.",
        measure=_specificity,
        scale="1 = generic wording, 3 = some concrete details, 5 = names, numbers and terms throughout.",
    ),
    _Aspect(
        "structure",
        ("structure", "organization"),
        r"structur|organi[sz]|itemi[sz]|\blist",
        "How much the text is broken into items or labelled parts.",
        measure=_structure,
        scale="1 = one unbroken block, 3 = partly itemised, 5 = every line an item or a labelled part.",
    ),
    _Aspect(
        "formality",
        ("formality", "formal_register"),
        r"formal|polite|professional",
        "How formal the register is.",
        measure=lambda t: 1.0 - _informality(t) if t.strip() else 0.0,
        scale="1 = chatty and informal, 3 = neutral, 5 = formal throughout.",
    ),
)


def _aspect_for(name: str, scale: bool) -> _Aspect | None:
    """The known aspect (categorical or scale, per `scale`) a criterion name refers to, if any."""
    return next((a for a in (_SCALES if scale else _CATEGORIES) if a.matches(name)), None)


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


@dataclass
class _Grouping:
    """Answers grouping requests by measuring the samples (see the module docstring).

    Recognised by structure, never by signature name: an input mapping 1-based integers to
    texts (the samples); outputs that are lists of objects with an integer-list property
    (clusters), with a boolean property next to an input list of such clusters (verdicts), or
    with name and definition properties (criteria: proposed from samples, merged from a
    name -> definitions input to `k` items, or condensed one per input item).
    """

    prompt: ParsedPrompt
    writer: _Writer
    rng: random.Random
    temperature: float
    texts: dict[int, str] = field(default_factory=dict)
    profiles: dict[int, TextProfile] = field(default_factory=dict)
    _sims: dict[tuple[int, int], float] = field(default_factory=dict)

    @classmethod
    def build(
        cls, prompt: ParsedPrompt, writer: _Writer, rng: random.Random, temperature: float
    ) -> _Grouping:
        """The request's samples: the first input mapping integer keys to texts (none: {})."""
        grouping = cls(prompt, writer, rng, temperature)
        for value in prompt.values.values():
            texts = _indexed_texts(value)
            if texts:
                grouping.texts = dict(sorted(texts.items()))
                break
        grouping.profiles = _without_shared_stems({i: TextProfile.of(t) for i, t in grouping.texts.items()})
        return grouping

    # ---- measuring ----------------------------------------------------------------------------
    def sim(self, i: int, j: int) -> float:
        """`similarity` of samples `i` and `j` (cached)."""
        key = (min(i, j), max(i, j))
        if key not in self._sims:
            self._sims[key] = 1.0 if i == j else similarity(self.profiles[i], self.profiles[j])
        return self._sims[key]

    def cohesion(self, members: list[int]) -> float:
        """Mean pairwise `similarity` of the members (1.0 for fewer than two)."""
        pairs = [(a, b) for n, a in enumerate(members) for b in members[n + 1 :]]
        return statistics.mean(self.sim(a, b) for a, b in pairs) if pairs else 1.0

    def partition(self) -> list[list[int]]:
        """Average-linkage clusters (scipy) of the samples, merged while the mean similarity
        between two groups is at least the threshold: `CLUSTER_THRESHOLD` plus seeded noise
        (sd 0.02 x temperature, capped at 1; kept within 0.2-0.4). Samples are shuffled by the
        seeded RNG first, so ties break by seed. Clusters are ordered by their smallest index."""
        import numpy as np
        from scipy.cluster.hierarchy import fcluster, linkage

        order = list(self.texts)
        self.rng.shuffle(order)
        if len(order) < 2:
            return [order]
        noise = self.rng.gauss(0.0, 0.02 * min(1.0, self.temperature))
        threshold = min(0.4, max(0.2, CLUSTER_THRESHOLD + noise))
        dist = [1.0 - self.sim(a, b) for n, a in enumerate(order) for b in order[n + 1 :]]
        labels = fcluster(linkage(np.array(dist), "average"), t=1.0 - threshold, criterion="distance")
        groups: dict[int, list[int]] = {}
        for index, label in zip(order, labels, strict=True):
            groups.setdefault(int(label), []).append(index)
        return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])

    def shared_words(self, members: list[int], k: int = 5) -> list[str]:
        """Up to `k` content words found in most members (at least two), commonest first (ties:
        in order of first appearance)."""
        words = [dict.fromkeys(content_words(self.texts[i])) for i in members]
        counts = Counter(w for seen in words for w in seen)
        need = max(2, math.ceil(len(members) / 2))
        return [w for w, c in sorted(counts.items(), key=lambda wc: -wc[1]) if c >= need][:k]

    def describe(self, members: list[int]) -> str:
        """What the members share (opening, line labels, words) and their cohesion; for a single
        sample, what it is about and how close its nearest neighbour is."""
        texts = [self.texts[i] for i in members]
        if len(members) == 1:
            i = members[0]
            near = max((self.sim(i, j) for j in self.texts if j != i), default=0.0)
            about = ", ".join(_frequent_words(texts[0], 3)) or "nothing (it has no content words)"
            return (
                f"Sample {i} stands apart: it is about {about}; "
                f"its nearest other sample has similarity {near:.2f}."
            )
        parts = []
        profiles = [self.profiles[i] for i in members]
        if not any(p.opening for p in profiles):
            parts.append("are all empty")
        opening = []
        for words in zip(*(p.opening for p in profiles), strict=False):
            if len(set(words)) > 1:
                break
            opening.append(words[0])
        if len(opening) >= 2:
            parts.append(f"all open with '{' '.join(opening)}'")
        labels = sorted(frozenset.intersection(*(p.labels for p in profiles)))
        if labels:
            parts.append(
                "all have lines labelled " + ", ".join(label.capitalize() + ":" for label in labels[:3])
            )
        shared = self.shared_words(members)
        if shared:
            parts.append("share words: " + ", ".join(shared))
        listed = ", ".join(map(str, members))
        what = " and ".join(parts) or "overlap a little"
        return f"Samples {listed} {what} (mean pairwise similarity {self.cohesion(members):.2f})."

    # ---- answers --------------------------------------------------------------------------------
    def answers(self) -> dict[str, Any]:
        """Values for the outputs this class recognises (name -> value); others are left out."""
        out: dict[str, Any] = {}
        checked = next((v for v in self.prompt.values.values() if _cluster_list(v)), None)
        for o in self.prompt.outputs:
            defs = o.schema.get("$defs", {})
            props = _props(o.schema, defs)
            flags = [k for k, v in props.items() if v.get("type") == "boolean"]
            if not props:
                continue
            if flags and checked is not None and self.texts:
                out[o.name] = self.verdicts(checked, props, flags[0], defs)
            elif not flags and _int_list_prop(props) and self.texts:
                out[o.name] = self.clusters(props, defs)
            elif _prop_of(props, _NAME_KEYS) and _prop_of(props, _DEFINITION_KEYS):
                items = self.criteria(o)
                if items is not None:
                    out[o.name] = [self.criterion_item(props, defs, *item) for item in items]
        return out

    def _fill(self, props: dict[str, dict], defs: dict, known: dict[str, Any]) -> dict[str, Any]:
        """An object with the `known` values and the other properties written by the generic writer."""
        item = {}
        for key in props:
            sub = props[key]
            item[key] = (
                known[key]
                if key in known
                else value_for(sub, key, sub.get("description", ""), self.writer, None, defs)
            )
        return item

    def clusters(self, props: dict[str, dict], defs: dict) -> list[dict[str, Any]]:
        """One object per cluster of `partition`: members, id (1, 2, ...), a description of what
        they share (string properties), metadata values (a string map) and metric scores (a
        list of objects) for the criteria named in a numbered-criteria input."""
        criteria = next(
            (c for v in self.prompt.values.values() if isinstance(v, str) and (c := _parse_criteria(v))), []
        )
        index_key = _int_list_prop(props)
        id_key = next((k for k, v in props.items() if v.get("type") == "integer"), None)
        items = []
        for cid, members in enumerate(self.partition(), 1):
            known: dict[str, Any] = {index_key: members}
            if id_key:
                known[id_key] = cid
            for key, sub in props.items():
                if key in known:
                    continue
                if sub.get("type") == "string":
                    known[key] = self.describe(members)
                elif sub.get("type") == "object" and isinstance(sub.get("additionalProperties"), dict):
                    known[key] = self.metadata(members, [n for n, scale in criteria if not scale])
                elif _props(sub, defs):
                    names = [n for n, scale in criteria if scale]
                    known[key] = [
                        self._fill(_props(sub, defs), defs, s)
                        for s in self.scores(members, names, _props(sub, defs))
                    ]
            items.append(self._fill(props, defs, known))
        return items

    def metadata(self, members: list[int], names: list[str]) -> dict[str, str]:
        """Value of each categorical criterion (default: topic and format) for the members: the
        aspect's label (`_CATEGORIES`), or the members' commonest words for an unknown name."""
        texts = [self.texts[i] for i in members]
        names = names or [a.key for a in _CATEGORIES[:2]]
        return {n: (a.value(texts) if (a := _aspect_for(n, False)) else _topic_value(texts)) for n in names}

    def scores(self, members: list[int], names: list[str], props: dict[str, dict]) -> list[dict[str, Any]]:
        """Known values of one score object per scale criterion (default: length and
        repetitiveness): its name, the members' mean measure (`_SCALES`; `judge_features`
        quality for an unknown name) mapped onto the score range, and how it was measured."""
        texts = [self.texts[i] for i in members]
        name_key = _prop_of(props, _NAME_KEYS, "string")
        out = []
        for name in names or [a.key for a in _SCALES[:2]]:
            aspect = _aspect_for(name, True)
            measure = aspect.measure if aspect else (lambda t: judge_features(t, None)["quality"])
            level = statistics.mean(measure(t) for t in texts)
            known: dict[str, Any] = {name_key: name} if name_key else {}
            for key, sub in props.items():
                if key in known:
                    continue
                lo, hi = _scale_range(sub.get("description", ""), sub)
                if sub.get("type") == "integer":
                    known[key] = lo + round(level * (hi - lo))
                elif sub.get("type") == "number":
                    known[key] = round(lo + level * (hi - lo), 2)
                elif sub.get("type") == "string":
                    what = aspect.key if aspect else "quality"
                    known[key] = f"Mean {what} measure {level:.2f} (0-1) over {len(texts)} sample(s)."
            out.append(known)
        return out

    def verdicts(
        self, clusters: list[dict], props: dict[str, dict], flag: str, defs: dict
    ) -> list[dict[str, Any]]:
        """One verdict per input cluster: invalid when it names a sample that does not exist or
        when its members' mean pairwise similarity is below `VERIFY_THRESHOLD`; singletons valid."""
        id_key = next((k for k, v in props.items() if v.get("type") == "integer"), None)
        text_keys = [k for k, v in props.items() if v.get("type") == "string"]
        out = []
        for n, cluster in enumerate(clusters, 1):
            members = sorted({i for v in cluster.values() if _int_list(v) for i in v})
            ints = [(k, v) for k, v in cluster.items() if isinstance(v, int) and not isinstance(v, bool)]
            cid = next((v for k, v in ints if "id" in _name_words(k)), ints[0][1] if ints else n)
            missing = [i for i in members if i not in self.texts]
            listed = ", ".join(map(str, members))
            if missing:
                valid, why = False, f"Invalid: sample {missing[0]} is not among the samples."
            elif len(members) < 2:
                valid, why = True, "Valid: a cluster of one sample always stands."
            else:
                level = self.cohesion(members)
                valid = level >= VERIFY_THRESHOLD
                if valid:
                    why = f"Valid: {self.describe(members)}"
                else:
                    shared = ", ".join(self.shared_words(members)) or "none"
                    why = (
                        f"Invalid: samples {listed} have mean pairwise similarity {level:.2f}, below "
                        f"{VERIFY_THRESHOLD:.2f}; they share no template and few words ({shared})."
                    )
            known: dict[str, Any] = {flag: valid, **{k: why for k in text_keys}}
            if id_key:
                known[id_key] = cid
            out.append(self._fill(props, defs, known))
        return out

    # ---- criteria -------------------------------------------------------------------------------
    def criteria(self, output: FieldSpec) -> list[tuple[str, str, str]] | None:
        """(name, definition, kind) items for a criteria output: condensed one per item of list
        inputs holding named items; merged to `k` from a name -> definitions input; proposed
        from the samples. None when the request has none of these inputs."""
        values = self.prompt.values
        scale = bool(_SCALE_WORDS.search(f"{output.name} {output.desc}"))
        named = {k: v for k, v in values.items() if isinstance(v, list) and v and all(_named(x) for x in v)}
        if named:
            return [item for key, items in named.items() for item in self.condense(key, items)]
        proposals = next(
            (
                v
                for k, v in values.items()
                if isinstance(v, dict)
                and v
                and _indexed_texts(v) is None
                and all(isinstance(d, (list, str)) for d in v.values())
            ),
            None,
        )
        count = _count_hint(self.writer, output.name, output.desc)
        if proposals is not None:
            return self.merge(proposals, count, scale)
        if self.texts:
            return self.propose(count, scale)
        return None

    def propose(self, count: int, scale: bool) -> list[tuple[str, str, str]]:
        """`count` aspects (at most the pool) ranked by how much they vary across the samples
        (distinct labels, or spread of the measure); ties broken by seed; names drawn among each
        aspect's synonyms; categorical definitions list the labels seen."""
        texts = list(self.texts.values())
        pool = list(_SCALES if scale else _CATEGORIES)
        self.rng.shuffle(pool)

        def spread(aspect: _Aspect) -> float:
            if aspect.measure:
                return statistics.pstdev([aspect.measure(t) for t in texts])
            return len({aspect.value([t]) for t in texts})

        ranked = sorted(pool, key=spread, reverse=True)[:count]
        kind = "metric" if scale else "metadata"
        items = []
        for aspect in ranked:
            definition = aspect.describe()
            if aspect.value:
                seen = list(dict.fromkeys(aspect.value([t]) for t in texts))[:3]
                definition += f" Seen here: {'; '.join(seen)}."
            items.append((self.writer.choose(aspect.names), definition, kind))
        return items

    def merge(self, proposals: dict, k: int, scale: bool) -> list[tuple[str, str, str]]:
        """Exactly `k` criteria: proposal names grouped by the aspect they refer to (unknown
        names each their own group), groups ranked by how many definitions they got, each named
        by its most proposed name; topped up with unproposed aspects, then numbered placeholders."""
        groups: dict[str, list[tuple[str, list[str]]]] = {}
        for name, defs in proposals.items():
            aspect = _aspect_for(str(name), scale)
            groups.setdefault(aspect.key if aspect else str(name), []).append((str(name), _as_list(defs)))
        ranked = sorted(groups.items(), key=lambda kv: -sum(len(d) for _, d in kv[1]))
        kind = "metric" if scale else "metadata"
        items = []
        for key, members in ranked[:k]:
            name, defs = max(members, key=lambda m: len(m[1]))
            aspect = _aspect_for(key, scale)
            items.append((name, aspect.describe() if aspect else (defs[0] if defs else name), kind))
        for aspect in _SCALES if scale else _CATEGORIES:
            if len(items) < k and aspect.key not in groups:
                items.append((aspect.names[0], aspect.describe(), kind))
        items += [
            (f"{kind}_{i}", f"Another {kind} criterion ({i}).", kind) for i in range(len(items) + 1, k + 1)
        ]
        return items

    def condense(self, key: str, items: list[dict]) -> list[tuple[str, str, str]]:
        """One (name, one-sentence definition, kind) per named item of input `key`; the kind is
        the singular of `key` ("metrics" -> "metric")."""
        spec = next((f for f in self.prompt.inputs if f.name == key), None)
        scale = bool(_SCALE_WORDS.search(f"{key} {spec.desc if spec else ''}"))
        out = []
        for item in items:
            name = _named(item)
            text = next((_as_text(v) for k, v in item.items() if _name_words(k) & _DEFINITION_KEYS), "")
            aspect = _aspect_for(name, scale)
            words = name.replace("_", " ").strip()
            if aspect and scale:
                sentence = f"Group texts that score alike on {words} ({aspect.scale.rstrip('.')})."
            else:
                fallback = text.strip() or (aspect.definition if aspect else words)
                first = (split_sentences(text) or [fallback])[0]
                sentence = f"Group texts by {words}: {_lower_first(first).rstrip('.')}."
            out.append((name, sentence, _singular(key)))
        return out

    def criterion_item(
        self, props: dict[str, dict], defs: dict, name: str, definition: str, kind: str
    ) -> dict:
        """An object for one criterion: name, definition and kind properties filled, the rest generic.
        A kind property whose description quotes its options ("'metadata' or 'metric'") gets
        the option matching `kind` (or, failing that, whether it is a scale)."""
        known: dict[str, Any] = {}
        name_key = _prop_of(props, _NAME_KEYS, "string")
        def_key = _prop_of(props, _DEFINITION_KEYS)
        kind_key = _prop_of(props, _KIND_KEYS)
        if name_key:
            known[name_key] = name
        if def_key:
            known[def_key] = definition
        if kind_key and kind_key not in known:
            sub = props[kind_key]
            options = re.findall(r"'([^']+)'", sub.get("description", "")) or list(sub.get("enum", []))
            scale = bool(_SCALE_WORDS.search(kind))
            known[kind_key] = next((o for o in options if o == kind), None) or next(
                (o for o in options if bool(_SCALE_WORDS.search(str(o))) == scale), kind
            )
        return self._fill(props, defs, known)


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


def _named(item: Any) -> str:
    """The name of a dict item (its first name-like string value), "" if none."""
    if not isinstance(item, dict):
        return ""
    return next((v for k, v in item.items() if _name_words(k) & _NAME_KEYS and isinstance(v, str) and v), "")


def compose_answer(prompt: ParsedPrompt, rng: random.Random, temperature: float) -> dict[str, Any]:
    """Values for every output field of `prompt`, as a dict name -> JSON-able value.

    `temperature` (None already mapped to 1.0) scales how often seeded choices leave the first,
    most generic option. Judge-like prompts (scalar outputs and a candidate input) are scored
    with `judge_features`; everything else is written by `_Writer`.
    """
    writer = _Writer.build(prompt, rng, temperature)
    judge = None
    if prompt.mode != "text" and _is_judge(prompt, writer):

        def joined(words: set[str]) -> str:
            return "\n".join(_as_text(v) for k, v in prompt.values.items() if _name_words(k) & words)

        judge = _Judge(
            writer.candidates, joined(_SOURCE_WORDS), rng, temperature,
            request=joined(_QUESTION_KINDS), rubric=joined(_RUBRIC_WORDS),
        )
    if prompt.mode == "text":
        return {"text": writer.text("text", "")}
    answered = _Grouping.build(prompt, writer, rng, temperature).answers()
    specs = {o.name: o for o in prompt.outputs}
    for name in _order({o.name: {"description": o.desc} for o in prompt.outputs}):
        o = specs[name]
        if name in answered:
            writer.siblings[name] = answered[name]
            continue
        writer.siblings[name] = value_for(o.schema, o.name, o.desc, writer, judge, o.schema.get("$defs", {}))
    return {o.name: writer.siblings[o.name] for o in prompt.outputs}


def render(prompt: ParsedPrompt, values: dict[str, Any], malformed: bool = False) -> str:
    """Write `values` in the format the adapter expects; `malformed` truncates the last field so
    the adapter's parser fails (missing field marker or key)."""
    names = [o.name for o in prompt.outputs]
    if prompt.mode == "text":
        return "" if malformed else str(values["text"])
    if malformed:
        names = names[:-1]
    if prompt.mode == "json":
        body = json.dumps({n: values[n] for n in names}, indent=2, ensure_ascii=False)
        return body[:-1].rstrip() if malformed else body
    sections = []
    for n in names:
        v = values[n]
        text = v if isinstance(v, str) else str(v) if isinstance(v, (bool, int, float)) else json.dumps(v)
        sections.append(f"[[ ## {n} ## ]]\n{text}")
    tail = "" if malformed else "\n\n[[ ## completed ## ]]"
    return "\n\n".join(sections) + tail


# --------------------------------------------------------------------------------------------
# The simulator (transport independent) and its DSPy engine
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimCall:
    """One request to the simulator, whatever the transport.

    messages: OpenAI-style chat messages. rollout_id: DSPy's rollout id (None over HTTP).
    temperature: None means the provider default, 1.0. response_format: the request's, if any.
    candidate: index among the `n` answers of one call. seed: per-request seed (the request's
    `seed`, e.g. `SimLM(seed=...)`); None falls back to `SimOptions.seed`.
    """

    messages: list[dict]
    rollout_id: Any = None
    temperature: float | None = None
    response_format: Any = None
    candidate: int = 0
    seed: int | None = None


@dataclass(frozen=True)
class SimReply:
    """One simulated completion: the text and its simulated token usage."""

    text: str
    prompt_tokens: int
    completion_tokens: int


def _seed_int(*parts: Any) -> int:
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


class Simulator:
    """Transport-independent simulated LM shared by `SimEngine` and `synthdspy.sim_server`.

    `complete(call)` answers a `SimCall`, injecting faults per `SimOptions`. Thread-safe: the
    shared state is the per-request attempt counter (bounded LRU) and `faults`, a Counter of
    attempt outcomes ("ok", "rate_limit", "server_error", "malformed").
    """

    _MAX_TRACKED = 65536

    def __init__(self, options: SimOptions | None = None, **kwargs: Any) -> None:
        self.options = options or SimOptions(**kwargs)
        self.faults: Counter[str] = Counter()
        self._attempts: OrderedDict[int, int] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        """Picklable (and deep-copyable) state: everything but the lock."""
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def request_key(self, call: SimCall) -> int:
        """Seed of a request: sha256 of (messages, rollout_id, temperature, seed, candidate)."""
        seed = self.options.seed if call.seed is None else call.seed
        return _seed_int(call.messages, call.rollout_id, call.temperature, seed, call.candidate)

    def draw_fault(self, call: SimCall) -> str | None:
        """Fault for this attempt of `call`: "rate_limit", "server_error", "malformed" or None.

        A seeded uniform draw on (request key, attempt number), the attempt number counting
        earlier calls with the same key, so a retry draws afresh.
        """
        key = self.request_key(call)
        with self._lock:
            attempt = self._attempts.pop(key, 0)
            self._attempts[key] = attempt + 1
            if len(self._attempts) > self._MAX_TRACKED:
                self._attempts.popitem(last=False)
        o = self.options
        u = random.Random(_seed_int(key, attempt, "fault")).random()
        fault = None
        if u < o.rate_limit_rate:
            fault = "rate_limit"
        elif u < o.rate_limit_rate + o.error_rate:
            fault = "server_error"
        elif u < o.rate_limit_rate + o.error_rate + o.malformed_rate:
            fault = "malformed"
        with self._lock:
            self.faults[fault or "ok"] += 1
        return fault

    def answer(self, call: SimCall, malformed: bool = False) -> SimReply:
        """The deterministic answer to `call` (no latency, no fault draw)."""
        prompt = parse_prompt(call.messages, call.response_format)
        rng = random.Random(self.request_key(call))
        temperature = 1.0 if call.temperature is None else float(call.temperature)
        text = render(prompt, compose_answer(prompt, rng, temperature), malformed=malformed)
        prompt_tokens = sum(count_tokens(_content_text(m.get("content"))) for m in call.messages)
        return SimReply(text, prompt_tokens, count_tokens(text))

    def attempt(self, call: SimCall) -> SimReply:
        """Draw a fault for `call`; raise `SimulatedRateLimitError` / `SimulatedServerError`
        (carrying `retry_after_s`) or return the (possibly malformed) answer. No latency."""
        fault = self.draw_fault(call)
        hint = self.options.retry_after_s
        if fault == "rate_limit":
            raise SimulatedRateLimitError("simulated rate limit (HTTP 429)", status=429, retry_after=hint)
        if fault == "server_error":
            raise SimulatedServerError("simulated server error (HTTP 500)", status=500, retry_after=hint)
        return self.answer(call, malformed=fault == "malformed")

    def complete(self, call: SimCall) -> SimReply:
        """One attempt after sleeping `latency_s` (see `attempt`)."""
        if self.options.latency_s:
            time.sleep(self.options.latency_s)
        return self.attempt(call)


_CALL: contextvars.ContextVar[dict | None] = contextvars.ContextVar("synthdspy_sim_call", default=None)


def _request_call(request: lm15.Request) -> SimCall:
    """The `SimCall` of an engine request, with rollout id and candidate from `SimLM`'s context."""
    messages = []
    if request.system is not None:
        system = request.system
        if not isinstance(system, str):
            system = "".join(getattr(p, "text", "") for p in system)
        messages.append({"role": "system", "content": system})
    for m in request.messages:
        text = "\n".join(p.text for p in m.parts if isinstance(p, lm15.TextPart))
        messages.append({"role": m.role, "content": text})
    state = _CALL.get() or {"rollout_id": None, "done": 0}
    config = request.config
    return SimCall(
        messages, state["rollout_id"], config.temperature, config.response_format, state["done"], config.seed
    )


def _response(request: lm15.Request, reply: SimReply) -> lm15.Response:
    state = _CALL.get()
    if state is not None:
        state["done"] += 1  # the next successful answer in this call is the next candidate
    usage = lm15.Usage(
        input_tokens=reply.prompt_tokens,
        output_tokens=reply.completion_tokens,
        total_tokens=reply.prompt_tokens + reply.completion_tokens,
    )
    message = lm15.Message.assistant([lm15.TextPart(reply.text)])
    return lm15.Response(id=None, model=request.model, message=message, finish_reason="stop", usage=usage)


class SimEngine:
    """DSPy 3.4 engine (`complete(Request) -> Response`) backed by a `Simulator`.

    Reads rollout_id and the candidate index from `SimLM`'s call context, and the seed from the
    request (`SimLM` puts its seed in the request options, so it is part of DSPy's cache key).
    Declares JSON-schema response-format support so JSONAdapter sends structured-output requests.
    """

    supports_response_schema = True
    supported_params = frozenset({"temperature", "max_tokens", "response_format", "n", "seed", "stop"})

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def complete(self, request: lm15.Request) -> lm15.Response:
        """Answer one request (one attempt); raises `SimulatedTransientError` subclasses on faults."""
        return _response(request, self.simulator.complete(_request_call(request)))

    def stream(self, request: lm15.Request):
        """Stream events of the complete answer (the simulator does not stream incrementally)."""
        return lm15.response_to_events(self.complete(request))

    def close(self) -> None:
        """Nothing to release."""

    def dump_state(self) -> dict:
        """JSON state: the simulator options."""
        return self.simulator.options.model_dump()

    @classmethod
    def load_state(cls, state: dict) -> SimEngine:
        """Rebuild from `dump_state` output."""
        return cls(Simulator(SimOptions(**state)))


class AsyncSimEngine:
    """Async counterpart of `SimEngine` (latency is awaited, not slept)."""

    def __init__(self, sync: SimEngine) -> None:
        self.sync = sync

    async def complete(self, request: lm15.Request) -> lm15.Response:
        """Async `SimEngine.complete`."""
        simulator = self.sync.simulator
        if simulator.options.latency_s:
            await asyncio.sleep(simulator.options.latency_s)
        return _response(request, simulator.attempt(_request_call(request)))

    async def stream(self, request: lm15.Request):
        """Async stream of the complete answer's events."""
        for event in lm15.response_to_events(await self.complete(request)):
            yield event

    async def aclose(self) -> None:
        """Nothing to release."""


class SimLM(dspy.LM):
    """The offline simulator as a `dspy.LM` (so a `dspy.BaseLM`), for models named `sim/...`.

    Build: `SimLM("sim/default", seed=0, latency_s=0.0, error_rate=0.0, rate_limit_rate=0.0,
    malformed_rate=0.0, retry_after_s=0.0, **lm_kwargs)`, where `lm_kwargs` are ordinary
    `dspy.LM` options (temperature, max_tokens, cache, num_retries, callbacks, rollout_id).
    Raises ValueError if `model` does not start with "sim/" and pydantic.ValidationError for bad
    options. See the module docstring for caching, retries and usage.
    """

    def __init__(
        self,
        model: str = "sim/default",
        *,
        seed: int = 0,
        latency_s: float = 0.0,
        error_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        malformed_rate: float = 0.0,
        retry_after_s: float = 0.0,
        **lm_kwargs: Any,
    ) -> None:
        if not model.startswith("sim/"):
            raise ValueError(f"simulated model names start with 'sim/', got {model!r}")
        options = SimOptions(
            seed=seed,
            latency_s=latency_s,
            error_rate=error_rate,
            rate_limit_rate=rate_limit_rate,
            malformed_rate=malformed_rate,
            retry_after_s=retry_after_s,
        )
        engine = SimEngine(Simulator(options))
        # The seed travels as the request's `seed` option: DSPy then keys its cache on it too.
        lm_kwargs.setdefault("seed", seed)
        super().__init__(model, engine=engine, async_engine=AsyncSimEngine(engine), **lm_kwargs)

    @property
    def simulator(self) -> Simulator:
        """The `Simulator` answering this LM's calls."""
        return self.engine.simulator

    def _call_state(self, kwargs: dict) -> dict:
        return {"rollout_id": {**self.kwargs, **kwargs}.get("rollout_id"), "done": 0}

    def __call__(self, prompt=None, *, messages=None, **kwargs):
        """`dspy.LM.__call__` with this call's rollout_id made visible to the engine."""
        token = _CALL.set(self._call_state(kwargs))
        try:
            return super().__call__(prompt, messages=messages, **kwargs)
        finally:
            _CALL.reset(token)

    async def acall(self, prompt=None, *, messages=None, **kwargs):
        """Async `__call__`."""
        token = _CALL.set(self._call_state(kwargs))
        try:
            return await super().acall(prompt, messages=messages, **kwargs)
        finally:
            _CALL.reset(token)

    def update_history(self, entry: dict) -> None:
        """Record history with cost 0.0: simulated calls cost nothing."""
        if entry.get("cost") is None:
            entry["cost"] = 0.0
        super().update_history(entry)

    def dump_state(self) -> dict:
        """State for `load_state`: model, dspy.LM options and simulator options (no secrets)."""
        state = dspy.BaseLM.dump_state(self)
        state.update(self.simulator.options.model_dump())
        state.pop("model_type", None)
        return state

    @classmethod
    def load_state(cls, state: dict, *, allow_custom_lm_class: bool = False) -> SimLM:
        """Rebuild a `SimLM` from `dump_state` output."""
        state = {k: v for k, v in state.items() if k != "_dspy_lm_class"}
        return cls(**state)
