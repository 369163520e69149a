"""``Dataset.shuffle``.

The buffer holds ``buffer_size`` elements; each output is a uniformly random one of them,
replaced by the next input element. Random numbers are drawn in blocks (one NumPy call per
``_BLOCK`` outputs) to keep the per-element cost low.

Checkpoints stay small: when the input can fetch its i-th element directly (ranges, slices,
maps of them…), the state lists the input *positions* in the buffer, not the elements, and
restoring fetches them. Otherwise the state holds the input's position at the start of the
pass and the number of elements delivered, and restoring replays the pass up to there.

RAM: the buffer's bytes count in the pipeline's RAM ledger (``Options.ram_budget``,
:mod:`stoker.autotune._ram`). A buffer whose elements alone would pass the budget stops
growing at the element that passes it, with a warning: the shuffle then mixes over that
many elements. The cap depends only on the elements' sizes and the budget (not on what
other stages hold at that moment), so a seeded shuffle stays reproducible; checkpoints
record it.
"""

from __future__ import annotations

import base64
import sys
import warnings
import weakref
import zlib
from typing import Any

import numpy as np

from stoker.autotune._ram import element_bytes, ledger_for
from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State, saved, snapshot
from stoker.ops._common import UnaryDataset, UnaryIterator, check_count
from stoker.ops._seeds import resolve_seed, seed_is_fixed

__all__ = ["ShuffleDataset"]

_BLOCK = 512


def _encode_positions(positions: list[int]) -> str:
    data = np.asarray(positions, dtype=np.int64).tobytes()
    return base64.b64encode(zlib.compress(data, 6)).decode()


def _decode_positions(text: str) -> list[int]:
    data = zlib.decompress(base64.b64decode(text))
    return np.frombuffer(data, dtype=np.int64).tolist()  # type: ignore[no-any-return]


class ShuffleDataset(UnaryDataset):
    _op_name = "shuffle"

    def __init__(
        self,
        input_dataset: Dataset,
        buffer_size: int,
        seed: int | None,
        reshuffle_each_iteration: bool,
        name: str | None,
    ):
        super().__init__(input_dataset, name)
        self._buffer_size = check_count("shuffle", "buffer_size", buffer_size, 1)
        self._seed = resolve_seed(seed, input_dataset)
        self._seed_fixed = seed_is_fixed(seed, input_dataset)
        self._reshuffle = bool(reshuffle_each_iteration)

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _ShuffleIterator(ctx, self)


