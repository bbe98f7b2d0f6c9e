"""Criteria for grouping requests (`_Criteria`, mixed into `_Grouping`): proposed from the samples,
merged to exactly `k` from a name -> definitions input, or condensed one sentence per named item."""

from __future__ import annotations

import re
import statistics
from typing import Any

from synthdspy.simulator.aspects import _CATEGORIES, _SCALES, _Aspect, _aspect_for
from synthdspy.simulator.features import split_sentences
from synthdspy.simulator.fields import _NAME_KEYS, _as_list, _as_text, _lower_first, _name_words, _named, _singular
from synthdspy.simulator.grouping_shapes import _DEFINITION_KEYS, _KIND_KEYS, _SCALE_WORDS, _indexed_texts, _prop_of
from synthdspy.simulator.prompt import FieldSpec
from synthdspy.simulator.values import _count_hint


class _Criteria:
    """`_Grouping`'s criteria methods; they use its prompt, samples (`texts`), writer, rng and `_fill`."""

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
