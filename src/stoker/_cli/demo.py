"""``stoker demo``: train a small CNN, naive input pipeline vs stoker's, and report."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from stoker.demo.run import Config, run

    given = {
        k: v
        for k, v in {
            "data_dir": args.data_dir,
            "out_dir": args.out_dir,
            "image_size": args.image_size,
            "images": args.images,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "device": args.device,
            "threads": args.threads,
            "seed": args.seed,
        }.items()
        if v is not None
    }
    config = Config.smoke(**given) if args.smoke else Config(**given)
    config.naive = not args.no_naive
    config.baseline = args.baseline
    config.progress = not args.no_progress
    try:
        run(config, say=lambda line: print(line, flush=True))
    except (ImportError, ValueError) as e:
        print(f"stoker demo: {e}", file=sys.stderr)
        return 2
    return 0


def register(commands: Any) -> None:
    """Add the ``demo`` subparser."""
    p = commands.add_parser(
        "demo",
        help="train a small CNN with a naive pipeline and with stoker's, and compare",
        description=(
            "Build a synthetic image data set (first run only), train a small CNN in PyTorch "
            "with a naive input pipeline and with stoker's, and report images/s, epoch "
            "time, how long the model waited for data, CPU use, a Chrome trace and a chart. "
            "About two minutes on a 2-core machine at the default size."
        ),
    )
    p.add_argument("--smoke", action="store_true", help="tiny setting for CI (< 1 minute)")
    p.add_argument("--images", type=int, help="training images (default 6144)")
    p.add_argument("--image-size", type=int, help="model input size in pixels (default 64)")
    p.add_argument("--epochs", type=int, help="epochs per pipeline (default 3)")
    p.add_argument("--batch-size", type=int, help="batch size (default 64)")
    p.add_argument("--device", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:1, ...")
    p.add_argument(
        "--threads", type=int, help="torch threads for the model (default: half the cores)"
    )
    p.add_argument("--seed", type=int, help="seed of data, augmentation and weights (default 0)")
    p.add_argument(
        "--data-dir",
        help="where the data set is kept (default $STOKER_DEMO_DATA or the user cache)",
    )
    p.add_argument(
        "--out-dir", help="where the trace, chart and results go (default ./stoker-demo)"
    )
    p.add_argument("--no-naive", action="store_true", help="skip the naive pipeline's run")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also train with a tuned torch DataLoader (workers, pinned memory) on the same files",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar while building")
    p.set_defaults(func=_run)
