"""``self_instruct``: new instruction/input/output tasks bootstrapped from a pool of seed tasks
(Wang et al. 2023, "Self-Instruct", sections 2.2-2.3).

Each call shows the LM ``num_examples`` tasks sampled from the pool and asks for ``num_tasks`` new
ones. A new task is kept only when the ROUGE-L F-measure of its instruction against every
instruction already in the pool stays below ``rouge_threshold`` (0.7 in the paper), and kept tasks
join the pool, so later calls both see them as examples and must differ from them.

The pool lives in memory, one per task object: across concurrent units of one process it is
shared under a lock (check-and-add is atomic), but which of two near-duplicate tasks from
different units is kept depends on which unit ran first; separate processes (a resumed run) and
deep copies (compile's candidate programs) each grow their own pool from the seed file, so
novelty is checked best-effort, not globally. A unit that runs again replaces its own earlier
additions rather than being compared with them (see :class:`TaskPool`).
"""

from __future__ import annotations

import copy
import random
import re
import threading
from pathlib import Path
from typing import Any

import dspy
from pydantic import Field, field_validator

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.self_instruct import GenerateTasks, TaskExample
from synthdspy.tasks.base import Task, sampling_config
from synthdspy.tasks.rotation import seeded_rng

NO_INPUT = "<noinput>"
BLOCKED_WORDS = ["image", "images", "picture", "pictures", "graph", "graphs", "photo", "video", "audio"]


def as_task(data: dict[str, Any]) -> TaskExample | None:
    """A task from a seed row: ``instruction`` with ``input``/``output`` fields, or with the first of
    ``instances`` (the self-instruct ``seed_tasks.jsonl`` layout); None when there is no instruction.
    ``<noinput>`` becomes an empty input."""
    instruction = str(data.get("instruction") or "").strip()
    if not instruction:
        return None
    first = (data.get("instances") or [{}])[0] if "input" not in data and "output" not in data else data
    text = str(first.get("input") or "").strip()
    return TaskExample(instruction=instruction, input="" if text == NO_INPUT else text,
                       output=str(first.get("output") or "").strip())


def load_pool(path: str | Path) -> list[TaskExample]:
    """The tasks of a pool file (any format :func:`synthdspy.seeds.loading.load_seeds` reads).

    Raises:
        synthdspy.seeds.loading.SeedLoadError: unreadable file.
        ValueError: a row without an instruction (named by number), or no tasks at all.
    """
    from synthdspy.seeds.loading import load_seeds

    tasks = []
    for n, seed in enumerate(load_seeds(path), 1):
        task = as_task(seed.data)
        if task is None:
            raise ValueError(f"{path}: record {n}: a pool task needs a non-empty 'instruction'")
        tasks.append(task)
    if not tasks:
        raise ValueError(f"{path}: the task pool is empty")
    return tasks


class TaskPool:
    """Thread-safe pool of tasks with the ROUGE-L novelty check of Wang et al. 2023, section 2.3.

    Each entry remembers the unit that added it (``origin``: seed id and rollout; ``""`` for the
    seed file). :meth:`admit_batch` compares a unit's candidates (ROUGE-L F-measure of the
    instructions, ``rouge-score``'s default tokenizer, no stemming) with every entry of the seed
    file and of *other* units, and with the candidates it kept before them in the batch; a
    candidate is kept when the maximum is below ``threshold``. Running a unit again (a retry, or
    another program in compile) first drops what that unit added before, so a unit is never
    rejected for repeating itself. Deep copies get their own lock and entry list.
    """

    def __init__(self, tasks: list[TaskExample], threshold: float) -> None:
        from rouge_score.rouge_scorer import RougeScorer

        self.entries: list[tuple[TaskExample, str]] = [(t, "") for t in tasks]
        self.threshold = threshold
        self.scorer = RougeScorer(["rougeL"], use_stemmer=False)
        self.rejected = 0
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict) -> TaskPool:
        new = copy.copy(self)
        new.entries = list(self.entries)
        new._lock = threading.Lock()
        return new

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def tasks(self) -> list[TaskExample]:
        """A snapshot of the pool's tasks, seed-file tasks first."""
        with self._lock:
            return [t for t, _ in self.entries]

    def sample(self, rng: random.Random, k: int, exclude: str = "") -> list[TaskExample]:
        """``k`` distinct tasks (fewer if the pool is smaller) whose instruction is not ``exclude``."""
        candidates = [t for t in self.tasks if t.instruction != exclude]
        return rng.sample(candidates, min(k, len(candidates)))

    def nearest(self, instruction: str, tasks: list[TaskExample]) -> tuple[float, str]:
        """(max ROUGE-L F-measure, the most similar instruction) of ``instruction`` against ``tasks``."""
        best, match = 0.0, ""
        for t in tasks:
            score = self.scorer.score(t.instruction, instruction)["rougeL"].fmeasure
            if score > best:
                best, match = score, t.instruction
        return best, match

    def admit_batch(self, tasks: list[TaskExample], origin: str) -> list[tuple[bool, float, str]]:
        """Check a unit's candidates in order and add the novel ones under ``origin`` (non-empty);
        returns (added, max ROUGE-L, most similar instruction) per candidate."""
        with self._lock:
            self.entries = [(t, o) for t, o in self.entries if o != origin]
            against = [t for t, _ in self.entries]
            results = []
            for task in tasks:
                score, match = self.nearest(task.instruction, against)
                added = score < self.threshold
                if added:
                    against.append(task)
                    self.entries.append((task, origin))
                else:
                    self.rejected += 1
                results.append((added, score, match))
        return results


