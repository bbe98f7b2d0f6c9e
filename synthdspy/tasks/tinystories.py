"""``tinystories``: children's stories that must use sampled words and features (Eldan & Li 2023, section 2).

Diversity comes from the prompt: each seed (``builtin:words``) holds a random verb, noun and
adjective from a small-child vocabulary and a random set of story features.
"""

from __future__ import annotations

import re

import dspy

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.stories import WriteStory
from synthdspy.tasks.base import Task, require, sampling_config

_WORD = re.compile(r"[a-z]+")
_SUFFIXES = ("", "s", "es", "ed", "d", "ing", "er", "ers", "est", "ly")


def word_forms(word: str) -> set[str]:
    """Regular inflections of ``word`` (lower case): plain suffixes, a final ``e`` dropped before
    ``-ing``/``-ed``, ``y`` -> ``ies``/``ied``/``ier``/``iest``, and a doubled final consonant
    (``run`` -> ``running``). Irregular forms (``ran``, ``mice``) are not covered."""
    w = word.lower()
    forms = {w + s for s in _SUFFIXES}
    if w.endswith("e"):
        forms |= {w[:-1] + s for s in ("ing", "ed", "er", "est")}
    if w.endswith("y") and len(w) > 2:
        forms |= {w[:-1] + s for s in ("ies", "ied", "ier", "iest", "ily")}
    if len(w) >= 3 and w[-1] not in "aeiouwxy" and w[-2] in "aeiou" and w[-3] not in "aeiou":
        forms |= {w + w[-1] + s for s in ("ing", "ed", "er", "est", "y")}
    return forms


def missing_words(story: str, words: list[str]) -> list[str]:
    """The ``words`` (each possibly several words long) that ``story`` does not use in any regular form
    (see :func:`word_forms`); case-insensitive, whole words only."""
    tokens = _WORD.findall(story.lower())
    vocab = set(tokens)
    joined = " " + " ".join(tokens) + " "
    missing = []
    for word in words:
        parts = _WORD.findall(word.lower())
        if len(parts) == 1:
            found = bool(word_forms(parts[0]) & vocab)
        else:
            found = any(f" {' '.join(parts[:-1])} {form} " in joined for form in word_forms(parts[-1]))
        if not found:
            missing.append(word)
    return missing


class TinyStoriesParams(Params):
    """Parameters of the ``tinystories`` task (none: words and features come from the seeds)."""


@register_task("tinystories", TinyStoriesParams)
class TinyStoriesTask(Task):
    """A 3-5 paragraph story in very simple words using a sampled verb, noun, adjective and features.

    The seed gives ``verb``, ``noun``, ``adjective`` and ``features`` (``feature_instructions`` are
    shown to the LM when present, else the feature names).

    One record per seed and rollout: ``output`` is the story; metadata ``words`` ({verb, noun,
    adjective}), ``features``, ``words_used`` (a deterministic check that all three words occur, in a
    regular inflected form) and ``words_missing``.
    """

    name = "tinystories"

    def __init__(self) -> None:
        super().__init__()
        self.write = dspy.Predict(WriteStory)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        verb, noun, adjective, features = require(seed, self.name, "verb", "noun", "adjective", "features")
        wanted = [str(x) for x in seed.data.get("feature_instructions") or features]
        story = self.write(
            verb=verb, noun=noun, adjective=adjective, features=wanted, config=sampling_config(rollout)
        ).story.strip()
        missing = missing_words(story, [verb, noun, adjective])
        instruction = (
            f"Write a short story in simple words that uses the verb \"{verb}\", the noun \"{noun}\" and the "
            f"adjective \"{adjective}\". Features: {', '.join(map(str, features))}."
        )
        return [
            self.record(
                seed, rollout, 0, instruction=instruction, output=story,
                metadata={"words": {"verb": verb, "noun": noun, "adjective": adjective},
                          "features": list(features), "words_used": not missing, "words_missing": missing},
            )
        ]
