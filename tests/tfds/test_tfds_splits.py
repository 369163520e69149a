"""Split specs to shard reads, by TFDS's rules (checked against TFDS in the reference test)."""

from __future__ import annotations

import pytest

from stoker.tfds._splits import FileRead, file_reads

SHARDS = {"train": (["a", "b", "c"], [10, 10, 10]), "test": (["t"], [8]), "empty": ([], [])}


def test_whole_split_reads_every_shard_to_the_end() -> None:
    assert file_reads("train", SHARDS) == [FileRead(p, 0, -1) for p in "abc"]


def test_example_slice_skips_and_takes_across_shards() -> None:
    assert file_reads("train[5:25]", SHARDS) == [
        FileRead("a", 5, -1),
        FileRead("b", 0, -1),
        FileRead("c", 0, 5),
    ]
    assert file_reads("train[-3:]", SHARDS) == [FileRead("c", 7, -1)]
    assert file_reads("train[12:14]", SHARDS) == [FileRead("b", 2, 2)]


@pytest.mark.parametrize(
    ("spec", "count"),
    [
        ("test[:25%]", 2),
        ("test[:12.5%]", 1),  # 8 * 12.5% = 1.0
        ("test[:6.25%]", 0),  # 0.5 rounds to even: 0 examples
        ("test[:18.75%]", 2),  # 1.5 rounds to even: 2
        ("test[:31.25%]", 2),  # 2.5 rounds to even: 2
        ("test[50%:]", 4),
        ("test[-25%:]", 2),
    ],
)
def test_percent_rounds_to_nearest_ties_to_even(spec: str, count: int) -> None:
    reads = file_reads(spec, SHARDS)
    end = 8 if not reads or reads[-1].take < 0 else reads[-1].skip + reads[-1].take
    start = reads[0].skip if reads else end
    assert end - start == count


def test_shard_units() -> None:
    assert file_reads("train[1shard]", SHARDS) == [FileRead("b", 0, -1)]
    assert file_reads("train[:-1shard]", SHARDS) == [FileRead("a", 0, -1), FileRead("b", 0, -1)]


def test_plus_and_all_keep_their_order() -> None:
    assert file_reads("test + train[:2]", SHARDS) == [FileRead("t", 0, -1), FileRead("a", 0, 2)]
    assert file_reads("all", SHARDS) == [FileRead(p, 0, -1) for p in "abct"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("valid", "unknown split 'valid'"),
        ("train[:31]", "does not fit its 30 examples"),
        ("train[:101%]", r"percent bounds must be in \[-100, 100\]"),
        ("train[3]", "only shards can be picked"),
        ("train[1:2:3]", "cannot read the slice"),
        ("train[1%:2shard]", "mixes units"),
        ("all[:5]", "'all' cannot be sliced"),
        ("train[a:b]", "cannot read the slice"),
        ("", "is empty"),
        ("train[", "cannot read"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        file_reads(spec, SHARDS)
