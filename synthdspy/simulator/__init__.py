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
      is served from cache and never reaches the engine. The cache key also holds
      `SIMULATOR_BUILD` (a hash of this package's source, sent as the request's `user`), so
      answers cached by an older simulator are not replayed after an upgrade;
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
    inputs are used item by item, never pasted as JSON (an object item by its topic or name, its
    keyword lists pooled): an output named as the singular of a
    list input (persona <- personas), or described as "copied from <list>", copies one item
    (seeded; the best word match with the topic and items when a fit is asked for). A request
    with a topic or list items and no source text is "composed": passage i of n is about item
    i, built from sentence frames with the keywords shared out, longer and more nuanced for
    later items, repeating two frames unless the diversity knob asks for variety; quiz options
    are distinct items and the answer is the item the passages linked to the question's focus.
    Object properties are written in dependency order (text, lists, copies, reasoning last).
    A list of objects with a speaker property (role, speaker) and a text property, next to a
    list input of speakers and a source, is a conversation: the speakers alternate and the turns
    carry the source sentences in order (each kept with the grounding probability), linked by
    reasoning markers ("Therefore, ", "So ") when the reasoning knob is on. Requirement inputs
    (named like `targets`, `target_value`, `requirements`) are not source text: each block's
    how-to line ("How to write it: ...") is echoed into the text with the grounding probability,
    the toy's way of following an instruction.
    Judge-like requests (numeric, bool or Literal outputs about a candidate input) are scored
    by `judge_features` (overlap with a source, coverage of the instruction, repetition, JSON
    debris, length, vocabulary, reasoning where asked). A Literal whose every option is described
    in another input ("- Name: description" lines) is answered with the option whose description
    shares the largest share of its words with the candidate. Optimizer requests that rewrite an
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

Modules (one job each; this package re-exports their public names)
    options (settings, injected errors, banner); prompt (parsing adapter prompts); knobs
    (instruction knobs); features (measurable text properties); fields (field roles, input
    values); frames (sentence frames); writer (`_Writer`, composing text) with its mixins passages
    (composed passages), picks (copied items, options, questions, titles), reasoning (steps,
    math) and rewrite (optimizer instruction rewrites); judge (`_Judge`, scores); values
    (`value_for`, values for JSON schemas); profiles (`similarity`); aspects (what criteria can
    name); grouping (`_Grouping`) with grouping_shapes (recognising grouping requests) and
    grouping_criteria (proposing, merging, condensing criteria); compose (`compose_answer`,
    `render`); engine (`Simulator`, `SimEngine`, `AsyncSimEngine`, `SimLM`).
"""

from synthdspy.simulator.compose import compose_answer, render
from synthdspy.simulator.engine import (
    SIMULATOR_BUILD,
    AsyncSimEngine,
    SimCall,
    SimEngine,
    SimLM,
    SimReply,
    Simulator,
)
from synthdspy.simulator.features import (
    SENSIBLE_WORDS,
    asks_for_reasoning,
    content_words,
    count_tokens,
    coverage,
    debris,
    judge_features,
    length_score,
    overlap,
    repetition,
    richness,
    split_sentences,
)
from synthdspy.simulator.grouping import CLUSTER_THRESHOLD, VERIFY_THRESHOLD
from synthdspy.simulator.judge import score_range
from synthdspy.simulator.knobs import KNOB_PHRASES, KNOBS, detect_knobs
from synthdspy.simulator.options import (
    SIMULATOR_BANNER,
    SimOptions,
    SimulatedRateLimitError,
    SimulatedServerError,
    SimulatedTransientError,
    simulator_banner,
)
from synthdspy.simulator.profiles import TextProfile, similarity
from synthdspy.simulator.prompt import FieldSpec, ParsedPrompt, parse_prompt
from synthdspy.simulator.values import value_for

__all__ = [
    "CLUSTER_THRESHOLD",
    "SIMULATOR_BUILD",
    "KNOBS",
    "KNOB_PHRASES",
    "SENSIBLE_WORDS",
    "SIMULATOR_BANNER",
    "VERIFY_THRESHOLD",
    "AsyncSimEngine",
    "FieldSpec",
    "ParsedPrompt",
    "SimCall",
    "SimEngine",
    "SimLM",
    "SimOptions",
    "SimReply",
    "SimulatedRateLimitError",
    "SimulatedServerError",
    "SimulatedTransientError",
    "Simulator",
    "TextProfile",
    "asks_for_reasoning",
    "compose_answer",
    "content_words",
    "count_tokens",
    "coverage",
    "debris",
    "detect_knobs",
    "judge_features",
    "length_score",
    "overlap",
    "parse_prompt",
    "render",
    "repetition",
    "richness",
    "score_range",
    "similarity",
    "simulator_banner",
    "split_sentences",
    "value_for",
]
