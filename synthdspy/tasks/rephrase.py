"""``rephrase``: real passages rewritten in the four styles of Rephrase the Web (Maini et al. 2024, section 3)."""

from __future__ import annotations

from typing import Literal

import dspy
from pydantic import Field

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.augment import RephrasePassage
from synthdspy.tasks.base import Task, require, sampling_config
from synthdspy.tasks.rotation import rotate

RephraseStyle = Literal["easy", "medium", "hard", "qa"]

STYLE_GUIDES: dict[str, str] = {
    "easy": "easy: words and short sentences a small child understands; explain anything harder in plain terms.",
    "medium": "medium: clear, varied, high-quality English in the neutral register of an encyclopedia article.",
    "hard": "hard: terse, dense scholarly prose with rare and technical vocabulary, as written for experts.",
    "qa": "qa: a series of questions, each written as 'Question:' and followed by its 'Answer:', that "
    "together convey the whole passage.",
}


class RephraseParams(Params):
    """Parameters of the ``rephrase`` task: the styles to use (default all four)."""

    styles: list[RephraseStyle] = Field(default_factory=lambda: list(STYLE_GUIDES), min_length=1)


@register_task("rephrase", RephraseParams)
class RephraseTask(Task):
    """A real passage rephrased in one of the Rephrase-the-Web styles (easy, medium, hard, qa).

    One rephrasing of the seed's ``source`` per seed and rollout.

    Styles (Maini et al. 2024): ``easy`` (toddler vocabulary), ``medium`` (encyclopedic), ``hard``
    (scholarly) and ``qa`` (question/answer conversation). The style rotates: rollout 0 spreads the
    styles over seeds by a hash of the seed id, and rollouts 1, 2, ... of a seed take the next styles,
    so ``len(styles)`` rollouts give every seed every style (one LM call, one record per unit).
    The passage is kept in ``record.input`` for grounding gates; ``metadata.style`` names the style.
    """

    name = "rephrase"

    def __init__(self, styles: list[str] | None = None) -> None:
        super().__init__()
        self.styles = list(styles or STYLE_GUIDES)
        self.rephrase = dspy.Predict(RephrasePassage)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        (source,) = require(seed, self.name, "source")
        style = rotate(self.styles, seed.id, rollout)
        pred = self.rephrase(passage=source, style=STYLE_GUIDES[style], config=sampling_config(rollout))
        return [
            self.record(
                seed, rollout, 0, instruction=f"Rephrase the passage in the {style} style.", input=source,
                output=pred.rephrased.strip(), metadata={"style": style},
            )
        ]
