"""Metric writing: JSON lines, TensorBoard (no TensorFlow) and a progress bar.

Only process 0 writes; other processes get no-op writers.
"""

import json
import math
import pathlib
import sys
import time
from typing import Any, Mapping, Sequence

from absl import logging
import jax
import numpy as np
import tensorboardX
import tqdm


def _to_float(value: Any) -> float:
  return float(np.asarray(value))


class MetricWriter:
  """Writes scalars to `metrics.jsonl` and TensorBoard event files."""

  def __init__(self, workdir: str, *, tensorboard: bool = True):
    self._active = jax.process_index() == 0
    self._jsonl = None
    self._tb = None
    if not self._active:
      return
    path = pathlib.Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    self._jsonl = open(path / "metrics.jsonl", "a", encoding="utf-8")
    if tensorboard:
      self._tb = tensorboardX.SummaryWriter(str(path / "tensorboard"))

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    """Appends one record `{"step": step, name: value, ...}`."""
    if not self._active:
      return
    values = {k: _to_float(v) for k, v in scalars.items()}
    record = {"step": int(step), "time": time.time()}
    record.update({k: (v if math.isfinite(v) else str(v))
                   for k, v in values.items()})
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in values.items():
        self._tb.add_scalar(k, v, global_step=int(step))

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
      self._jsonl = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None


class Progress:
  """A progress bar with rate and ETA (process 0), or periodic log lines."""

  def __init__(self, *, total: int, initial: int, enabled: bool = True,
               description: str = "train",
               keys: Sequence[str] | None = None):
    """A bar over `total` steps.

    Args:
      total: the last step.
      initial: the step the run starts (or resumes) from.
      enabled: show a bar at all (process 0 only).
      description: the bar's label.
      keys: scalars to show; default "loss" and the next two.
    """
    self._keys = tuple(keys) if keys else None
    self._bar = None
    if enabled and jax.process_index() == 0:
      self._bar = tqdm.tqdm(total=total, initial=initial, desc=description,
                            unit="step", dynamic_ncols=True, file=sys.stderr,
                            mininterval=0.5, smoothing=0.1)

  def update(self, step: int, scalars: Mapping[str, Any] | None = None
             ) -> None:
    """Moves the bar to `step`, showing a few scalars."""
    if self._bar is None:
      return
    self._bar.update(step - self._bar.n)
    if scalars:
      self._bar.set_postfix(self.postfix(scalars), refresh=False)

  def postfix(self, scalars: Mapping[str, Any]) -> dict[str, str]:
    """The scalars the bar shows: `keys` if given, else "loss" first."""
    if self._keys:
      names = [k for k in self._keys if k in scalars]
    else:
      names = sorted(scalars, key=lambda k: k != "loss")[:3]
    return {k: f"{_to_float(scalars[k]):.4g}" for k in names}

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None


def log_scalars(step: int, scalars: Mapping[str, Any]) -> None:
  if jax.process_index() == 0:
    text = ", ".join(f"{k}={_to_float(v):.5g}" for k, v in scalars.items())
    logging.info("step %d: %s", step, text)
