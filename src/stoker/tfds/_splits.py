"""Split strings (``"train[:10%]+test"``) to the records they select, by TFDS's rules.

A spec is one or more ``name[selector]`` parts joined by ``+``; ``all`` means every split.
A selector is ``from:to`` in examples (``[100:200]``, negative counts from the end), in
percent (``[:10%]``) or in shards (``[2shard:4shard]``, or ``[3shard]`` for one shard).
Percent boundaries are rounded to the nearest example, ties to even (Python's ``round``),
which is what TFDS's default "closest" rounding does; so ``train[:33%]`` of 10 examples is
3 examples and ``train[:25%]`` of 10 is 2. The selected range is then mapped onto the
split's shards as ``(file, skip, take)`` reads, ``take = -1`` meaning "to the end".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["FileRead", "Split", "file_reads"]

_PART_RE: Final = re.compile(r"^(?P<name>[\w-]+)(\[(?P<selector>[\d\w%:.-]+)\])?$")
_BOUND_RE: Final = re.compile(r"^((?P<value>-?[\d_.]+)(?P<unit>%|shard)?)?$")
_PLUS_RE: Final = re.compile(r"\s*\+\s*")
_HELP: Final = (
    'write "name", "name[from:to]" (examples), "name[from%:to%]", "name[from shard:to shard]" '
    '(e.g. "train[2shard:4shard]") or "name[Nshard]", joined by "+"; "all" is every split'
)


class Split(str):
    """Split names: ``Split.TRAIN`` is ``"train"`` and can be sliced, ``Split.TRAIN + "[:10%]"``.

    Example::

        tfds.load("mnist", split=tfds.Split.TRAIN)
    """

    TRAIN: Final[str] = "train"
    VALIDATION: Final[str] = "validation"
    TEST: Final[str] = "test"
    ALL: Final[str] = "all"


@dataclass(frozen=True)
class FileRead:
    """Read ``take`` records of ``path`` after skipping ``skip`` (``take = -1``: the rest)."""

    path: str
    skip: int
    take: int


@dataclass(frozen=True)
class _Part:
    split: str
    start: float | None
    stop: float | None
    unit: str  # "abs", "%" or "shard"


def _parse_part(text: str, spec: str) -> _Part:
    match = _PART_RE.match(text)
    if not match:
        raise ValueError(f"split {spec!r}: cannot read {text!r}; {_HELP}")
    name, selector = match["name"], match["selector"]
    if selector is None:
        return _Part(name, None, None, "abs")
    if name == "all":
        raise ValueError(f"split {spec!r}: 'all' cannot be sliced; slice each split instead")
    bounds = [_BOUND_RE.match(b) for b in selector.split(":")]
    if len(bounds) > 2 or not all(bounds) or not any(b and b[0] for b in bounds):
        raise ValueError(f"split {spec!r}: cannot read the slice [{selector}]; {_HELP}")
    units = {b["unit"] for b in bounds if b and b["unit"]}
    if len(units) > 1:
        raise ValueError(f"split {spec!r}: [{selector}] mixes units {sorted(units)}")
    unit = units.pop() if units else "abs"
    try:
        values = [
            None if b is None or b["value"] is None else (float if unit == "%" else int)(b["value"])
            for b in bounds
        ]
    except ValueError:
        raise ValueError(f"split {spec!r}: [{selector}] holds a number that is not one") from None
    if len(values) == 1:
        if unit != "shard" or values[0] is None:
            raise ValueError(
                f"split {spec!r}: [{selector}] picks one element; only shards can be picked "
                "one at a time ([3shard]), examples and percents take a slice ([3:4])"
            )
        values.append(values[0] + 1)
    start, stop = values
    if unit == "%" and any(v is not None and abs(v) > 100 for v in values):
        raise ValueError(f"split {spec!r}: percent bounds must be in [-100, 100], got [{selector}]")
    return _Part(name, start, stop, unit)


def parse(spec: str) -> list[_Part]:
    """Parses a split spec into its ``+``-joined parts."""
    text = str(spec).strip()
    if not text:
        raise ValueError(f"split {spec!r} is empty; {_HELP}")
    return [_parse_part(part, spec) for part in _PLUS_RE.split(text)]


def _to_examples(part: _Part, lengths: Sequence[int], spec: str) -> tuple[int, int]:
    n = sum(lengths)
    start, stop = part.start, part.stop
    if part.unit == "%":
        first = 0 if start is None else round(start * n / 100.0)
        end = n if stop is None else round(stop * n / 100.0)
    elif part.unit == "shard":
        first = 0 if start is None else sum(lengths[: int(start)])
        if stop is not None and stop <= 0:
            stop = len(lengths) + stop
        end = n if stop is None else sum(lengths[: int(stop)])
    else:
        first = 0 if start is None else int(start)
        end = n if stop is None else int(stop)
    if abs(first) > n or abs(end) > n:
        raise ValueError(
            f"split {spec!r}: the slice [{first}:{end}] of {part.split!r} does not fit its "
            f"{n} examples"
        )
    return (n + first if first < 0 else first), (n + end if end < 0 else end)


def file_reads(
    spec: str, shards: Mapping[str, tuple[Sequence[str], Sequence[int]]]
) -> list[FileRead]:
    """The reads that make up ``spec``, in order.

    Args:
        spec: The split spec, e.g. ``"train[:10%]+test"``.
        shards: Split name to (shard paths, examples per shard), in the dataset's order.

    Returns:
        One ``FileRead`` per shard that holds selected examples.

    Raises:
        ValueError: The spec cannot be read, names an unknown split or slices past the end.
    """
    reads: list[FileRead] = []
    parts: list[_Part] = []
    for part in parse(spec):
        if part.split == "all":
            parts.extend(_Part(name, None, None, "abs") for name in shards)
        else:
            parts.append(part)
    for part in parts:
        if part.split not in shards:
            raise ValueError(
                f"split {spec!r}: unknown split {part.split!r}; the dataset has {list(shards)}"
            )
        paths, lengths = shards[part.split]
        first, end = _to_examples(part, lengths, spec)
        shard_start = 0
        for path, length in zip(paths, lengths, strict=True):
            shard_end = shard_start + length
            if length and first < shard_end and end > shard_start:
                skip = max(first - shard_start, 0)
                take = end - shard_start - skip if end < shard_end else -1
                if take:
                    reads.append(FileRead(path, skip, take))
            shard_start = shard_end
    return reads
