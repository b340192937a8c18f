"""Sequence-to-sequence pairs: generated tasks, a user's TSV corpus, TFDS translation sets.

Text becomes bytes: token = byte + 3, with 0 = PAD, 1 = BOS (the decoder's first input), 2 = EOS
(ends every target). Examples are arrays `source` [N, S] and `target` [N, T] (target ends with
EOS), padded with 0 to lengths fixed per dataset, so every batch has one shape.

Generated tasks draw their held-out set first and keep every held-out key (the source; for dates,
the calendar date, in any spelling) out of training, so the held-out score measures generalisation;
both sets depend only on the seed.
"""

from __future__ import annotations

import datetime
import os
from typing import Callable, Iterable

import ml_collections
import numpy as np

from jaxai.data.dataset import Dataset, array_dataset
from jaxai.data.pipeline import Arrays
from jaxai.errors import DatasetError
from jaxai.models.decoding import EOS

OFFSET = 3  # Byte b is token b + 3: ids 0-2 are PAD, BOS, EOS.
VOCAB_SIZE = 256 + OFFSET
Pair = tuple[str, str]


def encode(text: str) -> np.ndarray:
    """Text -> token ids (UTF-8 bytes shifted past the special tokens)."""
    return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32) + OFFSET


def decode(tokens: Iterable[int]) -> str:
    """Token ids -> text, stopping at the first EOS and skipping PAD/BOS."""
    out = bytearray()
    for token in np.asarray(tokens).tolist():
        if token == EOS:
            break
        if token >= OFFSET:
            out.append(token - OFFSET)
    return out.decode("utf-8", errors="replace")


def to_arrays(pairs: list[Pair], source_length: int, target_length: int) -> Arrays:
    """Pairs -> padded `source` [N, S] and `target` [N, T] (+EOS); longer texts are cut to fit."""
    source = np.zeros((len(pairs), source_length), np.int32)
    target = np.zeros((len(pairs), target_length), np.int32)
    for row, (src, tgt) in enumerate(pairs):
        src_ids, tgt_ids = encode(src)[:source_length], encode(tgt)[: target_length - 1]
        source[row, : len(src_ids)] = src_ids
        target[row, : len(tgt_ids)] = tgt_ids
        target[row, len(tgt_ids)] = EOS
    return {"source": source, "target": target}


# --- Generated tasks: draw(rng) -> (source, target, key that must not cross between splits). ---

def addition_problem(rng: np.random.Generator, max_digits: int, balanced: bool = False) -> tuple[str, str, str]:
    """'a+b' -> str(a + b): a and b uniform below 10**max_digits, or with `balanced`, each with a digit
    count drawn uniformly from 1..max_digits first (so that short operands are not rare)."""
    if balanced:
        a, b = (_random_number(rng, int(rng.integers(1, max_digits + 1))) for _ in range(2))
    else:
        a, b = (int(rng.integers(0, 10**max_digits)) for _ in range(2))
    source = f"{a}+{b}"
    return source, str(a + b), source


def _random_number(rng: np.random.Generator, digits: int) -> int:
    return int(rng.integers(0 if digits == 1 else 10 ** (digits - 1), 10**digits))


def reversal_problem(rng: np.random.Generator, max_length: int) -> tuple[str, str, str]:
    """A random lowercase string of 1..max_length letters -> the same letters reversed."""
    letters = rng.integers(ord("a"), ord("z") + 1, size=int(rng.integers(1, max_length + 1)))
    source = bytes(letters.astype(np.uint8)).decode()
    return source, source[::-1], source


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FIRST_DATE, LAST_DATE = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)  # Two-digit years: unambiguous.
# Numeric spellings are day first; two-digit years 50-99 are 19xx, 00-49 are 20xx.
DATE_FORMATS: tuple[Callable[[datetime.date], str], ...] = (
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",  # 3 March 2021
    lambda d: f"{d.day:02d} {MONTHS[d.month - 1][:3]} {d.year}",  # 03 Mar 2021
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",  # March 3, 2021
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",  # Mar 3, 2021
    lambda d: f"{DAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}",  # Wednesday, 3 March 2021
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",  # 03/03/21
    lambda d: f"{d.day}/{d.month}/{d.year}",  # 3/3/2021
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",  # 03.03.2021
    lambda d: f"{d.year}-{d.month:02d}-{d.day:02d}",  # 2021-03-03 (already normal)
    lambda d: f"{d.day} {MONTHS[d.month - 1].lower()} {d.year % 100:02d}",  # 3 march 21
)


def date_problem(rng: np.random.Generator, _: int = 0) -> tuple[str, str, str]:
    """A date in one of `DATE_FORMATS` -> ISO 'YYYY-MM-DD'; the key is the date itself."""
    date = FIRST_DATE + datetime.timedelta(days=int(rng.integers(0, (LAST_DATE - FIRST_DATE).days + 1)))
    spelling = DATE_FORMATS[int(rng.integers(len(DATE_FORMATS)))]
    return spelling(date), date.isoformat(), date.isoformat()


# name -> (problem, longest source and longest target without EOS for a size, default #train, #test)
GENERATED = {
    "addition": (addition_problem, lambda n: 2 * n + 1, lambda n: n + 1, 200_000, 10_000),
    "reverse": (reversal_problem, lambda n: n, lambda n: n, 100_000, 10_000),
    "dates": (date_problem, lambda n: 29, lambda n: 10, 100_000, 10_000),
}


Draw = Callable[[np.random.Generator], tuple[str, str, str]]


