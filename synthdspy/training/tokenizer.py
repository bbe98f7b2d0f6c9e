"""Tokenizers for proxy models: bytes (default), characters, or a BPE trained locally.

Every tokenizer reserves one end-of-document id (``eot_id``) that separates packed documents.

- ``byte``: UTF-8 bytes 0..255, EOT = 256 (vocabulary 257); nothing to train or download.
- ``char``: one id per character of the training text (sorted), then ``<unk>`` and EOT; nanoGPT's
  shakespeare_char tokenizer, so losses compare with its reported figures.
- ``bpe``: byte-level BPE trained with the ``tokenizers`` library on the training text, cached as
  ``bpe-<hash>.json`` (the hash covers the text and the vocabulary size).

A training run saves its tokenizer beside the checkpoint (:func:`save_tokenizer`), so the proxy
model can be read again without the training text (:func:`load_tokenizer`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

EOT = "<|endoftext|>"


class TokenizerSpec(BaseModel):
    """``[tokenizer]``: ``kind`` and, for BPE, ``vocab_size`` and the cache directory."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["byte", "char", "bpe"] = "byte"
    vocab_size: int = Field(4096, ge=260)
    cache_dir: str = ".cache/synthdspy/tokenizers"


class Tokenizer:
    """Base interface: ``encode(text) -> int32 array``, ``decode(ids) -> str``, ``vocab_size``, ``eot_id``."""

    name: str
    vocab_size: int
    eot_id: int

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` (shape ``[n_tokens]``, int32), without EOT."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; EOT is rendered as ``<|endoftext|>``."""
        raise NotImplementedError


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes; EOT = 256."""

    name = "byte"
    vocab_size = 257
    eot_id = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        out, buf = [], bytearray()
        for i in ids:
            if i == self.eot_id:
                out.append(buf.decode("utf-8", errors="replace") + EOT)
                buf = bytearray()
            else:
                buf.append(int(i))
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)


class CharTokenizer(Tokenizer):
    """Characters of the training text in sorted order, then ``<unk>`` (unseen characters) and EOT."""

    name = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        self.chars = sorted(set(chars))
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.unk_id = len(self.chars)
        self.eot_id = len(self.chars) + 1
        self.vocab_size = len(self.chars) + 2

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        """Vocabulary of every character in ``texts``."""
        chars: set[str] = set()
        for text in texts:
            chars.update(text)
        return cls(sorted(chars))

    def encode(self, text: str) -> np.ndarray:
        get, unk = self.index.get, self.unk_id
        return np.fromiter((get(c, unk) for c in text), dtype=np.int32, count=len(text))

    def decode(self, ids: Iterable[int]) -> str:
        table = [*self.chars, "\ufffd", EOT]
        return "".join(table[int(i)] for i in ids)


class BpeTokenizer(Tokenizer):
    """Byte-level BPE from the ``tokenizers`` library (its ``tokenizer.json`` format)."""

    name = "bpe"

    def __init__(self, tok) -> None:
        self.tok = tok
        self.eot_id = tok.token_to_id(EOT)
        self.vocab_size = tok.get_vocab_size()

    @classmethod
    def train(cls, texts: Sequence[str], vocab_size: int, cache_dir: str | Path) -> BpeTokenizer:
        """Train (or load from ``cache_dir``) a byte-level BPE with ``vocab_size`` ids on ``texts``."""
        from tokenizers import Tokenizer as HfTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        digest = hashlib.sha256(str(vocab_size).encode())
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\0")
        path = Path(cache_dir) / f"bpe-{digest.hexdigest()[:16]}.json"
        if path.is_file():
            return cls(HfTokenizer.from_file(str(path)))
        tok = HfTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        tok.save(str(path))
        return cls(tok)

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tok.encode(text).ids, dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=False)


def build_tokenizer(spec: TokenizerSpec, train_texts: Sequence[str]) -> Tokenizer:
    """The tokenizer of ``spec``; ``char`` and ``bpe`` learn their vocabulary from ``train_texts``."""
    if spec.kind == "byte":
        return ByteTokenizer()
    if spec.kind == "char":
        return CharTokenizer.train(train_texts)
    return BpeTokenizer.train(train_texts, spec.vocab_size, spec.cache_dir)


def save_tokenizer(tokenizer: Tokenizer, path: str | Path) -> Path:
    """Write ``tokenizer`` as JSON: its kind, and the characters (``char``) or the ``tokenizers``
    model (``bpe``) it learnt. Returns ``path``."""
    state: dict = {"kind": tokenizer.name}
    if isinstance(tokenizer, CharTokenizer):
        state["chars"] = tokenizer.chars
    elif isinstance(tokenizer, BpeTokenizer):
        state["tokenizer"] = json.loads(tokenizer.tok.to_str())
    path = Path(path)
    path.write_text(json.dumps(state), encoding="utf-8")
    return path


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer :func:`save_tokenizer` wrote to ``path``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a saved tokenizer.
    """
    from tokenizers import Tokenizer as HfTokenizer

    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        kind = state["kind"]
        if kind == "byte":
            return ByteTokenizer()
        if kind == "char":
            return CharTokenizer(state["chars"])
        if kind == "bpe":
            return BpeTokenizer(HfTokenizer.from_str(json.dumps(state["tokenizer"])))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a saved tokenizer ({type(exc).__name__}: {exc})") from None
    raise ValueError(f"{path}: unknown tokenizer kind {kind!r}")
