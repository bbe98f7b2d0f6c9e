"""Reasoning the writer composes (`_Reasoning`, mixed into `_Writer`): numbered steps, a quiz
answer explained, and plausible-looking arithmetic."""

from __future__ import annotations

import re

from synthdspy.simulator.fields import _cap, _mid, _name_words


class _Reasoning:
    """`_Writer`'s reasoning and math methods; they use the writer's fields (knobs, siblings,
    target, topic, source, rng) and its sentence helpers."""

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
