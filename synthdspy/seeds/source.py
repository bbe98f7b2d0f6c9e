"""Seeds for an experiment: built-in samplers or a seed file, optionally chunked, split into train/dev."""

from __future__ import annotations

from synthdspy.config import SeedsConfig
from synthdspy.records import Seed


def experiment_seeds(cfg: SeedsConfig, n: int) -> list[Seed]:
    """``n`` seeds from ``cfg.source`` (fewer when a file has fewer rows or chunks).

    ``builtin:topics`` draws topic/style/persona seeds, ``builtin:words`` TinyStories word draws;
    anything else is a file or hub id read by :func:`synthdspy.seeds.loading.load_seeds`, shuffled
    with ``cfg.sampling_seed`` and chunked when ``cfg.chunk_words`` > 0.

    Raises:
        synthdspy.configio.ConfigError: unknown ``builtin:`` name, unreadable file, missing field.
    """
    from synthdspy.configio import ConfigError

    if cfg.source == "builtin:topics":
        from synthdspy.seeds.catalog import TopicSampler

        sampler = TopicSampler(seed=cfg.sampling_seed, n_topics=cfg.num_topics, n_personas=cfg.num_personas)
        return sampler.sample(n)
    if cfg.source == "builtin:words":
        from synthdspy.seeds.catalog import WordSampler

        return WordSampler(seed=cfg.sampling_seed).sample(n)
    if cfg.source.startswith("builtin:"):
        raise ConfigError(f"seeds.source: unknown built-in {cfg.source!r}; known: builtin:topics, builtin:words")

    from synthdspy.seeds.chunking import chunk_seeds
    from synthdspy.seeds.loading import load_seeds

    seeds = load_seeds(cfg.source, fields=cfg.fields or None, shuffle_seed=cfg.sampling_seed)
    if cfg.chunk_words:
        seeds = chunk_seeds(seeds, size=cfg.chunk_words, overlap=cfg.chunk_overlap)
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
