"""Judge scores (`_Judge`): numbers, flags and labels for judge-like requests, measured with
`judge_features`, within the score range a field states (`score_range`)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from synthdspy.simulator.features import judge_features
from synthdspy.simulator.fields import _name_words, _stems

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
    context: str = ""

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
        described = self.described(options)
        if described:
            text = _stems(self.candidates[names[0]])
            fit = [len(_stems(d) & text) / max(1, len(_stems(d))) + self.noise() for d in described]
            best = [o for o, f in zip(options, fit, strict=True) if f == max(fit)]
            return best[self.rng.randrange(len(best))]
        index = round(min(1.0, max(0.0, quality)) * (len(options) - 1))
        return options[index]

    def described(self, options: list) -> list[str] | None:
        """Each option's description line in the request's other inputs ("- Name: meaning"), or
        None unless every option has one. A classification into described options is answered
        with the option whose description shares most words with the candidate (`label`)."""
        lines = [line.strip().lstrip("-*").strip() for line in self.context.splitlines()]
        found = [next((line for line in lines if line.lower().startswith(f"{str(o).lower()}:")), None)
                 for o in options]
        return None if None in found else found

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
