"""Embedding-based diversity baselines: k-means cluster score and the Vendi score.

Texts are embedded with all-MiniLM-L6-v2 (:func:`synthdspy.embeddings.load_sentence_encoder`),
L2-normalized, so squared Euclidean distances lie in [0, 4] and inner products are cosine
similarities. Chen et al. 2024 used BERT-L embeddings; the encoder is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def embed_texts(texts: Sequence[str], encoder: Any | None = None, batch_size: int = 64) -> np.ndarray:
    """Unit-norm sentence embeddings, shape (len(texts), dim) float32.

    Args:
        texts: the documents (truncated by the encoder at its maximum sequence length, 256
            word pieces for all-MiniLM-L6-v2).
        encoder: a ``SentenceTransformer``; default :func:`load_sentence_encoder`.
        batch_size: texts per forward pass.

    Raises:
        ValueError: empty list of texts.
    """
    if len(texts) == 0:
        raise ValueError("embed_texts needs at least one text")
    if encoder is None:
        from synthdspy.embeddings import load_sentence_encoder

        encoder = load_sentence_encoder()
    vectors = encoder.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


def default_n_clusters(n: int) -> int:
    """Default k for :func:`kmeans_cluster_score`: one cluster per ten samples, at least 2, at most n.

    Chen et al. 2024 (sec. 3.2) used 10K clusters for 1M samples (one per hundred); on the
    hundreds of samples this project measures that leaves 2-3 clusters, so we use one per ten.
    """
    return max(1, min(n, max(2, n // 10)))


def kmeans_cluster_score(
    embeddings: np.ndarray, n_clusters: int | None = None, seed: int = 0, n_init: int = 3
) -> float:
    """K-means cluster score: mean squared distance of each embedding to its k-means centroid.

    Chen et al. 2024 (Table 1, appendix C) give only the k-means objective
    min sum_i sum_{x in cluster i} ||x - mu_i||^2 (after Abbas et al. 2023) and call the result
    a cluster score without a closed form. We report that objective at its optimum divided by
    the number of samples (sklearn's ``inertia_ / n``): on unit vectors it lies in [0, 2]
    (in practice below 1); 0 means every sample sits on a centroid (k kinds of text), higher
    means samples spread further from any prototype (more diverse).

    Args:
        embeddings: array (n, dim), unit-norm rows.
        n_clusters: k; default :func:`default_n_clusters`.
        seed: k-means initialisation seed.
        n_init: k-means restarts.

    Raises:
        ValueError: fewer than two embeddings.
    """
    from sklearn.cluster import KMeans

    n = len(embeddings)
    if n < 2:
        raise ValueError("kmeans_cluster_score needs at least two samples")
    k = min(n, n_clusters or default_n_clusters(n))
    model = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(embeddings)
    return float(model.inertia_) / n


def vendi_score(embeddings: np.ndarray) -> float:
    """Vendi score with the cosine kernel: exp of the Shannon entropy of the eigenvalues of K/n.

    Source: Friedman & Dieng 2023, "The Vendi Score", eq. 1, with K = X X^T for unit-norm rows
    X (n, dim). The nonzero eigenvalues of X X^T / n equal those of X^T X / n (dim x dim), which
    is what is decomposed, so the cost is O(n dim^2) rather than O(n^3). Range [1, n]: the
    effective number of distinct samples (1 when all are identical, n when all are orthogonal).

    Raises:
        ValueError: empty input.
    """
    n = len(embeddings)
    if n == 0:
        raise ValueError("vendi_score needs at least one sample")
    x = np.asarray(embeddings, dtype=np.float64)
    eigenvalues = np.linalg.eigvalsh(x.T @ x / n)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    eigenvalues = eigenvalues / eigenvalues.sum()
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))