def disjoint_splits(draw: Draw, num_train: int, num_test: int, seed: int, max_tries: int = 50,
                    draw_train: Draw | None = None) -> tuple[list[Pair], list[Pair]]:
    """(train, test) pairs; test keys are distinct and never appear in train. Depends only on the seed.

    Training pairs come from `draw_train` where given (a different mix of the same problems)."""
    draw_train = draw_train or draw
    rng = np.random.default_rng([int(seed), 0x5E025E0])
    test, test_keys = [], set()
    for _ in range(max_tries * num_test):
        if len(test) == num_test:
            break
        source, target, key = draw(rng)
        if key not in test_keys:
            test_keys.add(key)
            test.append((source, target))
    train = []
    for _ in range(max_tries * num_train):
        if len(train) == num_train:
            break
        source, target, key = draw_train(rng)
        if key not in test_keys:
            train.append((source, target))
    if len(test) < num_test or len(train) < num_train:
        raise DatasetError(f"Could only draw {len(test)} distinct held-out and {len(train)} training problems: "
                           "the task has too few distinct problems; lower data.num_test_examples or raise its size.")
    return train, test


def generated_dataset(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """A generated task (`data.name`: addition, reverse or dates) with disjoint train and test splits."""
    problem, source_len, target_len, default_train, default_test = GENERATED[config.name]
    size = int(config.max_digits) if config.name == "addition" else int(config.max_length or 12)
    if size < 1:
        raise DatasetError(f"data.{'max_digits' if config.name == 'addition' else 'max_length'} must be >= 1.")
    # Addition trains on balanced digit counts (uniform pairs are 81% 3+3 digits, and the rare short
    # sums stayed wrong); it is tested on uniform pairs, the usual "random problems up to N digits".
    draw_train = (lambda rng: addition_problem(rng, size, balanced=True)) if config.name == "addition" else None
    train, test = disjoint_splits(lambda rng: problem(rng, size), int(config.num_train_examples or default_train),
                                  int(config.num_test_examples or default_test), seed, draw_train=draw_train)
    lengths = source_len(size), target_len(size) + 1
    splits = {"train": to_arrays(train, *lengths), "test": to_arrays(test, *lengths)}
    return array_dataset(lambda split: _split(splits, split), config, seed, info=_info(*lengths))


def read_tsv(path: str) -> list[Pair]:
    """source<TAB>target lines (blank lines skipped); a line without a tab is refused with its number."""
    if not os.path.exists(path):
        raise DatasetError(f"data.path={path!r} does not exist: give a TSV file of source<TAB>target lines.")
    pairs = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            if "\t" not in line:
                raise DatasetError(f"{path}, line {number}: no tab; each line must be source<TAB>target.")
            source, target = line.split("\t", 1)
            pairs.append((source, target))
    if not pairs:
        raise DatasetError(f"{path} holds no source<TAB>target lines.")
    return pairs


def tsv_dataset(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """A user's parallel corpus: `data.path` with '{split}' (one file per split), or one file whose last
    `data.num_test_examples` lines (default a tenth) are held out as every split but the training one."""
    if not config.path:
        raise DatasetError("data.name='tsv' needs data.path: a source<TAB>target file, or a pattern with {split}.")
    if "{split}" in config.path:
        pairs = {split: read_tsv(config.path.format(split=split))
                 for split in dict.fromkeys([config.train_split, config.eval_split, config.test_split])}
    else:
        lines = read_tsv(config.path)
        held = int(config.num_test_examples or max(1, len(lines) // 10))
        if held >= len(lines):
            raise DatasetError(f"{config.path} has {len(lines)} lines; data.num_test_examples={held} leaves none to train on.")
        pairs = {split: lines[-held:] for split in (config.eval_split, config.test_split)}
        pairs[config.train_split] = lines[:-held]
    return _text_pairs_dataset(pairs, config, seed)


def translation_dataset(builder: str) -> Callable[[ml_collections.ConfigDict, int], Dataset]:
    """A TFDS translation set (e.g. 'wmt14_translate/de-en': German -> English) prepared in data.tfds_dir."""

    def build(config: ml_collections.ConfigDict, seed: int) -> Dataset:
        import tensorflow_datasets as tfds

        source_language, target_language = builder.split("/")[1].split("-")
        data_dir = config.tfds_dir or None
        pairs = {}
        for split in dict.fromkeys([config.train_split, config.eval_split, config.test_split]):
            try:
                examples = tfds.as_numpy(tfds.load(builder, split=split, data_dir=data_dir, download=False))
            except Exception as error:  # TFDS raises several types for a missing or unprepared dataset.
                raise DatasetError(f"TFDS {builder!r} split {split!r} is not prepared in "
                                   f"{data_dir or '~/tensorflow_datasets'}: prepare it with TFDS first ({error}).") from None
            pairs[split] = [(e[source_language].decode("utf-8"), e[target_language].decode("utf-8")) for e in examples]
        return _text_pairs_dataset(pairs, config, seed)

    return build


def _text_pairs_dataset(pairs: dict[str, list[Pair]], config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """Text pairs per split; lengths from the training split, capped at data.max_length (default 256)."""
    cap = int(config.max_length or 256)
    train = pairs[config.train_split]
    source_length = min(cap, max(len(encode(source)) for source, _ in train))
    target_length = min(cap, max(len(encode(target)) for _, target in train) + 1)
    splits = {split: to_arrays(split_pairs, source_length, target_length) for split, split_pairs in pairs.items()}
    return array_dataset(lambda split: _split(splits, split), config, seed,
                         info=dict(_info(source_length, target_length), text=True))


def _split(splits: dict[str, Arrays], split: str) -> Arrays:
    if split not in splits:
        raise DatasetError(f"Unknown split {split!r}; this dataset has {sorted(splits)}.")
    return splits[split]


def _info(source_length: int, target_length: int) -> dict:
    return {"vocab_size": VOCAB_SIZE, "source_length": source_length, "target_length": target_length}
