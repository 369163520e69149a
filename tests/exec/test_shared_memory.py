"""Frames on a socket, arrays through recycled shared memory."""

from __future__ import annotations

import ctypes
import os
import socket
import threading

import numpy as np
import pytest

from stoker.exec.shared_memory import OOB_MIN_BYTES, Endpoint, PeerClosed, create_segment


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    ea, eb = Endpoint(a), Endpoint(b)
    yield ea, eb
    ea.close()
    eb.close()


def _shm_entries() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def test_small_objects_roundtrip(pair):
    a, b = pair
    for obj in [1, "x", b"bytes", (1, {"k": [1, 2]}), np.arange(5), None]:
        a.send(obj)
        got = b.recv()
        if isinstance(obj, np.ndarray):
            np.testing.assert_array_equal(got, obj)
        else:
            assert got == obj
    assert a.bytes_sent_shm == 0


@pytest.mark.parametrize("dtype", ["uint8", "float32", "int64", "complex128"])
def test_large_arrays_go_through_shared_memory_and_are_owned_copies(pair, dtype):
    a, b = pair
    x = (np.arange(300_000) % 251).astype(dtype).reshape(600, 500)
    a.send({"x": x, "t": (x[:10], 3)})
    got = b.recv()
    np.testing.assert_array_equal(got["x"], x)
    assert got["x"].dtype == x.dtype and got["x"].shape == x.shape
    assert got["x"].flags.writeable
    got["x"][0, 0] = 1  # owned: writing does not touch the ring or the sender's array
    assert a.bytes_sent_shm >= x.nbytes


def test_fortran_and_non_contiguous_arrays(pair):
    a, b = pair
    f = np.asfortranarray(np.arange(200_000, dtype=np.float64).reshape(400, 500))
    s = np.arange(400_000, dtype=np.int32)[::2]
    a.send((f, s))
    gf, gs = b.recv()
    np.testing.assert_array_equal(gf, f)
    np.testing.assert_array_equal(gs, s)


def test_ring_is_recycled_when_the_reader_acks(pair):
    a, b = pair
    x = np.ones(1 << 20, dtype=np.uint8)  # 1 MiB, ring starts at 4 MiB
    for i in range(50):
        a.send(x)
        np.testing.assert_array_equal(b.recv(), x)
        b.send(i)  # carries the ack back
        assert a.recv() == i
    assert a._ring is not None and a._ring.generation == 1, "ring grew although acked"


def test_ring_grows_when_unacked_data_does_not_fit(pair):
    a, b = pair
    x = np.ones(3 << 20, dtype=np.uint8)
    for _ in range(4):
        a.send(x)  # nothing read yet: no acks
    for _ in range(4):
        np.testing.assert_array_equal(b.recv(), x)
    assert a._ring.generation > 1


def test_large_pickle_payload_goes_through_the_ring(pair):
    a, b = pair
    obj = [str(i) for i in range(50_000)]  # a big pickle, no buffers
    a.send(obj)
    assert b.recv() == obj
    assert a.bytes_sent_shm > 0


def test_lambdas_fall_back_to_cloudpickle(pair):
    a, b = pair
    a.send(lambda v: v + 1)
    assert b.recv()(1) == 2


def test_over_the_ring_limit_sends_in_band():
    x, y = socket.socketpair()
    a, b = Endpoint(x, max_ring_bytes=OOB_MIN_BYTES), Endpoint(y)
    try:
        big = np.arange(100_000, dtype=np.int64)
        t = threading.Thread(target=a.send, args=(big,))
        t.start()
        np.testing.assert_array_equal(b.recv(), big)
        t.join()
        assert a.bytes_sent_shm == 0
    finally:
        a.close()
        b.close()


def test_segments_never_appear_in_dev_shm(pair):
    before = _shm_entries()
    a, b = pair
    a.send(np.ones(1 << 22, dtype=np.uint8))
    b.recv()
    fd, mm = create_segment(1 << 20)
    assert _shm_entries() == before
    mm.close()
    os.close(fd)


