"""The demo's model and training loop, and what the loop measures about its input.

The loop times every ``next()`` on its batch iterator: that is the time the model (and
the accelerator behind it) sat idle waiting for data. ``input_bound`` is that time over the
epoch's wall time. On CUDA the loop reads ``loss.item()`` every step, which waits for the
step to finish, so the time blocked in ``next()`` is time the GPU had nothing queued.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psutil

__all__ = ["EpochResult", "Step", "evaluate", "make_model", "train_epoch"]


@dataclasses.dataclass(frozen=True)
class Step:
    """One training step, in seconds since the run's start."""

    start_s: float  # when the loop asked for the batch
    got_s: float  # when next() returned it
    end_s: float  # when the step finished
    images: int


@dataclasses.dataclass
class EpochResult:
    """What one epoch did and measured."""

    epoch: int
    wall_s: float
    images: int
    wait_s: float
    cpu_s: float  # process CPU time, worker processes included
    loss: float
    accuracy: float  # on the epoch's (augmented) training batches
    eval_accuracy: float = float("nan")
    steps: list[Step] = dataclasses.field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def input_bound(self) -> float:
        return self.wait_s / self.wall_s if self.wall_s > 0 else 0.0


def make_model(num_classes: int, seed: int) -> Any:
    """A small CNN: four 3x3 conv blocks (16-32-64-64 channels), global pool, linear."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    def block(cin: int, cout: int) -> list[Any]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(3, 16),
        nn.MaxPool2d(2),
        *block(16, 32),
        nn.MaxPool2d(2),
        *block(32, 64),
        nn.MaxPool2d(2),
        *block(64, 64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


def _to_input(images: Any, device: Any) -> Any:
    # NHWC uint8 → NCHW float32 in [0, 1], on the device (the copy there is still uint8).
    x = images.to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def _cpu_s(proc: psutil.Process) -> float:
    """CPU time of this process and its children, live ones (worker processes) included."""
    t = proc.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.Error:  # it ended meanwhile; its time is counted once reaped
            continue
        total += c.user + c.system
    return float(total)


def train_epoch(
    model: Any, optimizer: Any, batches: Iterator[Any], device: Any, epoch: int, t0: float
) -> EpochResult:
    """One pass over ``batches`` (``(images, labels)`` tensors), timing every ``next()``."""
    from torch.nn import functional

    proc = psutil.Process()
    cpu0 = _cpu_s(proc)
    model.train()
    steps: list[Step] = []
    wait = 0.0
    loss_sum = 0.0
    correct = 0
    seen = 0
    start = time.perf_counter()
    while True:
        asked = time.perf_counter()
        try:
            images, labels = next(batches)
        except StopIteration:
            break
        got = time.perf_counter()
        wait += got - asked
        x = _to_input(images, device)
        y = labels.to(device, non_blocking=True)
        logits = model(x)
        loss: Any = functional.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n = int(y.shape[0])
        loss_sum += float(loss.item()) * n  # .item() waits for the step: see the docstring
        correct += int((logits.argmax(1) == y).sum().item())
        seen += n
        steps.append(Step(asked - t0, got - t0, time.perf_counter() - t0, n))
    wall = time.perf_counter() - start
    return EpochResult(
        epoch=epoch,
        wall_s=wall,
        images=seen,
        wait_s=wait,
        cpu_s=_cpu_s(proc) - cpu0,
        loss=loss_sum / max(seen, 1),
        accuracy=correct / max(seen, 1),
        steps=steps,
    )


def evaluate(model: Any, images: np.ndarray, labels: np.ndarray, device: Any) -> float:
    """Accuracy on held-out ``uint8`` NHWC ``images``."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), 256):
            x = _to_input(torch.from_numpy(np.ascontiguousarray(images[i : i + 256])), device)
            y = torch.from_numpy(np.ascontiguousarray(labels[i : i + 256])).to(device)
            correct += int((model(x).argmax(1) == y).sum().item())
    return correct / max(len(images), 1)
