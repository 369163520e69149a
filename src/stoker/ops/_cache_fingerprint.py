"""Pipeline fingerprints: what a file cache is keyed by, so that it is never read stale.

:func:`fingerprint` walks the dataset graph above a ``cache()`` and hashes (BLAKE2b)
everything that decides its elements:

* every dataset node: its class and its attributes (``vars(ds)``), minus labels and
  runtime state (``_name``, counters, a class's ``_fingerprint_exclude``), recursing
  into ``_inputs``;
* functions by their code (bytecode, constants, names; nested functions too), defaults,
  closure cells and the globals they reference, recursively; what the code reads through
  a module of the user's own (``mymod.helper``, ``mymod.OFFSET``, ``mymod.CFG["off"]``,
  ``pkg.sub.SCALE``) is hashed by value (functions by code). Functions and classes
  from installed libraries (site-packages, the standard library, stoker itself) are
  hashed by qualified name and library version instead of code;
* values: numbers, strings, bytes, containers, NumPy arrays (their bytes), dtypes,
  dataclasses, enums, and objects by their class and ``__dict__``/slots;
* source files: every string in the pipeline that names an existing regular file adds
  that file's size and modification time (file names of ``TFRecordDataset``,
  ``TextLineDataset`` and ``list_files`` are strings in the graph, so are paths in
  closures and constants); a string that names nothing adds that it names nothing.

Inputs and outputs. The hash of the structure (:attr:`Fingerprint.structure`) and the
state of each named file (:attr:`Fingerprint.paths`) are kept apart, and a cache's key is
``Fingerprint.key(outputs)``: the structure and every named file *except* the
outputs. The outputs are the named files that the filling pass itself changed: when it
completes, the cache re-stats every named file (:meth:`Fingerprint.changed`), and those
whose size or modification time changed during the pass (a log that the map function
appends to, a file it creates) are recorded in the cache's meta as ``outputs`` and left
out of its key. A later pipeline reads that list from the file and computes its key
without them, so the cache is reused although the log has grown since. Every other named
file is an input: a change to it between passes means another key, and the cache is
recomputed. The price: an input that something else changes *while* a cache is being
filled counts as an output of that fill.

What it cannot see: data a function reads on its own from somewhere other than a named
file (a database, a URL, a file whose name is built at run time), and objects it cannot
hash (open handles, C extension objects without state it can read). Those make the
fingerprint *unknown* (:attr:`Fingerprint.known` is False, :attr:`Fingerprint.unknown`
says what and where). An object can make itself hashable by defining
``__stoker_fingerprint__(self)``, returning a str or bytes that changes whenever what
the object does changes (e.g. a model's weights version).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import logging
import os
import stat
import struct
import sys
import sysconfig
import threading
import types
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np

from stoker.dataset import Dataset

__all__ = ["Fingerprint", "describe_pipeline", "fingerprint"]

#: Attributes of every dataset that do not change its elements.
_EXCLUDED = frozenset({"_name", "_root_passes"})
_MAX_OBJECTS = 1_000_000
_MAX_DEPTH = 300
_MAX_STATS = 100_000
_MAX_PATH = 4096
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: set for classes defined in Python
_IGNORED_TYPES: tuple[type, ...] = (
    type(threading.Lock()),
    type(threading.RLock()),
    threading.Condition,
    threading.Event,
    weakref.ref,
)


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """The fingerprint of a pipeline.

    Attributes:
        digest: 32 hex digits.
        known: False when something could not be hashed (see ``unknown``).
        unknown: Up to 10 descriptions of what could not be hashed, and where.
        pipeline: The pipeline in one line, e.g. ``range -> map(parse) -> batch``.
        files: Source files whose size and modification time are covered.
        unchecked_files: Strings that were not checked for being files (over the limit
            of 100,000 checks per fingerprint).
    """

    digest: str
    known: bool
    unknown: tuple[str, ...]
    pipeline: str
    files: int
    unchecked_files: int = 0
    structure: str = ""
    paths: dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False)

    def key(self, outputs: Iterable[str] = ()) -> str:
        """The digest of the structure and of every named file but ``outputs``.

        ``key()`` is :attr:`digest`. A cache's meta records the outputs of the pass that
        filled it, and its key is ``key(outputs)``.
        """
        skip = set(outputs)
        h = hashlib.blake2b(digest_size=16)
        h.update(self.structure.encode())
        for name in sorted(self.paths):
            if name in skip:
                continue
            data = self.paths[name]
            for part in (name.encode("utf-8", "surrogatepass"), data):
                h.update(struct.pack("<Q", len(part)))
                h.update(part)
        return h.hexdigest()

    def changed(self) -> list[str]:
        """The named files whose size or modification time differ from when the
        fingerprint was taken (or that appeared or went since), sorted."""
        return sorted(name for name, data in self.paths.items() if _stat_data(name) != data)


def fingerprint(dataset: Dataset, ignore_paths: tuple[str, ...] = ()) -> Fingerprint:
    """The fingerprint of ``dataset`` (the pipeline that produces its elements).

    Args:
        dataset: The dataset whose elements a cache would hold.
        ignore_paths: Paths (and names starting with them) not to stat, e.g. the cache
            file itself, whose modification time would otherwise change the fingerprint.

    Returns:
        A :class:`Fingerprint`.
    """
    walker = _Walker(tuple(os.path.abspath(p) for p in ignore_paths if p))
    walker.feed(b"stoker-fingerprint-1", f"{sys.version_info[0]}.{sys.version_info[1]}".encode())
    walker.value(dataset, describe_pipeline(dataset, short=True))
    unknown = tuple(dict.fromkeys(walker.unknown))[:10]
    fp = Fingerprint(
        digest="",
        known=not walker.unknown,
        unknown=unknown,
        pipeline=describe_pipeline(dataset),
        files=sum(1 for data in walker.paths.values() if data),
        unchecked_files=walker.unchecked,
        structure=walker.hexdigest(),
        paths=walker.paths,
    )
    return dataclasses.replace(fp, digest=fp.key())


def _stat_data(name: str) -> bytes:
    """Size and modification time of the regular file ``name``; b"" if there is none."""
    try:
        st = os.stat(name)
    except (OSError, ValueError):
        return b""
    if not stat.S_ISREG(st.st_mode):
        return b""
    return struct.pack("<Qq", st.st_size, st.st_mtime_ns)


def describe_pipeline(dataset: Dataset, short: bool = False) -> str:
    """``range -> map(parse) -> batch``: the ops above ``dataset``, inputs first."""

    def op(ds: Dataset) -> str:
        name = str(getattr(ds, "_op_name", type(ds).__name__))
        fn = getattr(ds, "_fn", None)
        if fn is not None and not short:
            name += f"({getattr(fn, '__qualname__', None) or type(fn).__name__})"
        return name

    def walk(ds: Dataset, depth: int) -> str:
        inputs = [d for d in getattr(ds, "_inputs", ()) if isinstance(d, Dataset)]
        if depth > 50:
            return "..."
        if not inputs:
            return op(ds)
        if len(inputs) == 1:
            return f"{walk(inputs[0], depth + 1)} -> {op(ds)}"
        return f"{op(ds)}({', '.join(walk(d, depth + 1) for d in inputs)})"

    return walk(dataset, 0)


@functools.lru_cache(maxsize=None)
def _library_dirs() -> tuple[str, ...]:
    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(os.path.realpath(path))
    for path in sys.path:
        if path.endswith(("site-packages", "dist-packages")):
            dirs.add(os.path.realpath(path))
    return tuple(sorted(dirs))


@functools.lru_cache(maxsize=4096)
def _library_version(module_name: str | None) -> str | None:
    """The version of the library ``module_name`` belongs to, or None if it is user code.

    User code (``__main__``, scripts, packages outside site-packages, editable installs)
    is hashed by its code; library code by name and version.
    """
    if not module_name or module_name in ("builtins", "__builtin__"):
        return "builtin"
    root = module_name.split(".", 1)[0]
    if root == "stoker":
        from stoker.cache.format import FORMAT_VERSION

        return f"stoker-{_version_of('stoker')}-{FORMAT_VERSION}"
    if module_name == "__main__":
        return None
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if module is None:
        return None  # not importable by name: e.g. a function defined in exec'd code
    if path is None:
        return f"builtin-{root}"  # built-in or frozen module
    real = os.path.realpath(path)
    if any(real.startswith(d + os.sep) for d in _library_dirs()):
        return f"{root}-{_version_of(root)}"
    return None


def _version_of(root: str) -> str:
    module = sys.modules.get(root)
    version = getattr(module, "__version__", None)
    if version is None and root in sys.stdlib_module_names:
        return f"python-{sys.version_info[0]}.{sys.version_info[1]}"
    return str(version)


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _names(c)
    return names


class _Walker:
    def __init__(self, ignore_paths: tuple[str, ...]):
        self._h = hashlib.blake2b(digest_size=16)
        self._memo: dict[int, int] = {}
        self._alive: list[Any] = []  # keeps ids in _memo from being reused meanwhile
        self._depth = 0
        self._ignore = ignore_paths
        self.unknown: list[str] = []
        self.unchecked = 0
        self._stats = 0
        self.paths: dict[str, bytes] = {}  # name -> size and mtime (b"": not a file)

    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def feed(self, tag: bytes, data: bytes | memoryview = b"") -> None:
        h = self._h
        h.update(tag)
        h.update(struct.pack("<Q", memoryview(data).nbytes))
        h.update(data)

    def _unknown(self, obj: Any, where: str) -> None:
        t = type(obj)
        self.unknown.append(f"{where}: {t.__module__}.{t.__qualname__}")
        self.feed(b"?")

    def _path(self, name: str) -> None:
        # The name itself is hashed with the structure; the file's state is kept apart
        # (Fingerprint.paths), so that the outputs of a pass can be left out of the key.
        if not name or len(name) > _MAX_PATH or "\0" in name or name in self.paths:
            return
        if self._ignore:
            full = os.path.abspath(name)
            if any(full.startswith(p) for p in self._ignore):
                return
        if self._stats >= _MAX_STATS:
            self.unchecked += 1
            return
        self._stats += 1
        self.paths[name] = _stat_data(name)

    def value(self, obj: Any, where: str) -> None:
        t = type(obj)
        if obj is None or t is bool:
            self.feed(b"c", repr(obj).encode())
            return
        if t is int:
            self.feed(b"i", str(obj).encode())
            return
        if t is float or t is complex:
            self.feed(b"r", repr(obj).encode())
            return
        if t is str:
            self.feed(b"s", obj.encode("utf-8", "surrogatepass"))
            self._path(obj)
            return
        if t is bytes:
            self.feed(b"b", obj)
            if len(obj) <= _MAX_PATH:
                self._path(os.fsdecode(obj))
            return
        key = id(obj)
        seen = self._memo.get(key)
        if seen is not None:
            self.feed(b"@", str(seen).encode())
            return
        self._memo[key] = len(self._memo)
        self._alive.append(obj)
        if len(self._memo) > _MAX_OBJECTS or self._depth > _MAX_DEPTH:
            self.unknown.append(f"{where}: the pipeline description is too large to hash")
            return
        self._depth += 1
        try:
            self._object(obj, t, where)
        finally:
            self._depth -= 1

    def _object(self, obj: Any, t: type, where: str) -> None:
        hook = getattr(t, "__stoker_fingerprint__", None)
        if hook is not None and not isinstance(obj, type):
            self.feed(b"hook")
            self.value(self._type_name(t), where)
            self.value(hook(obj), f"{where}.__stoker_fingerprint__()")
        elif isinstance(obj, Dataset):
            self._dataset(obj, where)
        elif t is np.ndarray:
            self._array(obj, where)
        elif isinstance(obj, np.generic):
            self.feed(b"g", obj.dtype.str.encode())
            self.value(np.asarray(obj), where)
        elif t is np.dtype or isinstance(obj, np.dtype):
            self.feed(b"dtype", str(obj).encode())
        elif isinstance(obj, (tuple, list)):
            self.feed(b"seq", self._type_name(t).encode())
            self.feed(b"n", str(len(obj)).encode())
            for i, v in enumerate(obj):
                self.value(v, f"{where}[{i}]")
        elif isinstance(obj, dict):
            self.feed(b"dict", self._type_name(t).encode())
            self.feed(b"n", str(len(obj)).encode())
            for k, v in obj.items():
                self.value(k, where)
                self.value(v, f"{where}[{k!r}]")
        elif isinstance(obj, (set, frozenset)):
            digests = sorted(self._sub_digest(v, f"{where}{{...}}") for v in obj)
            self.feed(b"set", b"".join(digests))
        elif t is types.FunctionType:
            self._function(obj, where)
        elif t is types.MethodType:
            self.feed(b"method")
            self.value(obj.__func__, where)
            self.value(obj.__self__, f"{where}.__self__")
        elif isinstance(obj, (types.BuiltinFunctionType, np.ufunc)):
            self.feed(b"builtin", f"{getattr(obj, '__module__', None)}.{obj.__name__}".encode())
            owner = getattr(obj, "__self__", None)
            if owner is not None and not isinstance(owner, types.ModuleType):
                self.value(owner, f"{where}.__self__")
        elif isinstance(obj, functools.partial):
            self.feed(b"partial")
            self.value(obj.func, where)
            self.value(obj.args, f"{where}.args")
            self.value(obj.keywords, f"{where}.keywords")
        elif t is types.ModuleType:
            self.feed(b"module", f"{obj.__name__}-{_version_of(obj.__name__)}".encode())
        elif isinstance(obj, type):
            self._class(obj, where)
        elif t is types.CodeType:
            self._code(obj, where)
        elif t in (range, slice):
            self.feed(b"repr", repr(obj).encode())
        elif isinstance(obj, enum.Enum):
            self.feed(b"enum", f"{self._type_name(t)}.{obj.name}".encode())
            self.value(t, where)
        elif isinstance(obj, logging.Logger):
            self.feed(b"logger", obj.name.encode())
        elif isinstance(obj, _IGNORED_TYPES):
            self.feed(b"ignored", self._type_name(t).encode())
        elif dataclasses.is_dataclass(obj):
            self.value(t, where)
            for f in dataclasses.fields(obj):
                self.value(getattr(obj, f.name, None), f"{where}.{f.name}")
        else:
            self._instance(obj, t, where)

    @staticmethod
    def _type_name(t: type) -> str:
        return f"{t.__module__}.{t.__qualname__}"

    def _sub_digest(self, obj: Any, where: str) -> bytes:
        saved, self._h = self._h, hashlib.blake2b(digest_size=16)
        try:
            self.value(obj, where)
            return self._h.digest()
        finally:
            self._h = saved

    def _dataset(self, ds: Dataset, where: str) -> None:
        t = type(ds)
        self.feed(b"dataset")
        self.value(t, where)
        excluded = _EXCLUDED | frozenset(getattr(t, "_fingerprint_exclude", ()))
        op = getattr(ds, "_op_name", t.__name__)
        for k in sorted(vars(ds)):
            if k in excluded:
                continue
            self.feed(b"attr", k.encode())
            self.value(vars(ds)[k], f"{where}[{op}].{k.lstrip('_')}")

    def _array(self, arr: np.ndarray, where: str) -> None:
        self.feed(b"array", f"{arr.dtype.str}{arr.shape}".encode())
        if arr.dtype.hasobject:
            for i, v in enumerate(arr.ravel().tolist()):
                self.value(v, f"{where}[{i}]")
            return
        self.feed(b"data", np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)
        if arr.dtype.kind in "US":
            for name in arr.ravel().tolist():
                self._path(name if isinstance(name, str) else os.fsdecode(name))

    def _function(self, fn: types.FunctionType, where: str) -> None:
        name = f"{fn.__module__}.{fn.__qualname__}"
        where = f"{where}<{fn.__qualname__}>"
        version = _library_version(fn.__module__)
        self.feed(b"function", name.encode())
        if version is not None:
            self.feed(b"library", version.encode())
        else:
            self._code(fn.__code__, where)
            self._globals(fn, where)
        self.value(fn.__defaults__, f"{where}.defaults")
        self.value(fn.__kwdefaults__, f"{where}.kwdefaults")
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell: a name assigned later in the outer function
                self.feed(b"empty-cell", var.encode())
                continue
            self.value(contents, f"{where}.closure[{var!r}]")
            if isinstance(contents, types.ModuleType) and version is None:
                # `import helper` inside an enclosing function: read as `helper.OFFSET`.
                self._module_members(contents, _names(fn.__code__), f"{where}.{var}", set())

    def _globals(self, fn: types.FunctionType, where: str) -> None:
        names = _names(fn.__code__)
        g = fn.__globals__
        for n in sorted(names):
            if n not in g:
                continue
            v = g[n]
            self.feed(b"global", n.encode())
            self.value(v, f"{where}.global[{n!r}]")
            if isinstance(v, types.ModuleType):
                self._module_members(v, names, f"{where}.{n}", set())

    def _module_members(
        self, module: types.ModuleType, names: set[str], where: str, seen: set[int]
    ) -> None:
        """Hash what code reads through a module of the user's own: ``mymod.helper(x)``,
        ``mymod.OFFSET``, ``mymod.CFG["off"]``, ``pkg.sub.SCALE`` (recursively).

        Every attribute of the module named by the code is hashed by value (functions by
        code). Modules of installed libraries are covered by their version instead.
        """
        if id(module) in seen or _library_version(module.__name__) is not None:
            return
        seen.add(id(module))
        members = vars(module)
        for attr in sorted(names):
            if attr not in members or (attr.startswith("__") and attr.endswith("__")):
                continue
            member = members[attr]
            self.feed(b"member", attr.encode())
            self.value(member, f"{where}.{attr}")
            if isinstance(member, types.ModuleType):
                self._module_members(member, names, f"{where}.{attr}", seen)

    def _code(self, code: types.CodeType, where: str) -> None:
        self.feed(b"code", code.co_code)
        self.feed(b"names", "\0".join(code.co_names).encode())
        self.feed(b"vars", "\0".join(code.co_varnames).encode())
        self.feed(b"free", "\0".join(code.co_freevars + code.co_cellvars).encode())
        self.feed(
            b"args",
            struct.pack("<III", code.co_argcount, code.co_kwonlyargcount, code.co_flags),
        )
        for c in code.co_consts:
            self.value(c, f"{where}.const")

    def _class(self, cls: type, where: str) -> None:
        self.feed(b"class", self._type_name(cls).encode())
        version = _library_version(cls.__module__)
        if version is not None:
            self.feed(b"library", version.encode())
            return
        for base in cls.__bases__:
            self.value(base, where)
        for k, v in sorted(vars(cls).items()):
            if isinstance(v, (staticmethod, classmethod)):
                v = v.__func__
            if isinstance(v, property):
                v = (v.fget, v.fset)
            if isinstance(v, (types.FunctionType, tuple, str, int, float, bool, bytes)):
                self.feed(b"member", k.encode())
                self.value(v, f"{where}.{k}")

    def _instance(self, obj: Any, t: type, where: str) -> None:
        state = getattr(obj, "__dict__", None)
        slots = [s for c in t.__mro__ for s in getattr(c, "__slots__", ()) if s != "__dict__"]
        # A class implemented in C (an open file, a random generator, a C++ model) keeps
        # its state where neither __dict__ nor slots show it: such an object is unknown.
        opaque = any(not c.__flags__ & _HEAPTYPE for c in t.__mro__ if c is not object)
        if opaque or (state is None and not slots):
            self._unknown(obj, where)
            return
        self.feed(b"object")
        self.value(t, where)
        if isinstance(state, dict):
            for k in sorted(state):
                self.feed(b"attr", k.encode())
                self.value(state[k], f"{where}.{k}")
        for s in slots:
            self.feed(b"slot", s.encode())
            self.value(getattr(obj, s, None), f"{where}.{s}")
