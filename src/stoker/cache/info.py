"""``cache_info``: what a cache file holds, without reading its records."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from stoker.cache._codec import describe_spec
from stoker.cache.format import FORMAT_VERSION, CacheDamaged, CacheReader, resolve_cache_path
from stoker.errors import CacheError

__all__ = ["CacheInfo", "cache_info"]


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    """What a cache file holds.

    Attributes:
        path: The file.
        file_bytes: Its size. [Unit: byte]
        valid: Whether stoker can read it (complete, intact header, index and metadata;
            with ``verify=True`` also every record).
        problem: Why it is not valid, else ``None``.
        format_version: The format version stoker reads (the file's, when valid).
        count: Number of elements.
        data_bytes: Bytes of element data (arrays, strings), without layout. [Unit: byte]
        elements: The element structures, e.g. ``(int64[], {'x': float32[?,3]})``; ``?``
            marks a dimension that varies between elements.
        pipeline: The pipeline that computed it, e.g. ``range -> map(parse)``.
        fingerprint: The fingerprint of that pipeline; a pipeline with another one does
            not read this file.
        fingerprint_known: False if part of the pipeline could not be hashed; such a file
            is only reused by the process that wrote it.
        unknown: What could not be hashed, and where.
        source_files: Source files whose size and modification time the fingerprint covers.
        outputs: Files named in the pipeline that the filling pass changed (e.g. a log its
            map function appends to): outputs, left out of the fingerprint.
        created: When the file was completed (ISO 8601, UTC).
        writer: ``{"pid", "host"}`` of the process that wrote it.
        versions: Python, NumPy and stoker versions of the writer.
        verified: Whether every record was read and checked against its CRC.
    """

    path: str
    file_bytes: int
    valid: bool
    problem: str | None = None
    format_version: int = FORMAT_VERSION
    count: int | None = None
    data_bytes: int | None = None
    elements: tuple[str, ...] = ()
    pipeline: str | None = None
    fingerprint: str | None = None
    fingerprint_known: bool | None = None
    unknown: tuple[str, ...] = ()
    source_files: int | None = None
    outputs: tuple[str, ...] = ()
    created: str | None = None
    writer: dict[str, Any] = dataclasses.field(default_factory=dict)
    versions: dict[str, Any] = dataclasses.field(default_factory=dict)
    verified: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        lines = [f"stoker cache file {self.path} ({self.file_bytes:,} bytes)"]
        if not self.valid:
            lines.append(f"  NOT USABLE: {self.problem}")
        if self.count is None:
            return "\n".join(lines)
        status = "complete, every record verified" if self.verified else "complete"
        lines += [
            f"  status:       {status if self.valid else 'damaged'}",
            f"  format:       version {self.format_version}",
            f"  elements:     {self.count:,} ({self.data_bytes or 0:,} bytes of data)",
        ]
        lines += [f"  structure:    {e}" for e in self.elements]
        known = "" if self.fingerprint_known else " (unknown parts: only its writer reuses it)"
        lines += [
            f"  pipeline:     {self.pipeline}",
            f"  fingerprint:  {self.fingerprint}{known}",
        ]
        lines += [f"    cannot hash {u}" for u in self.unknown]
        lines += [
            f"  source files: {self.source_files} (names, sizes and mtimes in the fingerprint)",
            *(
                f"  output file:  {o} (changed by the filling pass; not in the fingerprint)"
                for o in self.outputs
            ),
            f"  created:      {self.created} by pid {self.writer.get('pid')} on "
            f"{self.writer.get('host')}",
            "  versions:     " + ", ".join(f"{k} {v}" for k, v in sorted(self.versions.items())),
        ]
        return "\n".join(lines)


def cache_info(filename: str | os.PathLike[str], verify: bool = False) -> CacheInfo:
    """Describe the cache file ``filename`` (written by ``Dataset.cache(filename)``).

    Args:
        filename: The cache file.
        verify: Also read every record and check it against its CRC (reads the whole
            file); otherwise only the header, index and metadata are checked.

    Returns:
        A :class:`CacheInfo`; ``valid`` is False for a damaged or partial stoker cache.

    Raises:
        FileNotFoundError: There is no file at ``filename``.
        CacheError: ``filename`` is not a stoker cache file (another file, a directory,
            a device, a FIFO, a socket, a dangling symbolic link); nothing that is not a
            regular file is opened.

    Example::

        info = stoker.cache_info("/tmp/features.stoker")
        print(info.count, info.pipeline, info.valid)
        print(info)  # the report ``python -m stoker cache-info FILE`` prints
    """
    path = os.fspath(filename)
    size = os.stat(resolve_cache_path(path)).st_size  # refuses a FIFO, a directory...
    try:
        reader = CacheReader(path)
    except CacheDamaged as e:
        return CacheInfo(path=path, file_bytes=size, valid=False, problem=str(e))
    try:
        meta = reader.meta
        problem = None
        if verify:
            try:
                reader.verify()
            except CacheError as e:
                problem = str(e)
        shapes = meta.get("shapes") or []
        try:
            elements = tuple(
                describe_spec(spec, shapes[i] if i < len(shapes) else None)
                for i, spec in enumerate(meta.get("specs", []))
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            elements = ("(unreadable structure)",)
        return CacheInfo(
            path=path,
            file_bytes=size,
            valid=problem is None,
            problem=problem,
            count=reader.count,
            data_bytes=meta.get("data_bytes"),
            elements=elements,
            pipeline=meta.get("pipeline"),
            fingerprint=meta.get("fingerprint"),
            fingerprint_known=meta.get("fingerprint_known"),
            unknown=tuple(meta.get("unknown") or ()),
            source_files=meta.get("source_files"),
            outputs=tuple(str(o) for o in meta.get("outputs") or ()),
            created=meta.get("created"),
            writer=dict(meta.get("writer") or {}),
            versions=dict(meta.get("versions") or {}),
            verified=verify and problem is None,
        )
    finally:
        reader.close()
