"""Evaluation of a state or a saved checkpoint, and the run report.

Writes `metrics.json` (flat `name: value`) and `report.md` (with the
method's figures, via `disent_jax.viz.report`) into the workdir.
"""

import json
import pathlib
from typing import Any, Iterator

from absl import logging
import jax
import ml_collections

from disent_jax.train import checkpointing
from disent_jax.train import partitioning
from disent_jax.train import state as state_lib
from disent_jax.train.method import Method
from disent_jax.viz import report


def eval_batches(config: ml_collections.ConfigDict, method: Method,
                 mesh: jax.sharding.Mesh) -> Iterator[Any]:
  """The method's eval split as global sharded batches."""
  for local in method.data(state_lib.data_context(config, "eval", mesh)):
    yield partitioning.make_global_batch(local, mesh)


def training_note(workdir: str) -> str | None:
  """One line on the training run's speed, from `metrics.jsonl`, or None.

  Uses the compile time of the first record and the throughput of the last
  one (`disent_jax.train.utilisation`).
  """
  path = pathlib.Path(workdir) / "metrics.jsonl"
  try:
    records = [json.loads(line) for line in path.read_text().splitlines()
               if line.strip()]
  except (OSError, ValueError):
    return None
  if not records:
    return None
  first, last = records[0], records[-1]
  parts = []
  if "steps_per_s" in last:
    parts.append(f"{last['steps_per_s']:.3g} steps/s at step {last['step']}")
  if "gflop_per_s" in last:
    parts.append(f"{last['step_gflop']:.3g} GFLOP per step, "
                 f"{last['gflop_per_s']:.3g} GFLOP/s")
  if "matmul_peak_fraction" in last:
    parts.append(f"{100 * last['matmul_peak_fraction']:.1f}% of this "
                 "machine's measured matmul peak")
  if "compile_s" in first:
    parts.append(f"step compiled in {first['compile_s']:.1f} s")
  return ("Training speed: " + "; ".join(parts) + ".") if parts else None


def evaluate_state(config: ml_collections.ConfigDict, workdir: str,
                   method: Method, state: Any, mesh: jax.sharding.Mesh,
                   step: int) -> dict[str, float]:
  """Evaluates `state`, writes metrics.json and report.md, returns metrics."""
  metrics = method.evaluate(state, eval_batches(config, method, mesh))
  metrics = {k: float(v) for k, v in metrics.items()}
  figures = {}
  if method.report is not None:
    figures = method.report(state, metrics, workdir)
  if jax.process_index() == 0:
    notes = [f"Checkpoint step {step}.",
             "The run's config is config.json beside this report."]
    speed = training_note(workdir)
    if speed:
      notes.append(speed)
    report.write_report(workdir, metrics, figures,
                        title=f"{method.name}: evaluation", notes=notes)
  logging.info("eval at step %d: %s", step, metrics)
  return metrics


def restore_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                       method: Method, step: int | None = None
                       ) -> tuple[Any, int, jax.sharding.Mesh]:
  """Restores a checkpoint of `workdir` (newest by default).

  Returns:
    (state, its step, the device mesh it is placed on).

  Raises:
    FileNotFoundError: `workdir` has no (such) checkpoint.
    checkpointing.CheckpointMismatchError: the config does not match it.
  """
  mesh = partitioning.make_mesh(config.mesh.shape, config.mesh.axes)
  ckpt = checkpointing.Checkpointer(workdir, keep=config.keep_checkpoints,
                                    async_save=False)
  try:
    steps = ckpt.all_steps()
    if not steps:
      raise FileNotFoundError(f"No checkpoints in {ckpt.directory}")
    step = steps[-1] if step is None else step
    example = state_lib.example_batch(config, method, mesh)
    abstract, _ = state_lib.abstract_state(config, method, mesh, example)
    state = ckpt.restore_state(step, abstract)
  finally:
    ckpt.close()
  return state, step, mesh


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                        method: Method, step: int | None = None
                        ) -> dict[str, float]:
  """Restores a checkpoint of `workdir` (newest by default) and evaluates it.

  Raises:
    FileNotFoundError: `workdir` has no (such) checkpoint.
    checkpointing.CheckpointMismatchError: the config does not match it.
  """
  state, step, mesh = restore_checkpoint(config, workdir, method, step)
  return evaluate_state(config, workdir, method, state, mesh, step)
