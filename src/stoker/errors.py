"""Every exception stoker raises on its own behalf.

Bad arguments to a public function raise the builtin ``ValueError`` or ``TypeError``.
Everything that goes wrong while a pipeline runs raises a subclass of ``StokerError``::

    StokerError
    ├── DataLossError          a record or file is corrupt or truncated (names file and offset)
    ├── InvalidElementError    an element does not fit the op (shapes in batch, signature, …)
    │                          also a ValueError, so ``except ValueError`` keeps working
    ├── WorkerError            a worker process died or could not start
    ├── CacheError             a cache file cannot be written or is not a stoker cache
    └── CheckpointError        a state cannot be saved or does not fit the pipeline

An exception raised by a user function is never wrapped: it reaches the consumer as the
same exception object, with the user's traceback and a note (``exc.add_note``) naming the
stage it came from.
"""

from __future__ import annotations

__all__ = [
    "CacheError",
    "CheckpointError",
    "DataLossError",
    "InvalidElementError",
    "StokerError",
    "WorkerError",
]


class StokerError(Exception):
    """Base class of the errors stoker raises on its own behalf."""


class DataLossError(StokerError):
    """A record or file is corrupt or truncated.

    Attributes:
        path: The file that holds the bad record, or ``None`` when not a file.
        offset: Byte offset of the bad record in the (uncompressed) stream.
    """

    def __init__(self, message: str, path: str | None = None, offset: int | None = None):
        super().__init__(message)
        self.path = path
        self.offset = offset


class InvalidElementError(StokerError, ValueError):
    """An element does not fit what an op needs (e.g. shapes that cannot be batched)."""


class WorkerError(StokerError):
    """A worker process died, or could not be started, while running a stage."""


class CacheError(StokerError):
    """A cache file cannot be written, or what is on disk is not a usable stoker cache."""


class CheckpointError(StokerError):
    """An iterator's state cannot be saved, or a saved state does not fit the pipeline."""
