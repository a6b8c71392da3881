"""The training loop's overhead: wall time per step against the bare step.

    python -m benchmarks.harness [--quick]

For a config, two numbers from the same process:

* ours: the steady-state wall time per step of `train.loop.train` (data,
  transfers, metrics, progress, checkpoints included), read from the
  timestamps of the metric records after the first one (compilation);
* peer: the bare jitted step (`loop.make_train_step`) called back to back on
  one batch already on the device, synchronised once at the end.

ratio = bare / loop: 1.0 means data loading and logging are fully hidden.
A second row per config reports the step's compile time (`compile_s` of the
first record; this process does not enable the persistent cache, so it is
a cold compile).

The same benchmark run at commit 44d169e (the loop that fetched every
step's metrics) gave 474 ms per loop step against 436 ms for the bare step
on the main job (0.92x).
"""

import json
import pathlib
import tempfile
import time

import jax.numpy as jnp

from benchmarks import common
from disent_jax import methods
from disent_jax.train import config_utils
from disent_jax.train import loop
from disent_jax.train import partitioning
from disent_jax.train import state as state_lib
from disent_jax.train import utilisation

_CASES = (
    # (label, config, variant, steps, steps with --quick)
    ("pointnet_id_vae main job", "pointnet_id_vae", None, 400, 220),
    ("demo", "demo", None, 600, 200),
)


def _config(name, variant, steps, log_every):
  c = config_utils.load_config(f"configs/{name}.py", variant)
  c.total_steps = steps
  c.log_every_steps = log_every
  c.eval_at_end = False
  c.progress_bar = False
  return c


def _records(workdir):
  path = pathlib.Path(workdir) / "metrics.jsonl"
  return [json.loads(line) for line in path.read_text().splitlines()]


def _warmup_steps(config) -> int:
  """Steps of a cheaper first phase (a discriminator's pre-training)."""
  return int(config.get("disc_pretrain_steps", 0))


def loop_step_seconds(config) -> tuple[float, dict]:
  """Steady-state seconds per step of the training loop, and record 0.

  Measured between the first record after the warm-up phase (and after
  compilation) and the last one.
  """
  method = methods.load(config.method).build(config)
  with tempfile.TemporaryDirectory() as workdir:
    loop.train(config, workdir, method)
    recs = _records(workdir)
  steady = [r for r in recs[1:] if r["step"] > _warmup_steps(config)]
  first, last = steady[0], steady[-1]
  return ((last["time"] - first["time"]) / (last["step"] - first["step"]),
          recs[0])


def bare_step_seconds(config, steps: int) -> float:
  """Seconds per call of the jitted step on one device-resident batch."""
  method = methods.load(config.method).build(config)
  mesh = partitioning.make_mesh(config.mesh.shape, config.mesh.axes)
  example = state_lib.example_batch(config, method, mesh)
  state, _, shardings = state_lib.init_state(config, method, mesh, example)
  step_fn = loop.make_train_step(config, method, mesh, shardings)
  # Past any warm-up branch (e.g. a discriminator pre-training phase, which
  # methods select from the state's own step counter).
  offset = _warmup_steps(config) + 1
  if isinstance(state, dict) and "step" in state:
    state = {**state, "step": jnp.full_like(state["step"], offset)}
  state, metrics = step_fn(state, example, jnp.asarray(offset, jnp.uint32))
  common.block((state, metrics))
  start = time.perf_counter()
  for i in range(steps):
    state, metrics = step_fn(state, example,
                             jnp.asarray(offset + 1 + i, jnp.uint32))
  common.block((state, metrics))
  return (time.perf_counter() - start) / steps


def main(argv=None) -> None:
  args = common.parse_args("harness", argv)
  records = []
  for label, name, variant, full, quick in _CASES:
    steps = quick if args.quick else full
    config = _config(name, variant, steps, max(10, steps // 10))
    loop_s, first = loop_step_seconds(config)
    bare_s = bare_step_seconds(config, min(50, steps))
    records.append(common.record(f"{label}: loop step vs bare jitted step",
                                 loop_s, "bare jitted step", bare_s))
    if "compile_s" in first:
      records.append(common.record(f"{label}: first-step compile",
                                   first["compile_s"]))
  peak = utilisation.measure_matmul_peak()
  records.append(common.matmul_peak_record(peak))
  common.write(records, args.out)


if __name__ == "__main__":
  main()
