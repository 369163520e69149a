"""stoker's benchmark suite (not part of the installed package).

``python -m benchmarks`` runs every ``bench_*.py`` here and merges their results; each
script also runs on its own (``python benchmarks/bench_tfrecord.py --quick``). The JSON
contract every script follows is in ``benchmarks/_common.py``; the runner is
``benchmarks/runner.py``.
"""
