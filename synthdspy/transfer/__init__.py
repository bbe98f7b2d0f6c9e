"""Proxy-to-target transfer: does the mixture ranking of a tuning study hold at a larger scale?

``synthdspy transfer STUDY_OUTPUT_DIR --target experiments/mixture_transfer.toml`` retrains the
study's best mixtures, its baselines and a few random-search mixtures with a larger model and a
larger token budget, then reports Spearman's rank correlation between proxy and target-scale
losses (with a bootstrap interval) and the target-scale regret of the proxy's pick, the way
RegMix (Liu et al. 2024, section 4) validates its small proxies.

Modules: :mod:`.config` (the TOML schema), :mod:`.stats` (rank correlation, bootstrap, regret),
:mod:`.run` (picking and retraining, resumable, MLflow), :mod:`.report` (Markdown, JSON, PNG).
"""
