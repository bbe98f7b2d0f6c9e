"""Seeds for an experiment: built-in samplers or a seed file, optionally chunked, split into train/dev."""

from __future__ import annotations

import random

from synthdspy.config import SeedsConfig
from synthdspy.records import Seed, content_hash

BUILTINS = ("builtin:dimensions", "builtin:topics", "builtin:words")


def dimension_seeds(cfg: SeedsConfig, n: int) -> list[Seed]:
    """``n`` seeds for dimension-controlled generation: draw ``i`` joins the ``i``-th
    :class:`~synthdspy.seeds.catalog.DimensionSampler` draw (shipped target shares) with the
    ``i``-th :class:`~synthdspy.seeds.catalog.TopicSampler` draw, both seeded by ``cfg.sampling_seed``.

    Seed ``data``: the topic draw's fields (``topic``, ``subtopics``, ``keywords``, ``topics``,
    ``style``, ``personas``) plus ``dimensions`` ({dimension: value}) and ``dimension_details``
    (one row per dimension: description, value, meaning, instructions, training goal).
    """
    from synthdspy.seeds.catalog import DimensionSampler, TopicSampler

    dims = DimensionSampler(seed=cfg.sampling_seed)
    topics = TopicSampler(seed=cfg.sampling_seed, n_topics=cfg.num_topics, n_personas=cfg.num_personas)
    seeds = []
    for i in range(n):
        choice = dims.draw(i)
        data = {**topics.draw(i).data, "dimensions": choice, "dimension_details": dims.details(choice)}
        seeds.append(Seed(id=content_hash("dimensions", cfg.sampling_seed, i, data), data=data))
    return seeds


def experiment_seeds(cfg: SeedsConfig, n: int) -> list[Seed]:
    """``n`` seeds from ``cfg.source`` (fewer when a file has fewer rows or chunks).

    ``builtin:topics`` draws topic/style/persona seeds, ``builtin:words`` TinyStories word draws,
    ``builtin:dimensions`` dimension values joined with topic draws (:func:`dimension_seeds`); a
    document file (PDF, Markdown, HTML, text), directory or glob gives document chunks with their
    provenance (:func:`synthdspy.seeds.documents.load_documents`), shuffled with ``cfg.sampling_seed``;
    anything else is a file or hub id read by :func:`synthdspy.seeds.loading.load_seeds`, shuffled
    with ``cfg.sampling_seed`` and chunked when ``cfg.chunk_words`` or ``cfg.chunk_tokens`` > 0.

    Raises:
        synthdspy.configio.ConfigError: unknown ``builtin:`` name.
        synthdspy.seeds.loading.SeedLoadError: unreadable, empty or corrupt file, bad row, missing
            or null field, duplicate ids (naming the file, row and field), a seed with no
            ``source`` text to chunk; a document that cannot be read (naming the file).
    """
    from synthdspy.configio import ConfigError

    if cfg.source == "builtin:topics":
        from synthdspy.seeds.catalog import TopicSampler

        sampler = TopicSampler(seed=cfg.sampling_seed, n_topics=cfg.num_topics, n_personas=cfg.num_personas)
        return sampler.sample(n)
    if cfg.source == "builtin:words":
        from synthdspy.seeds.catalog import WordSampler

        return WordSampler(seed=cfg.sampling_seed).sample(n)
    if cfg.source == "builtin:dimensions":
        return dimension_seeds(cfg, n)
    if cfg.source.startswith("builtin:"):
        raise ConfigError(f"seeds.source: unknown built-in {cfg.source!r}; known: {', '.join(BUILTINS)}")

    from synthdspy.seeds.chunking import chunk_seeds, cl100k_tokens
    from synthdspy.seeds.documents import is_document_source, load_documents
    from synthdspy.seeds.loading import SeedLoadError, load_seeds

    if is_document_source(cfg.source):
        seeds = load_documents(cfg.source, cfg.chunk_words, cfg.chunk_tokens, cfg.chunk_overlap,
                               cfg.fields or None, cfg.pdf_password_env)
        random.Random(cfg.sampling_seed).shuffle(seeds)
        return seeds[:n]
    seeds = load_seeds(cfg.source, fields=cfg.fields or None, shuffle_seed=cfg.sampling_seed)
    size = cfg.chunk_words or cfg.chunk_tokens
    if size:
        try:
            seeds = chunk_seeds(seeds, size, cfg.chunk_overlap, count=cl100k_tokens if cfg.chunk_tokens else None)
        except ValueError as exc:  # a seed whose source text is missing, null or not a string
            key = "chunk_words" if cfg.chunk_words else "chunk_tokens"
            raise SeedLoadError(f"{cfg.source}: seeds.{key}: {exc}") from None
    return seeds[:n]


def train_dev_seeds(cfg: SeedsConfig) -> tuple[list[Seed], list[Seed]]:
    """The first ``train_size`` seeds for training and the next ``dev_size`` for evaluation (disjoint).

    Raises:
        synthdspy.configio.ConfigError: the source has fewer than ``train_size + dev_size`` seeds.
    """
    from synthdspy.configio import ConfigError

    need = cfg.train_size + cfg.dev_size
    seeds = experiment_seeds(cfg, need)
    if len(seeds) < need:
        raise ConfigError(
            f"seeds.source {cfg.source!r} gave {len(seeds)} seeds; seeds.train_size + seeds.dev_size = {need}"
        )
    return seeds[: cfg.train_size], seeds[cfg.train_size : need]
