"""Mixture-weighted, curriculum-paced token streams, and fixed evaluation windows.

Training documents are packed end to end (an EOT id between documents) into one token array per
*cell*: a group (a source, or one ``group_by`` value of it) crossed with a curriculum stage. A
training row is a random window of ``block_size + 1`` tokens from one cell (nanoGPT's sampler,
generalised to a mixture). The cell of each row is drawn with probability

    P(cell = (g, k) | step) = m_s * q_g * pi_k(step) / sum_{k' in stages(g)} pi_k'(step)

with ``m_s`` the source's mixture weight, ``q_g`` the group's weight inside its source, and
``pi(step)`` the curriculum schedule's stage weights (renormalised over the stages that the group
has). A source with ``max_repeats = R`` stops being sampled from a cell once that cell has served
``R`` times its tokens. Only training documents enter a stream; evaluation splits never do.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from synthdspy.training.documents import Document
from synthdspy.training.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class StreamExhausted(RuntimeError):
    """Every cell has served its ``max_repeats`` budget (or the schedule weighs only empty cells)."""


def pack(docs: Sequence[Document], tok: Tokenizer, min_tokens: int) -> np.ndarray:
    """Token ids of ``docs`` joined by ``tok.eot_id`` (int32, shape ``[n]``).

    An array shorter than ``min_tokens`` is repeated (EOT between copies) until it is long enough,
    so a window of ``min_tokens`` always fits.
    """
    parts: list[np.ndarray] = []
    eot = np.array([tok.eot_id], dtype=np.int32)
    for i, doc in enumerate(docs):
        if i:
            parts.append(eot)
        parts.append(tok.encode(doc.text))
    arr = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    if len(arr) == 0:
        raise ValueError("cannot pack an empty set of documents")
    return repeat_to(arr, min_tokens, tok.eot_id)


def repeat_to(tokens: np.ndarray, min_tokens: int, eot_id: int) -> np.ndarray:
    """``tokens`` (int32 ids, shape ``[n]``) repeated with ``eot_id`` between copies until at least
    ``min_tokens`` long; returned unchanged when it already is."""
    eot = np.array([eot_id], dtype=np.int32)
    while len(tokens) < min_tokens:
        tokens = np.concatenate([tokens, eot, tokens])
    return tokens


@dataclass
class Cell:
    """The packed training tokens of one group at one curriculum stage."""

    group: str
    source: str
    stage: int
    tokens: np.ndarray
    budget: float  # tokens this cell may serve (inf without max_repeats)
    served: int = 0


class MixtureStream:
    """Draws training batches ``(x, y)``, each ``[batch_size, block_size]`` int64, by mixture and schedule.

    Args:
        cells: the packed training cells (see :func:`build_cells`).
        source_weights: source name -> mixture weight ``m_s`` (normalised here).
        group_weights: group name -> weight ``q_g`` inside its source (normalised per source).
        stage_weights: ``step -> list of stage weights`` (a curriculum schedule's ``weights``).
        block_size, batch_size: the window length and rows per batch.
        seed: the sampler's seed (numpy PCG64); :meth:`state_dict` captures it for resume.

    Raises:
        ValueError: a source weight for a source with no cell, or all weights zero.
    """

    def __init__(
        self,
        cells: Sequence[Cell],
        source_weights: Mapping[str, float],
        group_weights: Mapping[str, float],
        stage_weights: Callable[[int], Sequence[float]],
        block_size: int,
        batch_size: int,
        seed: int,
    ) -> None:
        self.cells = list(cells)
        missing = set(source_weights) - {c.source for c in self.cells}
        if missing:
            raise ValueError(f"sources with a weight but no training documents: {sorted(missing)}")
        total = sum(source_weights.values())
        if total <= 0:
            raise ValueError("every source weight is zero")
        self.m = {s: w / total for s, w in source_weights.items()}
        per_source: dict[str, float] = {}
        groups = {c.group: c.source for c in self.cells}
        for g, s in groups.items():
            per_source[s] = per_source.get(s, 0.0) + group_weights.get(g, 0.0)
        self.q = {
            g: group_weights.get(g, 0.0) / per_source[s] if per_source[s] else 0.0 for g, s in groups.items()
        }
        self.stage_weights = stage_weights
        self.block_size, self.batch_size = block_size, batch_size
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.rows = np.zeros(len(self.cells), dtype=np.int64)

    def cell_probs(self, step: int) -> np.ndarray:
        """Probability of each cell at ``step`` (shape ``[n_cells]``, sums to 1).

        Raises:
            StreamExhausted: when no cell with remaining budget has weight.
        """
        pi = list(self.stage_weights(step))
        live = [c.served < c.budget for c in self.cells]
        norm: dict[str, float] = {}
        for c, ok in zip(self.cells, live, strict=True):
            if ok:
                norm[c.group] = norm.get(c.group, 0.0) + pi[c.stage]
        p = np.array(
            [
                self.m.get(c.source, 0.0) * self.q[c.group] * pi[c.stage] / norm[c.group]
                if ok and norm[c.group] > 0
                else 0.0
                for c, ok in zip(self.cells, live, strict=True)
            ]
        )
        if p.sum() <= 0:
            raise StreamExhausted(f"no training cell left to sample at step {step}")
        return p / p.sum()

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The training batch of ``step``: inputs ``x`` and next-token targets ``y``, both ``[B, T]``."""
        T = self.block_size
        chosen = self.rng.choice(len(self.cells), size=self.batch_size, p=self.cell_probs(step))
        highs = np.array([len(self.cells[i].tokens) - T for i in chosen])
        offsets = self.rng.integers(0, highs)
        rows = np.stack([self.cells[i].tokens[o : o + T + 1] for i, o in zip(chosen, offsets, strict=True)])
        for i in chosen:
            self.cells[i].served += T
            self.rows[i] += 1
        data = torch.from_numpy(rows.astype(np.int64))
        return data[:, :-1], data[:, 1:]

    def state_dict(self) -> dict:
        """Sampler state for checkpoints: RNG state, tokens served and rows drawn per cell."""
        return {
            "rng": self.rng.bit_generator.state,
            "served": [c.served for c in self.cells],
            "rows": self.rows.tolist(),
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict` (the same cells, in the same order)."""
        self.rng.bit_generator.state = state["rng"]
        for c, s in zip(self.cells, state["served"], strict=True):
            c.served = s
        self.rows = np.array(state["rows"], dtype=np.int64)


def build_cells(
    docs: Sequence[Document],
    tok: Tokenizer,
    block_size: int,
    max_repeats: Mapping[str, float | None],
) -> list[Cell]:
    """Pack training documents into one :class:`Cell` per (group, stage), sorted by group then stage."""
    by_cell: dict[tuple[str, int], list[Document]] = {}
    for d in docs:
        by_cell.setdefault((d.group, d.stage), []).append(d)
    cells = []
    for (group, stage), members in sorted(by_cell.items()):
        tokens = pack(members, tok, block_size + 1)
        repeats = max_repeats.get(members[0].source)
        budget = float("inf") if repeats is None else repeats * len(tokens)
        cells.append(Cell(group=group, source=members[0].source, stage=stage, tokens=tokens, budget=budget))
    return cells


@dataclass
class EvalSet:
    """A named evaluation split as fixed windows: ``x``, ``y`` of shape ``[n_windows, block_size]``.

    ``tokens_per_byte`` (tokens / UTF-8 bytes of the split) converts nats per token into bits per
    byte: ``bpb = loss * tokens_per_byte / ln 2``.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    tokens_per_byte: float


def make_eval_set(
    name: str, docs: Sequence[Document], tok: Tokenizer, block_size: int, n_windows: int
) -> EvalSet:
    """Fixed windows over a split: every non-overlapping window when there are at most ``n_windows``,
    else ``n_windows`` random windows drawn with a seed derived from ``name`` (the same every run).

    ``tokens_per_byte`` counts the split's own tokens (EOT-joined), not the copies that fill a
    window when the split is shorter than ``block_size + 1`` tokens (then a warning is logged).
    """
    joined = pack(docs, tok, 0)
    if len(joined) < block_size + 1:
        log.warning("split %s has %d tokens, less than one window (%d): it is repeated to fill it, "
                    "so its loss is optimistic", name, len(joined), block_size + 1)
    tokens = repeat_to(joined, block_size + 1, tok.eot_id)
    n_bytes = sum(len(d.text.encode("utf-8")) for d in docs)
    T = block_size
    n_full = (len(tokens) - 1) // T
    if n_full <= n_windows:
        offsets = np.arange(n_full) * T
    else:
        rng = np.random.Generator(np.random.PCG64(zlib.crc32(name.encode())))
        offsets = np.sort(rng.integers(0, len(tokens) - T, size=n_windows))
    rows = torch.from_numpy(np.stack([tokens[o : o + T + 1] for o in offsets]).astype(np.int64))
    return EvalSet(name=name, x=rows[:, :-1], y=rows[:, 1:], tokens_per_byte=len(joined) / max(n_bytes, 1))