def test_peer_closed_is_reported():
    x, y = socket.socketpair()
    a = Endpoint(x)
    y.close()
    with pytest.raises(PeerClosed):
        a.recv()
    a.close()


def _packed_roundtrip(a, b, obj):
    """The worker's side packs ``obj`` into its ring; the consumer receives and unpacks."""
    packed = a.pack(obj)
    if packed is None:  # no room in the ring: as the worker does, send it (a copy)
        a.send(("done", obj))
        return b.recv()[1]
    a.send(("done", packed))
    _, got = b.recv()
    b.hold(got)
    return got.unpack()


def _in_peer_ring(endpoint, arr):
    """Whether ``arr``'s data lies in a ring the endpoint has mapped (no copy was made)."""
    addr = arr.__array_interface__["data"][0]
    for mm, _view, _count in endpoint._peers.values():
        start = ctypes.addressof(ctypes.c_char.from_buffer(mm))
        if start <= addr < start + len(mm):
            return True
    return False


def test_packed_results_are_zero_copy_views_released_when_dropped(pair):
    a, b = pair
    a.send("start")  # the writer's ring exists once it has sent something large
    b.recv()
    a.send(np.ones(1 << 20, np.uint8))
    b.recv()
    x = np.arange(1 << 18, dtype=np.float32)
    got = _packed_roundtrip(a, b, {"x": x, "t": (x[:5].copy(), 1)})
    np.testing.assert_array_equal(got["x"], x)
    assert _in_peer_ring(b, got["x"]), "a copy was made"
    assert got["x"].flags.writeable  # the space is the element's until it is released
    held_before = list(b._held)
    assert held_before, "the element's ring space is held while it lives"
    view = got["x"][100:200]
    del got
    assert not b._returned, "a view of the element still lives: nothing released"
    assert view[0] == 100
    del view
    assert len(b._returned) == 1, "released once the last view went"
    b.send("ack")  # the release is applied and acknowledged on the consumer's thread
    assert not b._returned and list(b._held) != held_before
    assert a.recv() == "ack"


def test_views_kept_for_ever_are_never_overwritten(pair):
    a, b = pair
    a.send(np.ones(1 << 20, np.uint8))  # the writer's first ring (4 MiB)
    b.recv()
    kept = []
    for i in range(40):  # 40 x 1 MiB through a 4 MiB ring, every element kept
        got = _packed_roundtrip(a, b, np.full(1 << 20, i % 251, np.uint8))
        kept.append(got)
        b.send(i)  # acks what was released (nothing): the writer must grow, not reuse
        assert a.recv() == i
    for i, arr in enumerate(kept):
        assert arr[0] == i % 251 and arr[-1] == i % 251, i
    assert a._ring.generation > 1
    del kept, arr, got
    for i in range(40):  # released now: the last ring is recycled from here on
        got = _packed_roundtrip(a, b, np.full(1 << 20, 7, np.uint8))
        assert got[0] == 7
        del got
        b.send(i)
        assert a.recv() == i
    generation = a._ring.generation
    for i in range(20):
        assert _packed_roundtrip(a, b, np.full(1 << 20, 9, np.uint8))[-1] == 9  # dropped
        b.send(i)
        assert a.recv() == i
    assert a._ring.generation == generation, "the ring grew although every view was dropped"


def test_views_outlive_the_endpoint():
    x, y = socket.socketpair()
    a, b = Endpoint(x), Endpoint(y)
    a.send(np.ones(1 << 20, np.uint8))
    b.recv()
    got = _packed_roundtrip(a, b, np.full(1 << 20, 5, np.uint8))
    a.close()
    b.close()  # the mapping stays while the view lives
    assert got[0] == 5 and got[-1] == 5 and got.sum() == 5 << 20
    del got
