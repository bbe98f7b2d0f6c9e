"""Shipped seed catalogs (topics, personas, styles, TinyStories words, dimensions) and their samplers.

The catalogs are editable JSON files in ``synthdspy/data``; every loader takes an optional path so
a user can ship their own file with the same shape. Each entry is validated with pydantic and a
bad entry raises :class:`CatalogError` naming the file and the entry.

The samplers are seeded and index-addressed: draw ``i`` depends only on ``(seed, i)``, so the same
seed gives the same draws in any order, and a resumed run re-draws exactly what it drew before.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    ValidationError,
    model_validator,
)

from synthdspy.records import Seed, content_hash

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SHARE_TOLERANCE = 1e-6

M = TypeVar("M", bound=BaseModel)


class CatalogError(ValueError):
    """A catalog file is missing, not JSON, or has an invalid entry; the message names file and entry."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Topic(_Entry):
    """A hierarchical topic: a high-level ``topic``, 3-6 ``subtopics`` and 5-10 ``keywords``."""

    topic: str = Field(min_length=1)
    subtopics: list[str] = Field(min_length=3, max_length=6)
    keywords: list[str] = Field(min_length=5, max_length=10)


class Persona(RootModel[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]]):
    """One target-audience persona: a non-empty sentence."""


class Style(_Entry):
    """A writing style (for example ``wikihow``) and how to write in it."""

    name: str = Field(min_length=1)
    description: str = Field(min_length=1)


class StoryFeature(_Entry):
    """A TinyStories story feature (``dialogue``, ``plot twist`` ...) and the instruction it adds."""

    name: str = Field(min_length=1)
    instruction: str = Field(min_length=1)


class StoryWords(_Entry):
    """Vocabulary for TinyStories prompts (Eldan & Li 2023, section 2): simple words and story features."""

    verbs: list[str] = Field(min_length=1)
    nouns: list[str] = Field(min_length=1)
    adjectives: list[str] = Field(min_length=1)
    features: list[StoryFeature] = Field(min_length=1)


class DimensionValue(_Entry):
    """One value of a generation dimension, with its ``target_share`` in [0, 1] of generated examples."""

    name: str = Field(min_length=1)
    meaning: str = Field(min_length=1)
    instructions: str = Field(min_length=1)
    training_goal: str = Field(min_length=1)
    target_share: float = Field(ge=0.0, le=1.0)


class Dimension(_Entry):
    """An information dimension (Format, Style ...) and its values; the shares must sum to 1."""

    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    values: list[DimensionValue] = Field(min_length=2)

    @model_validator(mode="after")
    def _check_values(self) -> Dimension:
        names = [v.name for v in self.values]
        if len(set(names)) != len(names):
            raise ValueError(f"value names repeat: {names}")
        total = sum(v.target_share for v in self.values)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"target_share values sum to {total:.6g}, expected 1")
        return self


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from exc


