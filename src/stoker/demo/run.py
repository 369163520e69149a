"""Run the demo: build the data, train with each pipeline, measure, report.

The two runs train the same model from the same initial weights on the same files for the
same number of epochs; only the input pipeline differs. On a machine without CUDA the
model and the pipeline share the CPU cores, so the demo splits them on purpose: the model
gets ``torch.set_num_threads(T)`` (``T`` = half the cores, at least 1, or ``--threads``) and
the pipeline ``Options(cpu_budget=cores - T)``, at least 1. With CUDA the model runs on the
GPU and the pipeline may use every core but one (the training loop's).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stoker.options import cpu_count

__all__ = ["Config", "run"]


@dataclasses.dataclass
class Config:
    """The demo's settings (``stoker demo --help`` lists them as flags)."""

    data_dir: str | None = None
    out_dir: str = "stoker-demo"
    image_size: int = 64  # the model's input; images are stored at twice this
    images: int = 6144
    eval_images: int = 768
    shards: int = 8
    epochs: int = 3
    batch_size: int = 64
    device: str = "auto"
    threads: int | None = None
    seed: int = 0
    naive: bool = True
    baseline: bool = False  # also run a tuned torch DataLoader over the same files
    progress: bool = True

    @classmethod
    def smoke(cls, **overrides: Any) -> Config:
        """The smallest setting that still runs every part (CI runs it)."""
        small: dict[str, Any] = {
            "image_size": 32,
            "images": 768,
            "eval_images": 96,
            "shards": 4,
            "epochs": 3,
            "batch_size": 32,
        }
        small.update(overrides)
        return cls(**small)


def _pick_device(torch: Any, name: str) -> Any:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return dev


