"""stoker.torch.prefetch_to_device and to_torch on the CPU (no CUDA here)."""

from __future__ import annotations

import collections
import gc
import logging
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import stoker.torch as st  # noqa: E402
from stoker import Dataset  # noqa: E402

Pair = collections.namedtuple("Pair", ["image", "label"])


def _device_threads():
    return [t for t in threading.enumerate() if t.name == "stoker-device-prefetch"]


def _batches(n=5):
    ds = Dataset.range(n * 4).map(
        lambda i: {
            "image": np.full((3, 2), i, dtype=np.uint8),
            "pair": (np.float32(i) / 2, np.int64(i)),
        }
    )
    return ds.batch(4)


@pytest.mark.parametrize("buffer_size", [0, 1, 2, 10])
def test_values_order_structure_and_dtypes(buffer_size):
    out = list(st.prefetch_to_device(_batches(), "cpu", buffer_size=buffer_size))
    assert len(out) == 5
    for b, batch in enumerate(out):
        assert isinstance(batch, dict) and list(batch) == ["image", "pair"]
        assert isinstance(batch["pair"], tuple) and len(batch["pair"]) == 2
        image = batch["image"]
        assert isinstance(image, torch.Tensor) and image.dtype == torch.uint8
        assert image.device.type == "cpu"
        expected = np.repeat(np.arange(b * 4, b * 4 + 4, dtype=np.uint8), 6).reshape(4, 3, 2)
        np.testing.assert_array_equal(image.numpy(), expected)
        assert batch["pair"][0].dtype == torch.float32
        assert batch["pair"][1].dtype == torch.int64
        assert batch["pair"][1].tolist() == list(range(b * 4, b * 4 + 4))


def test_namedtuples_scalars_and_passthrough_leaves():
    elements = [
        Pair(np.arange(3, dtype=np.int16), np.int64(7)),
        Pair(np.array([b"x"], dtype=object), 2.5),
    ]
    first, second = list(st.prefetch_to_device(elements, "cpu"))
    assert type(first) is Pair
    assert first.image.dtype == torch.int16 and first.image.tolist() == [0, 1, 2]
    assert first.label.dim() == 0 and first.label.dtype == torch.int64 and first.label.item() == 7
    assert isinstance(second.image, np.ndarray)  # torch has no bytes tensor: passed through
    assert second.label.dim() == 0 and second.label.dtype == torch.float64


def test_zero_copy_for_writable_arrays():
    arrays = [np.arange(12, dtype=np.float32).reshape(3, 4) for _ in range(3)]
    out = list(st.prefetch_to_device(arrays, "cpu", buffer_size=2))
    for arr, t in zip(arrays, out, strict=True):
        assert t.data_ptr() == arr.ctypes.data  # the same memory, not a copy
        arr[0, 0] = -1.0
        assert t[0, 0].item() == -1.0
    # batch() output is writable, so a whole pipeline's batches are shared too.
    [batch] = list(st.prefetch_to_device(Dataset.range(4).batch(4), "cpu"))
    assert batch.tolist() == [0, 1, 2, 3]


def test_read_only_and_negative_strides_are_copied_without_a_warning():
    ro = np.arange(6, dtype=np.uint8)
    ro.flags.writeable = False
    flipped = np.arange(6, dtype=np.uint8)[::-1]
    # pytest turns warnings into errors: from_numpy on a read-only array would warn.
    t_ro, t_flip = st.to_torch((ro, flipped))
    assert t_ro.data_ptr() != ro.ctypes.data and t_ro.tolist() == ro.tolist()
    t_ro[0] = 99  # writing the tensor cannot change the read-only source
    assert ro[0] == 0
    assert t_flip.tolist() == [5, 4, 3, 2, 1, 0]
    # from_tensor_slices hands out read-only slices; they arrive intact.
    ds = Dataset.from_tensor_slices(np.arange(8, dtype=np.int32).reshape(4, 2))
    assert [t.tolist() for t in st.prefetch_to_device(ds, "cpu")] == [
        [0, 1],
        [2, 3],
        [4, 5],
        [6, 7],
    ]


def test_reiterable_each_pass_is_complete():
    loader = st.prefetch_to_device(Dataset.range(6).batch(2), "cpu")
    assert [t.tolist() for t in loader] == [[0, 1], [2, 3], [4, 5]]
    assert [t.tolist() for t in loader] == [[0, 1], [2, 3], [4, 5]]


def test_pipeline_error_is_raised_in_order():
    def boom(x):
        if x == 3:
            raise KeyError("bad element 3")
        return x

    it = iter(st.prefetch_to_device(Dataset.range(6).map(boom), "cpu"))
    assert [next(it).item() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(KeyError, match="bad element 3"):
        next(it)
    it.close()


def test_close_and_drop_stop_the_thread():
    it = iter(st.prefetch_to_device(Dataset.range(10**6), "cpu", buffer_size=2))
    next(it)
    assert _device_threads()
    it.close()
    it.close()  # idempotent
    assert not _device_threads()
    it = iter(st.prefetch_to_device(Dataset.range(10**6), "cpu", buffer_size=2))
    next(it)
    del it
    gc.collect()
    for t in _device_threads():
        t.join(5)
    assert not _device_threads()
    with iter(st.prefetch_to_device(Dataset.range(10**6), "cpu")) as it:
        next(it)
    assert not _device_threads()


def test_bad_arguments():
    with pytest.raises(ValueError, match="buffer_size=-1"):
        st.prefetch_to_device([], "cpu", buffer_size=-1)
    with pytest.raises(ValueError, match="not a torch device"):
        st.prefetch_to_device([], "toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            st.prefetch_to_device([], "cuda")


def test_cpu_fallback_is_said_once(caplog, monkeypatch):
    monkeypatch.setattr("stoker.integrations.torch._said", set())
    with caplog.at_level(logging.INFO, logger="stoker.integrations.torch"):
        st.prefetch_to_device([], "cpu")
        st.prefetch_to_device([], "cpu")
    said = [r for r in caplog.records if "pinned memory" in r.getMessage()]
    assert len(said) == 1
    if not torch.cuda.is_available():
        with caplog.at_level(logging.INFO, logger="stoker.integrations.torch"):
            loader = st.prefetch_to_device([np.zeros(2)], None)
        assert [t.device.type for t in loader] == ["cpu"]
        assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_pinned_pool_reuses_buffers():
    pool = st.PinnedPool(pin=False, per_key=2, max_keys=2)
    a = pool.take((4, 3), torch.uint8)
    b = pool.take((4, 3), torch.uint8)
    assert pool.allocations == 2
    pool.give([a, b])
    assert {id(pool.take((4, 3), torch.uint8)) for _ in range(2)} == {id(a), id(b)}
    assert pool.allocations == 2  # reused, not allocated again
    pool.give([a])
    pool.take((1,), torch.uint8)
    pool.give([pool.take((2,), torch.float32), pool.take((3,), torch.float32)])
    assert pool.take((4, 3), torch.uint8) is not a  # evicted: only 2 keys are kept


def test_missing_torch_gives_the_pip_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'stoker\[torch\]'"):
        st.prefetch_to_device([], "cpu")


def test_stats_come_from_the_stoker_iterator():
    with iter(st.prefetch_to_device(Dataset.range(8).batch(2), "cpu")) as it:
        assert len(list(it)) == 4
        report = it.stats()
        assert any("batch" in stage.name for stage in report.stages)
