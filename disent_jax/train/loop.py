"""The generic training loop, shared by every method.

    state = train(config, workdir, method)

does, in order: write `config.json`; build the mesh and the input iterator;
initialise the state under `jax.eval_shape` and `jax.jit(out_shardings=...)`;
resume from the newest readable checkpoint in `workdir`; compile the step
ahead of time (the persistent compilation cache makes a second run's compile
a disk read; the time is logged and written as `compile_s`); run it (state
donated, randomness `fold_in(root_key, step)`) on batches a background
thread has already put on the devices, without waiting for the host: metrics
stay on the devices until a log or checkpoint step; write them to JSON
lines, TensorBoard and a progress bar; save periodically and on SIGTERM; stop
on a non-finite metric, naming the first bad step and keeping the last good
checkpoint; evaluate at the end.
"""

import collections
import dataclasses
import pathlib
import time
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
from disent_jax.train import prefetch
from disent_jax.train import preemption
from disent_jax.train import state as state_lib
from disent_jax.train import step_utils
from disent_jax.train import utilisation
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


def compile_step(train_step, state: Any, batch: Any, step: int):
  """Compiles the jitted step ahead of time.

  Tracing and lowering to StableHLO happen in Python every run; with the
  persistent compilation cache on, XLA's compilation is a disk read in a
  second run.

  Returns:
    (executable, seconds tracing + lowering, seconds compiling).
  """
  start = time.perf_counter()
  lowered = train_step.lower(state, batch, jnp.asarray(step, jnp.uint32))
  mid = time.perf_counter()
  compiled = lowered.compile()
  return compiled, mid - start, time.perf_counter() - mid


def _profile_range(text: str) -> tuple[int, int] | None:
  """Parses `profile_steps` "a:b" (1-based, inclusive); "" is no trace."""
  if not text:
    return None
  first, sep, last = str(text).partition(":")
  try:
    a, b = int(first), int(last if sep else first)
  except ValueError:
    a = b = -1
  if a < 1 or b < a:
    raise ValueError(f"config profile_steps={text!r}: expected 'a:b' with "
                     "1 <= a <= b, e.g. '10:15'")
  return a, b


@dataclasses.dataclass
class _Run:
  """The step loop: dispatch ahead, fetch metrics only when they are used.

  The host keeps at most `config.max_steps_in_flight` steps queued on the
  devices (it waits for the oldest one, never for the newest), so the
  devices always have the next step while the host prepares the batch
  after it. Metrics stay on the devices until a log or checkpoint step;
  then every pending step's finiteness flag is fetched at once, so a
  NaN/inf still names the first bad step, and no checkpoint is written
  after it.
  """
  config: ml_collections.ConfigDict
  ckpt: checkpointing.Checkpointer
  writer: writers.MetricWriter
  progress: writers.Progress
  batches: prefetch.DevicePrefetcher
  workdir: str = ""

  def _check(self, pending: list[tuple[int, Any]]) -> None:
    flags = jax.device_get([m["finite"] for _, m in pending])
    for (step, metrics), ok in zip(pending, flags):
      if not bool(ok):
        values = jax.device_get(metrics)
        bad = {k: float(np.asarray(v).ravel()[0]) for k, v in values.items()
               if k != "finite" and not np.all(np.isfinite(v))}
        raise NonFiniteError(
            f"Non-finite metrics at step {step}: {bad}. Stopped; the last "
            f"good checkpoint in {self.ckpt.directory} is step "
            f"{self.ckpt.latest_step()}.")

  def steps(self, train_step, state: Any, start_step: int,
            watcher: preemption.PreemptionWatcher) -> tuple[Any, int, bool]:
    """Runs steps start_step + 1 .. total; returns (state, step, preempted)."""
    c = self.config
    first_batch = next(self.batches)
    compiled, lower_s, compile_s = compile_step(train_step, state,
                                                first_batch, start_step + 1)
    logging.info("train step: traced and lowered in %.2f s, compiled in "
                 "%.2f s", lower_s, compile_s)
    extra = {"lower_s": lower_s, "compile_s": compile_s}
    meter = None
    if c.get("report_utilisation", True):
      meter = utilisation.Meter(utilisation.step_flops(compiled),
                                utilisation.matmul_peak(), start_step)
    profile = _profile_range(c.get("profile_steps", ""))
    max_in_flight = max(1, int(c.get("max_steps_in_flight", 2)))
    in_flight: collections.deque = collections.deque()
    pending: list[tuple[int, Any]] = []
    step = start_step
    for step in range(start_step + 1, c.total_steps + 1):
      batch = first_batch if step == start_step + 1 else next(self.batches)
      if profile and step == profile[0]:
        jax.profiler.start_trace(str(pathlib.Path(self.workdir) / "profile"))
      state, metrics = compiled(state, batch, jnp.asarray(step, jnp.uint32))
      if profile and step == min(profile[1], c.total_steps):
        jax.block_until_ready(metrics)
        jax.profiler.stop_trace()
        logging.info("profiler trace of steps %d-%d in %s/profile",
                     profile[0], step, self.workdir)
      pending.append((step, metrics))
      in_flight.append(metrics["finite"])
      if len(in_flight) > max_in_flight:
        in_flight.popleft().block_until_ready()
      log_now = step % c.log_every_steps == 0 or step == c.total_steps
      save_now = self.ckpt.should_save(step) or step == c.total_steps
      sync = log_now or save_now
      stop = (watcher.requested if jax.process_count() == 1 else
              (sync and _any_process(watcher.requested)))
      if sync or stop:
        self._check(pending)
        latest = jax.device_get(pending[-1][1])
        latest.pop("finite")
        pending = []
        if log_now:
          if meter is not None:
            latest.update(meter.update(step))
          self.writer.write_scalars(step, {**latest, **extra})
          writers.log_scalars(step, latest)
          extra = {}
        self.progress.update(step, latest)
      else:
        self.progress.update(step)
      if save_now or stop:
        self.ckpt.save(step, state, self.batches)
      if stop:
        self.ckpt.wait()
        logging.warning("Termination signal (%s): saved step %d in %s; "
                        "re-run the same command to resume.",
                        watcher.signal_name or "peer", step,
                        self.ckpt.directory)
        return state, step, True
    return state, step, False


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
  batches = prefetch.DevicePrefetcher(
      train_iter, mesh, size=config.get("prefetch_batches", 2))
  run = _Run(config=config, ckpt=ckpt, writer=writer, progress=progress,
             batches=batches, workdir=workdir)
  step = start_step
  preempted = False
  try:
    with preemption.PreemptionWatcher() as watcher:
      if start_step < config.total_steps:
        state, step, preempted = run.steps(train_step, state, start_step,
                                           watcher)
  finally:
    batches.close()
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
