"""Feeding trainers: PyTorch (:mod:`stoker.torch`) and JAX (:mod:`stoker.jax`).

The modules here are the only ones in stoker that import torch or jax, and they import
them lazily, on first use, so ``import stoker.torch`` works without torch installed and a
call then raises an ``ImportError`` that gives the pip command.
"""

from __future__ import annotations

__all__: list[str] = []
