"""How much of the machine a step uses: FLOPs, FLOP/s, share of matmul peak.

* `step_flops`: the floating-point operations of one compiled step, from
  XLA's cost analysis (for the whole global step, all devices together).
  A step that picks a phase with `lax.cond` (pointnet_id_vae's
  discriminator pre-training) is counted with both branches, so its figure
  is an upper bound.
* `matmul_peak`: the FLOP/s of a jitted square float32 matmul on all local
  devices, measured once per machine and device kind and cached as JSON
  (`~/.cache/disent_jax/matmul_peak.json`), the reference the loop divides
  by. It is what this JAX build reaches on a large dense matmul, not the
  vendor's datasheet figure. Measured on a busy machine it is too low:
  delete the JSON file to measure again.
* `Meter`: turns the wall time between two log steps into `steps_per_s`,
  `step_gflop`, `gflop_per_s` and `matmul_peak_fraction`.
"""

import json
import os
import pathlib
import time
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp

from disent_jax.train import compile_cache

SIZE = 2048


def step_flops(compiled: Any) -> float | None:
  """FLOPs of one call of a compiled executable (None if XLA cannot tell)."""
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-exception-caught
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  if not analysis or "flops" not in analysis:
    return None
  flops = float(analysis["flops"])
  return flops if flops > 0 else None


def _cache_path() -> pathlib.Path:
  return compile_cache.user_cache_dir() / "matmul_peak.json"


def _machine_key() -> str:
  d = jax.local_devices()[0]
  return (f"{d.platform}:{d.device_kind}:{jax.local_device_count()}:"
          f"{os.cpu_count()}:jax{jax.__version__}")


def measure_matmul_peak(*, size: int = SIZE, repeats: int = 5) -> float:
  """FLOP/s of a [size, size] float32 matmul on each local device, summed."""
  devices = jax.local_devices()
  mats = [jax.device_put(jnp.ones((size, size), jnp.float32), d)
          for d in devices]
  matmul = jax.jit(lambda a: a @ a)
  for m in mats:
    matmul(m).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    outs = [matmul(m) for m in mats]
    for o in outs:
      o.block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2.0 * size ** 3 * len(devices) / best


def matmul_peak(*, measure: bool = True) -> float | None:
  """The cached peak of this machine, measuring (a few seconds) if absent."""
  path = _cache_path()
  key = _machine_key()
  try:
    table = json.loads(path.read_text())
  except (OSError, ValueError):
    table = {}
  if key in table:
    return float(table[key])
  if not measure:
    return None
  peak = measure_matmul_peak()
  table[key] = peak
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=2) + "\n")
    tmp.replace(path)
  except OSError as e:
    logging.warning("could not cache the matmul peak in %s: %s", path, e)
  logging.info("matmul peak of %s: %.1f GFLOP/s", key, peak / 1e9)
  return peak


class Meter:
  """Throughput between log steps."""

  def __init__(self, flops: float | None, peak: float | None, step: int):
    self._flops = flops
    self._peak = peak
    self._step = step
    self._time = time.perf_counter()

  def update(self, step: int) -> dict[str, float]:
    """Metrics for the steps since the last call (all synchronised)."""
    now = time.perf_counter()
    steps, seconds = step - self._step, now - self._time
    self._step, self._time = step, now
    if steps <= 0 or seconds <= 0:
      return {}
    out = {"steps_per_s": steps / seconds}
    if self._flops is not None:
      rate = self._flops * steps / seconds
      out["step_gflop"] = self._flops / 1e9
      out["gflop_per_s"] = rate / 1e9
      if self._peak:
        out["matmul_peak_fraction"] = rate / self._peak
    return out
