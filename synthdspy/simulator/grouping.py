"""Grouping requests (`_Grouping`, the LLM cluster-agent's steps): cluster indexed samples and verify
clusters by measuring the samples; criteria come from the `_Criteria` mixin (`grouping_criteria`),
request shapes are recognised in `grouping_shapes`."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from synthdspy.simulator.aspects import _CATEGORIES, _SCALES, _aspect_for, _topic_value
from synthdspy.simulator.features import _frequent_words, content_words, judge_features
from synthdspy.simulator.fields import _NAME_KEYS, _name_words
from synthdspy.simulator.grouping_criteria import _Criteria
from synthdspy.simulator.grouping_shapes import (
    _DEFINITION_KEYS,
    _cluster_list,
    _indexed_texts,
    _int_list,
    _int_list_prop,
    _parse_criteria,
    _prop_of,
    _props,
    _scale_range,
)
from synthdspy.simulator.profiles import TextProfile, _without_shared_stems, similarity
from synthdspy.simulator.prompt import ParsedPrompt
from synthdspy.simulator.values import value_for
from synthdspy.simulator.writer import _Writer

CLUSTER_THRESHOLD = 0.3  # average-linkage clustering merges groups at least this similar
VERIFY_THRESHOLD = 0.25  # a multi-sample cluster less cohesive than this is judged invalid


@dataclass
class _Grouping(_Criteria):
    """Answers grouping requests by measuring the samples (see the `synthdspy.simulator` docstring).

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
