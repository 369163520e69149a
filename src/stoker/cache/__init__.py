"""Cache files: the format ``Dataset.cache(filename)`` writes, and what one holds.

``cache_info(filename)`` (or ``python -m stoker cache-info FILE``) reads a cache file's
header and metadata: the pipeline and fingerprint it was computed for, its element
structure, counts and sizes, and whether it is intact. See ``docs/cache.md``.
"""

from stoker.cache.info import CacheInfo, cache_info

__all__ = ["CacheInfo", "cache_info"]
