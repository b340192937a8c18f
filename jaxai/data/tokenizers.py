"""Character and byte tokenizers: text <-> int32 ids, saved as small JSON files.

File format: {"kind": "char", "chars": "..."} or {"kind": "byte"}.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Sequence

import numpy as np


class Tokenizer:
    """Common interface: encode, decode, vocab_size, to_dict/from_dict, save/load."""

    kind: ClassVar[str]
    vocab_size: int

    def encode(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Tokenizer":
        """The tokenizer `data` describes; on a subclass, `data` must be of that kind."""
        kind = data.get("kind")
        if kind not in _KINDS:
            raise ValueError(f"Unknown tokenizer kind {kind!r}; valid kinds: {sorted(_KINDS)}.")
        if cls is not Tokenizer and _KINDS[kind] is not cls:
            raise ValueError(f"Expected a {cls.kind!r} tokenizer, got {kind!r}.")
        return _KINDS[kind]._from_fields(data)

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> "Tokenizer":
        return cls()

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as file:
            json.dump(self.to_dict(), file, ensure_ascii=False)

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        with open(path, encoding="utf-8") as file:
            return cls.from_dict(json.load(file))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class CharTokenizer(Tokenizer):
    """One id per distinct character of the training text, in sorted order (nanoGPT shakespeare_char)."""

    kind = "char"

    def __init__(self, chars: str):
        if not chars or len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer needs a non-empty string of distinct characters.")
        self.chars = chars
        self.vocab_size = len(chars)
        codes = np.array([ord(char) for char in chars], np.int64)
        self._order = np.argsort(codes)  # Ids in code-point order.
        self._sorted_codes = codes[self._order]

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls("".join(sorted(set(text))))

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> "CharTokenizer":
        return cls(data["chars"])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "chars": self.chars}

    def encode(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)  # [len(text)]
        slots = np.minimum(np.searchsorted(self._sorted_codes, codes), self.vocab_size - 1)
        unknown = np.flatnonzero(self._sorted_codes[slots] != codes)
        if unknown.size:
            char = text[unknown[0]]
            raise ValueError(f"Character {char!r} (position {unknown[0]}) is not in the tokenizer's vocabulary.")
        return self._order[slots].astype(np.int32)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        ids = np.asarray(ids, np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"Token ids must lie in [0, {self.vocab_size}).")
        return "".join(self.chars[i] for i in ids)


class ByteTokenizer(Tokenizer):
    """The 256 byte values of the UTF-8 encoding; decoding replaces invalid byte sequences."""

    kind = "byte"
    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        ids = np.asarray(ids, np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() > 255):
            raise ValueError("Byte token ids must lie in [0, 256).")
        return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")


_KINDS: dict[str, type[Tokenizer]] = {"char": CharTokenizer, "byte": ByteTokenizer}


def make_tokenizer(kind: str, text: str) -> Tokenizer:
    """A tokenizer of `kind` ('char' or 'byte'); a char vocabulary comes from `text`."""
    if kind == "char":
        return CharTokenizer.from_text(text)
    if kind == "byte":
        return ByteTokenizer()
    raise ValueError(f"Unknown tokenizer kind {kind!r}; valid kinds: {sorted(_KINDS)}.")


def load_tokenizer(path: str) -> Tokenizer:
    """The tokenizer saved at `path`, whatever its kind."""
    return Tokenizer.load(path)
