"""Tokenizers: round trips, save/load, errors."""

import json

import numpy as np
import pytest

from jaxai.data.tokenizers import (
    ByteTokenizer,
    CharTokenizer,
    Tokenizer,
    load_tokenizer,
    make_tokenizer,
)

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


def test_char_vocabulary_is_sorted_set_of_text():
    tokenizer = make_tokenizer("char", TEXT)
    assert tokenizer.chars == "".join(sorted(set(TEXT)))
    assert tokenizer.vocab_size == len(set(TEXT))
    ids = tokenizer.encode("Fir")
    assert ids.dtype == np.int32
    assert list(ids) == [tokenizer.chars.index(c) for c in "Fir"]


def test_char_round_trip():
    tokenizer = make_tokenizer("char", TEXT)
    assert tokenizer.decode(tokenizer.encode(TEXT)) == TEXT
    assert tokenizer.encode("").shape == (0,)
    assert tokenizer.decode([]) == ""


def test_char_round_trip_non_ascii_and_unsorted_vocabulary():
    tokenizer = CharTokenizer("zéa€ b")  # Ids follow the given order, not code points.
    assert list(tokenizer.encode("ab€")) == [2, 5, 3]
    assert tokenizer.decode(tokenizer.encode("b€ zé")) == "b€ zé"


def test_byte_round_trip_including_non_ascii():
    tokenizer = make_tokenizer("byte", "ignored")
    text = "naïve café — 日本語 🙂"
    ids = tokenizer.encode(text)
    assert tokenizer.vocab_size == 256
    assert ids.dtype == np.int32 and len(ids) == len(text.encode("utf-8"))
    assert ids.min() >= 0 and ids.max() < 256
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(np.asarray(ids[:-1])).endswith("\ufffd")  # Cut mid-character: replaced.


@pytest.mark.parametrize("kind", ["char", "byte"])
def test_save_load_equality(tmp_path, kind):
    tokenizer = make_tokenizer(kind, TEXT + "é")
    path = str(tmp_path / "tokenizer.json")
    tokenizer.save(path)
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    assert data["kind"] == kind
    if kind == "char":
        assert data["chars"] == tokenizer.chars
    loaded = load_tokenizer(path)
    assert type(loaded) is type(tokenizer) and loaded == tokenizer
    assert loaded.to_dict() == tokenizer.to_dict()
    assert list(loaded.encode(TEXT)) == list(tokenizer.encode(TEXT))
    assert type(tokenizer).load(path) == tokenizer
    assert Tokenizer.from_dict(tokenizer.to_dict()) == tokenizer


def test_unknown_kind_names_valid_kinds():
    with pytest.raises(ValueError, match=r"'bpe'.*\['byte', 'char'\]"):
        make_tokenizer("bpe", TEXT)
    with pytest.raises(ValueError, match="valid kinds"):
        Tokenizer.from_dict({"kind": "bpe"})


def test_loading_the_wrong_kind_fails():
    with pytest.raises(ValueError, match="'char'"):
        CharTokenizer.from_dict({"kind": "byte"})


def test_unknown_character_is_named():
    tokenizer = make_tokenizer("char", "abc")
    with pytest.raises(ValueError, match="'z'"):
        tokenizer.encode("abz")
    with pytest.raises(ValueError, match="'é'"):
        tokenizer.encode("é")


def test_out_of_range_ids_fail():
    with pytest.raises(ValueError):
        make_tokenizer("char", "abc").decode([3])
    with pytest.raises(ValueError):
        ByteTokenizer().decode([256])


def test_invalid_char_vocabulary():
    with pytest.raises(ValueError):
        CharTokenizer("aab")
    with pytest.raises(ValueError):
        make_tokenizer("char", "")
