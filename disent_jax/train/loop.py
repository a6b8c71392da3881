"""The generic training loop, shared by every method.

    state = train(config, workdir, method)

does, in order: write `config.json`; build the mesh and the input iterator;
initialise the state under `jax.eval_shape` and `jax.jit(out_shardings=...)`;
resume from the newest readable checkpoint in `workdir`; run the jitted step
(state donated, randomness `fold_in(root_key, step)`) with metrics to JSON
lines, TensorBoard and a progress bar; save periodically and on SIGTERM; stop
on a non-finite metric, keeping the last good checkpoint; evaluate at the end.
"""

import dataclasses
import pathlib
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np

from disent_jax.train import checkpointing
from disent_jax.train import evaluation
from disent_jax.train import partitioning
from disent_jax.train import preemption
from disent_jax.train import state as state_lib
from disent_jax.train import step_utils
from disent_jax.train import writers
from disent_jax.train.method import Method


class NonFiniteError(FloatingPointError):
  """A metric (usually the loss) became NaN or infinite."""


@dataclasses.dataclass
class TrainResult:
  """What `train` returns.

  Attributes:
    state: the final state (sharded arrays).
    step: the last step trained.
    preempted: True if a termination signal cut the run short (after saving).
    eval_metrics: the final evaluation, if one ran.
  """
  state: Any
  step: int
  preempted: bool = False
  eval_metrics: dict[str, float] | None = None


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes `config.json` (process 0)."""
  if jax.process_index() != 0:
    return
  path = pathlib.Path(workdir)
  path.mkdir(parents=True, exist_ok=True)
  (path / "config.json").write_text(config.to_json_best_effort(indent=2) +
                                    "\n")


def make_train_step(config: ml_collections.ConfigDict, method: Method,
                    mesh: jax.sharding.Mesh, state_shardings: Any):
  """Jits the method's step once, with shardings and state donation."""
  root_key = jax.random.key(config.seed)

  def step_fn(state, batch, step):
    key = jax.random.fold_in(root_key, step)
    new_state, metrics = method.train_step(state, batch, key)
    metrics = dict(metrics)
    if (isinstance(new_state, dict) and "params" in new_state and
        "l2_params" not in metrics):
      metrics["l2_params"] = step_utils.tree_l2(new_state["params"])
    metrics["finite"] = step_utils.all_finite(metrics)
    return new_state, metrics

  return jax.jit(
      step_fn,
      in_shardings=(state_shardings, partitioning.batch_sharding(mesh),
                    partitioning.replicated(mesh)),
      out_shardings=(state_shardings, partitioning.replicated(mesh)),
      donate_argnums=(0,))


def _any_process(flag: bool) -> bool:
  if jax.process_count() == 1:
    return flag
  flags = multihost_utils.process_allgather(np.array([flag], np.int32))
  return bool(np.any(flags))


def train(config: ml_collections.ConfigDict, workdir: str,
          method: Method) -> TrainResult:
  """Trains `method` as configured, resuming from `workdir` if possible.

  Args:
    config: the run config (see `configs/demo.py` for the harness keys).
    workdir: the run directory: config.json, metrics.jsonl, tensorboard/,
      checkpoints/, and after evaluation metrics.json and report.md.
    method: the method's pure functions.

  Returns:
    The final state and step.

  Raises:
    NonFiniteError: a metric became NaN/inf; the last good checkpoint stays.
    checkpointing.CheckpointMismatchError: `workdir` holds another run.
  """
  workdir = str(pathlib.Path(workdir).absolute())
  write_config(config, workdir)
  mesh = partitioning.make_mesh(config.mesh.shape, config.mesh.axes)
  logging.info("mesh %s over %d devices (%d processes)", dict(mesh.shape),
               jax.device_count(), jax.process_count())

  example = state_lib.example_batch(config, method, mesh)
  train_iter = method.data(state_lib.data_context(config, "train", mesh))
  state, abstract, shardings = state_lib.init_state(config, method, mesh,
                                                    example)
  ckpt = checkpointing.Checkpointer(
      workdir, keep=config.keep_checkpoints,
      every_steps=config.checkpoint_every_steps,
      async_save=config.get("async_checkpointing", True))
  start_step = 0
  restored = ckpt.restore_latest(abstract, train_iter)
  if restored is not None:
    state, start_step = restored
  train_step = make_train_step(config, method, mesh, shardings)

  writer = writers.MetricWriter(workdir)
  progress = writers.Progress(total=config.total_steps, initial=start_step,
                              enabled=config.get("progress_bar", True),
                              description=method.name,
                              keys=config.get("progress_metrics", None))
  step = start_step
  preempted = False
  try:
    with preemption.PreemptionWatcher() as watcher:
      for step in range(start_step + 1, config.total_steps + 1):
        batch = partitioning.make_global_batch(next(train_iter), mesh)
        state, metrics = train_step(state, batch,
                                    jnp.asarray(step, jnp.uint32))
        metrics = jax.device_get(metrics)
        if not bool(metrics.pop("finite")):
          bad = {k: float(v) for k, v in metrics.items()
                 if not np.all(np.isfinite(v))}
          raise NonFiniteError(
              f"Non-finite metrics at step {step}: {bad}. Stopped; the "
              f"last good checkpoint in {ckpt.directory} is step "
              f"{ckpt.latest_step()}.")
        if step % config.log_every_steps == 0 or step == config.total_steps:
          writer.write_scalars(step, metrics)
          writers.log_scalars(step, metrics)
        progress.update(step, metrics)
        if ckpt.should_save(step) or step == config.total_steps:
          ckpt.save(step, state, train_iter)
        if _any_process(watcher.requested):
          ckpt.save(step, state, train_iter)
          ckpt.wait()
          logging.warning("Termination signal (%s): saved step %d in %s; "
                          "re-run the same command to resume.",
                          watcher.signal_name or "peer", step,
                          ckpt.directory)
          preempted = True
          break
  finally:
    progress.close()
    writer.close()
    ckpt.close()

  eval_metrics = None
  if not preempted and step >= config.total_steps and config.get(
      "eval_at_end", True):
    eval_metrics = evaluation.evaluate_state(config, workdir, method, state,
                                             mesh, step)
  return TrainResult(state=state, step=step, preempted=preempted,
                     eval_metrics=eval_metrics)


def params_fingerprint(state: Any) -> str:
  """A short, exact digest of a state's arrays (to compare runs)."""
  import hashlib  # pylint: disable=g-import-not-at-top
  h = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(partitioning.to_host(state)):
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()[:16]