def _split_cores(device: Any, threads: int | None) -> tuple[int, int, str]:
    cores = cpu_count()
    if device.type == "cpu":
        model = threads or max(1, cores // 2)
        pipeline = max(1, cores - model)
        how = (
            f"{cores} CPU cores shared by model and pipeline: the model gets {model} "
            f"(torch.set_num_threads({model})), the pipeline {pipeline} "
            f"(Options(cpu_budget={pipeline}))"
        )
    else:
        model = threads or 1
        pipeline = max(1, cores - 1)
        how = (
            f"model on {device}; the pipeline may use {pipeline} of {cores} CPU cores "
            f"(Options(cpu_budget={pipeline})), one is left for the training loop"
        )
    return model, pipeline, how


def run(config: Config, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo with ``config``; returns the results also written to ``results.json``.

    Raises:
        ImportError: a package of the ``demo`` extra is missing (the message says which).
        ValueError: a setting is out of range.
    """
    try:
        import matplotlib  # noqa: F401
        import platformdirs  # noqa: F401
        import torch
        import tqdm  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"stoker demo needs {e.name}, which is not installed: pip install 'stoker[demo]' "
            "(on a machine without CUDA, install a CPU build of torch first, e.g. "
            "pip install torch==2.13.0)"
        ) from e

    import stoker.torch
    from stoker.demo import data, pipeline, report, train

    for name in ("image_size", "images", "eval_images", "shards", "epochs", "batch_size"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"--{name.replace('_', '-')}={value!r} must be a positive int")
    if config.image_size < 16:
        raise ValueError(f"--image-size={config.image_size} must be >= 16")
    if config.batch_size > config.images:
        raise ValueError(f"--batch-size={config.batch_size} is more than --images={config.images}")

    started = time.perf_counter()
    device = _pick_device(torch, config.device)
    model_threads, budget, how = _split_cores(device, config.threads)
    torch.set_num_threads(model_threads)
    out_dir = Path(config.out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    say(f"stoker demo: training a small CNN on {device} ({torch.__version__})")
    say(f"  {how}")
    build_started = time.perf_counter()
    ds = data.build(
        config.data_dir,
        image_size=2 * config.image_size,
        train_images=config.images,
        eval_images=config.eval_images,
        shards=config.shards,
        seed=config.seed,
        progress=config.progress and sys.stderr.isatty(),
    )
    verb = f"built (in {time.perf_counter() - build_started:.0f} s)" if ds.built else "reused"
    buffer = pipeline.shuffle_buffer(ds.train_images, config.batch_size)
    say(
        f"  data: {verb} {ds.train_images} training + {ds.eval_images} held-out "
        f"{ds.image_size}px JPEGs of {len(ds.classes)} shapes ({', '.join(ds.classes)}) in "
        f"{len(ds.train_files)} TFRecord shards at {ds.path}"
    )
    say(
        f"  pipeline: list_files -> interleave(TFRecordDataset) -> parse -> decode -> augment "
        f"-> resize {config.image_size}px -> shuffle {buffer} -> batch {config.batch_size} -> "
        f"prefetch -> device (chance accuracy {100 / len(ds.classes):.1f} %)"
    )
    eval_x, eval_y = pipeline.eval_arrays(ds.eval_files, config.image_size)

    t0 = time.perf_counter()
    runs: list[report.Summary] = []
    stats_report: Any = None
    plans: list[str] = []
    if config.naive:
        plans.append("naive")
    if config.baseline:
        plans.append("DataLoader")
        from stoker.demo import baseline

        loader = baseline.dataloader(
            ds.train_files,
            config.image_size,
            config.batch_size,
            config.seed,
            buffer,
            workers=budget,
            pin_memory=device.type == "cuda",
        )
    plans.append("stoker")
    for name in plans:
        model = train.make_model(len(ds.classes), config.seed).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
        epochs: list[train.EpochResult] = []
        say(f"  {name}:")
        for epoch in range(1, config.epochs + 1):
            last = epoch == config.epochs
            if name == "naive":
                ds_naive = pipeline.naive_pipeline(
                    ds.train_files, config.image_size, config.batch_size, config.seed, buffer
                )
                # No prefetch, no pinning: the loop converts and copies each batch itself.
                batches: Any = _Naive(ds_naive)
                trace_ctx = None
            elif name == "DataLoader":
                batches = _Loader(loader)
                trace_ctx = None
            else:
                ds_fast = pipeline.stoker_pipeline(
                    ds.train_files,
                    config.image_size,
                    config.batch_size,
                    config.seed,
                    budget,
                    buffer,
                )
                batches = stoker.torch.prefetch_to_device(ds_fast, device, buffer_size=2)
                trace_ctx = pipeline.trace(str(out_dir / "pipeline-trace.json")) if last else None
            it = iter(batches)
            try:
                if trace_ctx is not None:
                    with trace_ctx:
                        result = train.train_epoch(model, optimizer, it, device, epoch, t0)
                else:
                    result = train.train_epoch(model, optimizer, it, device, epoch, t0)
                if name == "stoker" and last:
                    stats_report = pipeline.pipeline_report(it.source)
            finally:
                it.close()
            result.eval_accuracy = train.evaluate(model, eval_x, eval_y, device)
            epochs.append(result)
            say(
                f"    epoch {epoch}/{config.epochs}  {result.wall_s:5.1f} s  "
                f"{result.images_per_s:6.0f} img/s  "
                f"waiting for data {100 * result.input_bound:5.1f} %"
                f"  loss {result.loss:.3f}  train acc {100 * result.accuracy:5.1f} %  "
                f"held-out acc {100 * result.eval_accuracy:5.1f} %"
            )
        runs.append(report.summarize(name, epochs, cpu_count()))

    if config.baseline:
        del loader  # stops its worker processes
    say("")
    say(f"  side by side ({config.epochs} epochs each, same model, data and initial weights):")
    say(report.side_by_side(runs))
    say("")
    if stats_report is not None:
        say(
            "  stoker's own report of its last epoch (it.stats()). Its consumer is "
            "prefetch_to_device's thread, not the model, so its input-bound share is that "
            "thread's wait; the model's is the figure above. The table shows where the "
            "pipeline's time went:"
        )
        say("    " + str(stats_report).replace("\n", "\n    "))
    else:
        say(
            "  (this build of stoker has no it.stats() report; "
            "the figures above are the loop's own)"
        )
    trace_path = out_dir / "trace.json"
    chart_path = out_dir / "throughput.png"
    report.write_consumer_trace(trace_path, runs)
    report.chart(chart_path, runs)
    results: dict[str, Any] = {
        "device": str(device),
        "cores": cpu_count(),
        "model_threads": model_threads,
        "pipeline_cpu_budget": budget,
        "config": dataclasses.asdict(config),
        "data": str(ds.path),
        "data_built": ds.built,
        "runs": [r.to_dict() for r in runs],
        "epochs": {
            r.name: [
                {k: v for k, v in dataclasses.asdict(e).items() if k != "steps"} for e in r.epochs
            ]
            for r in runs
        },
        "stats": _to_dict(stats_report),
        "wall_s": time.perf_counter() - started,
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    say(f"  wrote {trace_path} (the training loop's steps and waits: open in ui.perfetto.dev)")
    if (out_dir / "pipeline-trace.json").exists():
        say(f"  wrote {out_dir / 'pipeline-trace.json'} (stoker.trace of the last stoker epoch)")
    say(f"  wrote {chart_path} (throughput and waiting over time)")
    say(f"  wrote {out_dir / 'results.json'}")
    say(f"  done in {results['wall_s']:.0f} s")
    return results


class _Loader:
    """One epoch of the DataLoader (its persistent workers outlive the epoch)."""

    def __init__(self, loader: Any):
        self.source = iter(loader)

    def __iter__(self) -> _Loader:
        return self

    def __next__(self) -> Any:
        return next(self.source)

    def close(self) -> None:
        pass


class _Naive:
    """Batches made on the loop's thread when it asks, as plain CPU tensors."""

    def __init__(self, dataset: Any):
        self.source = iter(dataset)

    def __iter__(self) -> _Naive:
        return self

    def __next__(self) -> Any:
        import stoker.torch

        return stoker.torch.to_torch(next(self.source))

    def close(self) -> None:
        self.source.close()


def _to_dict(stats_report: Any) -> Any:
    to_dict = getattr(stats_report, "to_dict", None)
    return to_dict() if callable(to_dict) else None


def default_out_dir() -> str:
    """Where outputs go unless ``--out-dir`` says: ``./stoker-demo``."""
    return os.path.join(os.getcwd(), "stoker-demo")