class _ShuffleIterator(UnaryIterator):
    OP = "shuffle"
    _ds: ShuffleDataset

    def __init__(self, ctx: IterContext, ds: ShuffleDataset):
        super().__init__(ctx, ds)
        self._seed = ds._seed
        self._getter = ds._input._random_access()
        self._start: Any = None if self._getter is not None else snapshot(self._input)
        self._ledger = ledger_for(ctx)
        self._held = 0  # bytes of the buffer, as reserved in the ledger
        # A dropped iterator's buffer is gone: its bytes leave the ledger with it.
        weakref.finalize(self, self._ledger.release_all, self.stage)
        self._begin(ctx.take_pass(ds))

    def _begin(self, pass_id: list[int], size: int | None = None) -> None:
        ds = self._ds
        self._ledger.release_all(self.stage)
        self._held = 0
        #: Elements the buffer holds when full: ``buffer_size``, or fewer if the budget
        #: capped it.
        self._size = ds._buffer_size if size is None else size
        self._pass_id = pass_id
        seed = (self._seed, *pass_id) if ds._reshuffle else (self._seed, 0, 0)
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._buf: list[Any] = []
        self._positions: list[int] = []
        self._pulled = 0
        self._exhausted = False
        self._filled = False
        self._new_block()

    def _new_block(self) -> None:
        self._block_state = self._rng.bit_generator.state
        block = self._rng.random(_BLOCK)
        self._block = block.tolist()
        # The same indices as int(u * n) for the full buffer, computed in one NumPy call;
        # once the input is exhausted the buffer shrinks and __next__ uses _block.
        self._idx = (block * self._size).astype(np.int64).tolist()
        self._bpos = 0

    def _fill(self) -> None:
        size = self._size
        buf, positions = self._buf, self._positions
        ledger, stage = self._ledger, self.stage
        budget = ledger.budget
        while len(buf) < size:
            try:
                x = self._next_input()
            except StopIteration:
                self._exhausted = True
                break
            buf.append(x)
            n = element_bytes(x)
            ledger.reserve(stage, n)
            self._held += n
            positions.append(self._pulled)
            self._pulled += 1
            if self._held > budget and len(buf) < size:
                self._cap(len(buf))
                break
        self._filled = True

    def _cap(self, size: int) -> None:
        """The budget caps the buffer at ``size`` elements (from now on, this pass)."""
        self._size = size
        self._idx = (np.asarray(self._block) * size).astype(np.int64).tolist()
        if not sys.is_finalizing():
            warnings.warn(
                f"{self.stage}: shuffle(buffer_size={self._ds._buffer_size}) would hold more "
                f"than Options.ram_budget = {self._ledger.budget:,} bytes, so its buffer stops "
                f"at {size} elements ({self._held:,} bytes) and shuffles over those. Raise "
                "Options(ram_budget=...) with with_options(), or shuffle smaller elements "
                "(file names or indices before decoding them).",
                UserWarning,
                stacklevel=4,
            )

    def __next__(self) -> Any:
        bpos = self._bpos
        if bpos == _BLOCK:
            self._new_block()
            bpos = 0
        self._bpos = bpos + 1
        if not self._exhausted:
            if not self._filled:
                self._fill()
                if self._exhausted:
                    self._bpos = bpos
                    return self._drain()
            # Steady state: the buffer is full; output a random element, refill its slot.
            buf = self._buf
            i = self._idx[bpos]
            x = buf[i]
            try:
                y = buf[i] = self._next_input()
            except StopIteration:
                self._exhausted = True
                self._bpos = bpos
                return self._drain()
            d = element_bytes(y) - element_bytes(x)
            if d:
                self._held += d
                if d > 0:
                    self._ledger.reserve(self.stage, d)
                else:
                    self._ledger.release(self.stage, -d)
            pulled = self._pulled
            self._positions[i] = pulled
            self._pulled = pulled + 1
            return x
        self._bpos = bpos
        return self._drain()

    def _drain(self) -> Any:
        """Output a random element of the buffer once the input is exhausted."""
        buf = self._buf
        n = len(buf)
        if n == 0:
            raise StopIteration
        i = int(self._block[self._bpos] * n)
        self._bpos += 1
        x = buf[i]
        last, last_pos = buf.pop(), self._positions.pop()
        if i < len(buf):
            buf[i] = last
            self._positions[i] = last_pos
        n = element_bytes(x) if buf else self._held  # the last one releases what is left
        self._held -= n
        self._ledger.release(self.stage, n)
        return x

    def _close(self) -> None:
        self._buf = []
        self._positions = []
        self._held = 0
        self._ledger.release_all(self.stage)

    @property
    def _delivered(self) -> int:
        # Every pulled element is either still in the buffer or was delivered.
        return self._pulled - len(self._buf)

    def _get_state(self) -> State:
        if self._getter is None:
            return {
                "mode": "replay",
                "epoch": self._pass_id,
                "seed": self._seed,
                "start": saved(self._start),
                "delivered": self._delivered,
            }
        return {
            "mode": "positions",
            "epoch": self._pass_id,
            "seed": self._seed,
            "input": self._input.get_state(),
            "rng": self._block_state,
            "bpos": self._bpos,
            "buffer": _encode_positions(self._positions),
            "pulled": self._pulled,
            "delivered": self._delivered,
            "exhausted": self._exhausted,
            "filled": self._filled,
            **({"size": self._size} if self._size != self._ds._buffer_size else {}),
        }

    def _set_state(self, state: State) -> None:
        epoch = [int(e) for e in state["epoch"]]
        self._ctx.restore_pass(self._ds, epoch)
        # The seed the state was saved with: an unseeded shuffle draws a new seed in every
        # process, and replaying (or continuing) with another seed would repeat and lose
        # elements. States saved before "seed" was stored use this dataset's seed.
        self._seed = int(state.get("seed", self._ds._seed))
        if state["mode"] == "replay":
            if self._getter is not None:
                self._getter = None
            self._start = state["start"]
            self._input.set_state(self._start)
            self._begin(epoch)
            for _ in range(int(state["delivered"])):
                next(self)
            return
        getter = self._getter or self._ds._input._random_access()
        if getter is None:
            raise ValueError("positions state needs an input with random access")
        self._input.set_state(state["input"])
        self._begin(epoch, int(state["size"]) if "size" in state else None)
        self._rng.bit_generator.state = state["rng"]
        self._new_block()
        self._bpos = int(state["bpos"])
        self._positions = _decode_positions(state["buffer"])
        self._buf = [getter(p) for p in self._positions]
        self._held = sum(element_bytes(x) for x in self._buf)
        self._ledger.reserve(self.stage, self._held)
        self._pulled = int(state["pulled"])
        self._exhausted = bool(state["exhausted"])
        self._filled = bool(state["filled"])