class SelfInstructParams(Params):
    """Parameters of the ``self_instruct`` task; ``pool`` is the seed-task file (usually the same as
    ``[seeds] source``), a path relative to the working directory."""

    pool: str = Field(description="JSONL/JSON/CSV/Parquet of seed tasks: instruction + input/output or instances")
    num_examples: int = Field(3, ge=1, le=20, description="in-context tasks per call")
    num_tasks: int = Field(5, ge=1, le=20, description="new tasks asked for per call")
    rouge_threshold: float = Field(0.7, gt=0, le=1, description="keep a task only if max ROUGE-L < this")
    blocked_words: list[str] = Field(default_factory=lambda: list(BLOCKED_WORDS),
                                     description="drop instructions with these words (text-only model)")

    @field_validator("pool")
    @classmethod
    def _exists(cls, value: str) -> str:
        if not Path(value).is_file():
            raise ValueError(f"no such task pool file {value!r}")
        return value


@register_task("self_instruct", SelfInstructParams)
class SelfInstructTask(Task):
    """New instruction/input/output tasks from pool tasks, kept if ROUGE-L-novel (Self-Instruct).

    One record per kept task.

    The in-context tasks are the seed's own task (when it has one) and others sampled from the pool
    with an RNG seeded by (seed id, rollout). A task is dropped when its instruction is empty,
    mentions a ``blocked_words`` word (Wang et al. 2023, section 2.3: things a text model cannot
    do) or is too similar to the pool (see :class:`TaskPool`). Metadata: ``rouge_l_max``,
    ``most_similar`` and ``examples`` (the in-context instructions).
    """

    name = "self_instruct"

    def __init__(self, pool: str, num_examples: int = 3, num_tasks: int = 5, rouge_threshold: float = 0.7,
                 blocked_words: list[str] | None = None) -> None:
        super().__init__()
        self.pool = TaskPool(load_pool(pool), rouge_threshold)
        self.num_examples, self.num_tasks = num_examples, num_tasks
        self.blocked = {w.lower() for w in (BLOCKED_WORDS if blocked_words is None else blocked_words)}
        self.generate = dspy.Predict(GenerateTasks)

    def blocked_word(self, instruction: str) -> bool:
        """True when ``instruction`` contains one of the blocked words (whole words, any case)."""
        return bool(self.blocked & set(re.findall(r"[a-z]+", instruction.lower())))

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        own = as_task(seed.data)
        rng = seeded_rng(self.name, seed.id, rollout)
        examples = ([own] if own else []) + self.pool.sample(
            rng, self.num_examples - (1 if own else 0), exclude=own.instruction if own else ""
        )
        pred = self.generate(examples=examples, num_tasks=self.num_tasks, config=sampling_config(rollout))
        candidates = []
        for i, task in enumerate(pred.tasks[: self.num_tasks]):
            task = TaskExample(instruction=task.instruction.strip(),
                               input="" if task.input.strip() == NO_INPUT else task.input.strip(),
                               output=task.output.strip())
            if task.instruction and not self.blocked_word(task.instruction):
                candidates.append((i, task))
        verdicts = self.pool.admit_batch([t for _, t in candidates], origin=f"{seed.id}#{rollout}")
        return [
            self.record(
                seed, rollout, i, instruction=task.instruction, input=task.input, output=task.output,
                metadata={"rouge_l_max": round(score, 4), "most_similar": match,
                          "examples": [e.instruction for e in examples]},
            )
            for (i, task), (added, score, match) in zip(candidates, verdicts, strict=True)
            if added
        ]