def _validate(model: type[M], raw: Any, where: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(entry)'}: {e['msg']}" for e in exc.errors())
        raise CatalogError(f"{where}: {problems}") from None


def _load_list(path: str | Path | None, default: str, model: type[M], label: str) -> list[M]:
    file = Path(path) if path is not None else DATA_DIR / default
    raw = _read_json(file)
    if not isinstance(raw, list) or not raw:
        raise CatalogError(f"{file}: expected a non-empty JSON list of {label}s")
    out = []
    for i, item in enumerate(raw):
        name = (item.get("name") or item.get("topic")) if isinstance(item, dict) else None
        out.append(_validate(model, item, f"{file}: {label} {i}" + (f" ({name!r})" if name else "")))
    return out


def load_topics(path: str | Path | None = None) -> list[Topic]:
    """Topics from ``path`` (default: the shipped ``topics.json``, 128 topics): a JSON list of Topic.

    Raises:
        CatalogError: missing file, invalid JSON, or an entry that fails validation (named by index).
    """
    return _load_list(path, "topics.json", Topic, "topic")


def load_personas(path: str | Path | None = None) -> list[str]:
    """Persona sentences from ``path`` (default: shipped ``personas.json``): a JSON list of strings.

    Raises:
        CatalogError: as :func:`load_topics`.
    """
    return [p.root for p in _load_list(path, "personas.json", Persona, "persona")]


def load_styles(path: str | Path | None = None) -> list[Style]:
    """Writing styles from ``path`` (default: the four styles of Chen et al. 2024, section 3.4).

    Raises:
        CatalogError: as :func:`load_topics`.
    """
    return _load_list(path, "styles.json", Style, "style")


def load_dimensions(path: str | Path | None = None) -> list[Dimension]:
    """Generation dimensions from ``path`` (default: the nine shipped dimensions).

    Raises:
        CatalogError: as :func:`load_topics`, also when a dimension's shares do not sum to 1 or
        two dimensions share a name.
    """
    dims = _load_list(path, "dimensions.json", Dimension, "dimension")
    names = [d.name for d in dims]
    if len(set(names)) != len(names):
        raise CatalogError(f"{path or DATA_DIR / 'dimensions.json'}: dimension names repeat: {names}")
    return dims


def load_story_words(path: str | Path | None = None) -> StoryWords:
    """TinyStories vocabulary from ``path`` (default: shipped ``tinystories_words.json``).

    Raises:
        CatalogError: missing file, invalid JSON, or a field that fails validation.
    """
    file = Path(path) if path is not None else DATA_DIR / "tinystories_words.json"
    return _validate(StoryWords, _read_json(file), str(file))


def _rng(kind: str, seed: int, index: int) -> random.Random:
    """A generator for draw ``index``: depends only on (kind, seed, index), not on earlier draws."""
    return random.Random(f"{kind}/{seed}/{index}")


class TopicSampler:
    """Seeded topic draws for textbook generation (Chen et al. 2024, section 3.4 and appendix F).

    Each draw holds ``n_topics`` topics (1 for the Topic, Topic-Styles and Topic-Styles-Persona
    templates; 2 or more for Multi-Topic-Styles-Persona), a sample of each topic's keywords, one
    style (unless ``use_style`` is False) and ``n_personas`` candidate personas (0 for none) from
    which the generator picks the most fitting audience.
    """

    def __init__(
        self,
        topics: list[Topic] | None = None,
        styles: list[Style] | None = None,
        personas: list[str] | None = None,
        seed: int = 0,
        n_topics: int = 1,
        n_keywords: int = 5,
        n_personas: int = 5,
        use_style: bool = True,
    ) -> None:
        """Catalogs default to the shipped files.

        Raises:
            ValueError: when a count is out of range (``n_topics`` above the number of topics,
                ``n_personas`` above the number of personas, ``n_keywords`` < 1).
        """
        self.topics = topics if topics is not None else load_topics()
        self.styles = styles if styles is not None else load_styles()
        self.personas = personas if personas is not None else load_personas()
        if not 1 <= n_topics <= len(self.topics):
            raise ValueError(f"n_topics={n_topics}: expected 1..{len(self.topics)}")
        if not 0 <= n_personas <= len(self.personas):
            raise ValueError(f"n_personas={n_personas}: expected 0..{len(self.personas)}")
        if n_keywords < 1:
            raise ValueError(f"n_keywords={n_keywords}: expected at least 1")
        self.seed, self.n_topics, self.n_keywords = seed, n_topics, n_keywords
        self.n_personas, self.use_style = n_personas, use_style

    def draw(self, index: int) -> Seed:
        """Draw number ``index``: a Seed whose ``data`` has ``topic``, ``subtopics``, ``keywords``
        (of the first topic), ``topics`` (all drawn topics, each with its keywords), ``style``
        ({name, description}, if enabled) and ``personas`` (list of strings, if any)."""
        rng = _rng("topic", self.seed, index)
        picked = [
            {
                "topic": t.topic,
                "subtopics": list(t.subtopics),
                "keywords": rng.sample(t.keywords, min(self.n_keywords, len(t.keywords))),
            }
            for t in rng.sample(self.topics, self.n_topics)
        ]
        data: dict[str, Any] = {**picked[0], "topics": picked}
        if self.use_style:
            data["style"] = rng.choice(self.styles).model_dump()
        if self.n_personas:
            data["personas"] = rng.sample(self.personas, self.n_personas)
        return Seed(id=content_hash("topic", self.seed, index, data), data=data)

    def sample(self, n: int, start: int = 0) -> list[Seed]:
        """Draws ``start`` .. ``start + n - 1``."""
        return [self.draw(i) for i in range(start, start + n)]


class DimensionSampler:
    """Seeded draws of one value per generation dimension, following each dimension's target shares.

    ``shares`` optionally replaces the shipped mixture of some dimensions ({dimension: {value:
    weight}}), as a tuner would; weights are normalised to sum to 1 and values left out get 0.
    """

    def __init__(
        self,
        dimensions: list[Dimension] | None = None,
        seed: int = 0,
        shares: dict[str, dict[str, float]] | None = None,
    ) -> None:
        """Catalog defaults to the shipped dimensions.

        Raises:
            ValueError: a ``shares`` key naming an unknown dimension or value, a negative weight,
                or weights summing to 0.
        """
        self.dimensions = dimensions if dimensions is not None else load_dimensions()
        self.seed = seed
        self.shares = {d.name: {v.name: v.target_share for v in d.values} for d in self.dimensions}
        for dim, weights in (shares or {}).items():
            if dim not in self.shares:
                raise ValueError(f"shares: unknown dimension {dim!r}; known: {', '.join(self.shares)}")
            unknown = set(weights) - set(self.shares[dim])
            if unknown:
                raise ValueError(f"shares[{dim!r}]: unknown values {sorted(unknown)}")
            if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"shares[{dim!r}]: weights must be >= 0 with a positive sum")
            total = sum(weights.values())
            self.shares[dim] = {v: weights.get(v, 0.0) / total for v in self.shares[dim]}

    def draw(self, index: int) -> dict[str, str]:
        """Draw ``index``: {dimension name: value name} (the shape of ``Record.dimensions``)."""
        rng = _rng("dimensions", self.seed, index)
        return {
            dim: rng.choices(list(weights), weights=list(weights.values()))[0]
            for dim, weights in self.shares.items()
        }

    def sample(self, n: int, start: int = 0) -> list[dict[str, str]]:
        """Draws ``start`` .. ``start + n - 1``."""
        return [self.draw(i) for i in range(start, start + n)]

    def details(self, choice: dict[str, str]) -> list[dict[str, str]]:
        """The prompt rows for a draw: per dimension its name, description, and the chosen value's
        name, meaning, instructions and training goal.

        Raises:
            KeyError: when ``choice`` names a dimension or value not in the catalog.
        """
        rows = []
        for dim in self.dimensions:
            value = next((v for v in dim.values if v.name == choice[dim.name]), None)
            if value is None:
                raise KeyError(f"dimension {dim.name!r} has no value {choice[dim.name]!r}")
            rows.append(
                {
                    "dimension": dim.name,
                    "description": dim.description,
                    "value": value.name,
                    "meaning": value.meaning,
                    "instructions": value.instructions,
                    "training_goal": value.training_goal,
                }
            )
        return rows


