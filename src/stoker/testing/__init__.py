"""Public helpers for testing pipelines and ops built on stoker."""

from stoker.testing.checkpoint import assert_checkpoint_roundtrip, assert_elements_equal

__all__ = ["assert_checkpoint_roundtrip", "assert_elements_equal"]