class WordSampler:
    """Seeded TinyStories word draws (Eldan & Li 2023, section 2): one verb, one noun, one adjective
    and between ``min_features`` and ``max_features`` story features."""

    def __init__(
        self, words: StoryWords | None = None, seed: int = 0, min_features: int = 1, max_features: int = 3
    ) -> None:
        """Vocabulary defaults to the shipped words.

        Raises:
            ValueError: unless 0 <= min_features <= max_features <= number of features.
        """
        self.words = words if words is not None else load_story_words()
        if not 0 <= min_features <= max_features <= len(self.words.features):
            raise ValueError(
                f"features: need 0 <= min_features ({min_features}) <= max_features ({max_features}) "
                f"<= {len(self.words.features)}"
            )
        self.seed, self.min_features, self.max_features = seed, min_features, max_features

    def draw(self, index: int) -> Seed:
        """Draw ``index``: a Seed with ``verb``, ``noun``, ``adjective`` (strings), ``features``
        (names) and ``feature_instructions`` (the matching instructions)."""
        rng = _rng("words", self.seed, index)
        w = self.words
        k = rng.randint(self.min_features, self.max_features)
        feats = rng.sample(w.features, k)
        data = {
            "verb": rng.choice(w.verbs),
            "noun": rng.choice(w.nouns),
            "adjective": rng.choice(w.adjectives),
            "features": [f.name for f in feats],
            "feature_instructions": [f.instruction for f in feats],
        }
        return Seed(id=content_hash("words", self.seed, index, data), data=data)

    def sample(self, n: int, start: int = 0) -> list[Seed]:
        """Draws ``start`` .. ``start + n - 1``."""
        return [self.draw(i) for i in range(start, start + n)]
