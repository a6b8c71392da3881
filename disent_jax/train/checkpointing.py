"""Orbax checkpoints of the train state and the input iterator.

Layout: `<workdir>/checkpoints/<step>/{state,data}`. `state` is the state
pytree (saved sharded, restored against an abstract sharded target); `data`
holds one JSON file per process with the input iterator's position.

Resume walks the saved steps newest first. A step that cannot be read (a
truncated or corrupt save) is moved aside to `<workdir>/checkpoints_corrupt/`
(nothing is deleted) with a warning, and the next older one is tried. A step
whose arrays do not match the run's state (another architecture or config)
stops the run with `CheckpointMismatchError` naming the arrays.
"""

import json
import os
import pathlib
import shutil
import time
from typing import Any

from absl import logging
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from disent_jax.train import partitioning

_STATE = "state"
_DATA = "data"


class CheckpointMismatchError(ValueError):
  """A checkpoint's arrays do not match the state of the current run."""


class _IteratorSnapshot:
  """The iterator position captured at save time (saves run asynchronously).

  Speaks the byte-state protocol of grain's checkpoint handler, which writes
  one file per process.
  """

  def __init__(self, state: Any = None):
    self.state = state

  def get_state(self) -> bytes:
    return json.dumps(self.state).encode()

  def set_state(self, state: bytes) -> None:
    self.state = json.loads(state.decode())

  def start_prefetch(self) -> None:
    pass


def _item_handlers() -> dict[str, Any]:
  return {_STATE: ocp.StandardCheckpointHandler(),
          _DATA: grain.checkpoint.CheckpointHandler()}


def _array_signature(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {partitioning.path_to_str(p): (tuple(x.shape), np.dtype(x.dtype).name)
          for p, x in flat}


def describe_mismatch(saved: Any, expected: Any) -> str:
  """Lists the arrays whose presence, shape or dtype differ (empty: none)."""
  a, b = _array_signature(saved), _array_signature(expected)
  lines = []
  for name in sorted(set(a) | set(b)):
    if name not in b:
      lines.append(f"  {name}: in the checkpoint {a[name]}, not in this run")
    elif name not in a:
      lines.append(f"  {name}: in this run {b[name]}, not in the checkpoint")
    elif a[name] != b[name]:
      lines.append(f"  {name}: checkpoint {a[name]} vs this run {b[name]}")
  return "\n".join(lines)


class Checkpointer:
  """Periodic, asynchronous, keep-N checkpoints with a safe resume."""

  def __init__(self, workdir: str, *, keep: int = 3, every_steps: int = 1000,
               async_save: bool = True):
    """Opens (creating if needed) `<workdir>/checkpoints`.

    Args:
      workdir: the run directory.
      keep: how many of the newest checkpoints to keep.
      every_steps: periodic save interval (steps).
      async_save: write in a background thread while training goes on.
    """
    self.directory = pathlib.Path(workdir).absolute() / "checkpoints"
    self.corrupt_directory = (pathlib.Path(workdir).absolute() /
                              "checkpoints_corrupt")
    self.every_steps = every_steps
    self._options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True,
        enable_async_checkpointing=async_save)
    self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(self.directory, options=self._options,
                                 item_handlers=_item_handlers())

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def should_save(self, step: int) -> bool:
    return self.every_steps > 0 and step % self.every_steps == 0

  def save(self, step: int, state: Any, data_iterator: Any) -> None:
    """Saves `state` and the iterator position at `step` (asynchronously)."""
    if step in self._manager.all_steps():
      return
    snapshot = _IteratorSnapshot(data_iterator.get_state())
    self._manager.save(step, args=ocp.args.Composite(**{
        _STATE: ocp.args.StandardSave(state),
        _DATA: grain.checkpoint.CheckpointSave(snapshot),
    }), force=True)

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def _move_aside(self, step: int, error: Exception) -> None:
    logging.warning("Checkpoint %s/%d is unreadable (%s: %s); moving it to %s "
                    "and trying an older one.", self.directory, step,
                    type(error).__name__, str(error)[:300],
                    self.corrupt_directory)
    if jax.process_index() == 0:
      self.corrupt_directory.mkdir(parents=True, exist_ok=True)
      target = self.corrupt_directory / f"{step}-{int(time.time())}"
      shutil.move(str(self.directory / str(step)), str(target))
    _sync("move_aside_corrupt_checkpoint")
    self._manager.close()
    self._manager = self._open()

  def restore_latest(self, abstract_state: Any, data_iterator: Any
                     ) -> tuple[Any, int] | None:
    """Restores the newest readable checkpoint, or returns None if none.

    Args:
      abstract_state: pytree of `jax.ShapeDtypeStruct` with `.sharding` set;
        arrays come back with those shardings.
      data_iterator: the run's fresh input iterator; its position is set to
        the checkpoint's.

    Returns:
      `(state, step)` or None when there is no usable checkpoint.

    Raises:
      CheckpointMismatchError: the newest readable checkpoint was written by a
        run with other arrays (architecture or config); nothing is changed on
        disk.
    """
    for step in reversed(self.all_steps()):
      try:
        saved = self._manager.item_metadata(step)[_STATE]
        saved_tree = getattr(saved, "tree", saved)
        if saved_tree is None:
          raise ValueError("no array metadata")
      except Exception as e:  # pylint: disable=broad-exception-caught
        self._move_aside(step, e)
        continue
      diff = describe_mismatch(saved_tree, abstract_state)
      if diff:
        raise CheckpointMismatchError(
            f"Checkpoint {self.directory / str(step)} does not match this "
            f"run's state (another architecture or config?):\n{diff}\n"
            "Use another --workdir, or the config that wrote it.")
      snapshot = _IteratorSnapshot()
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(**{
            _STATE: ocp.args.StandardRestore(abstract_state),
            _DATA: grain.checkpoint.CheckpointRestore(snapshot),
        }))
        state = restored[_STATE]
        jax.block_until_ready(state)
      except Exception as e:  # pylint: disable=broad-exception-caught
        self._move_aside(step, e)
        continue
      data_iterator.set_state(snapshot.state)
      logging.info("Resumed from %s/%d", self.directory, step)
      return state, step
    return None


  def restore_state(self, step: int, abstract_state: Any) -> Any:
    """Restores only the state of `step` (evaluation), no fallback.

    Raises:
      CheckpointMismatchError: the checkpoint's arrays differ from the target.
      FileNotFoundError: there is no such step.
    """
    if step not in self.all_steps():
      raise FileNotFoundError(f"No checkpoint for step {step} in "
                              f"{self.directory} (have {self.all_steps()})")
    saved = self._manager.item_metadata(step)[_STATE]
    diff = describe_mismatch(getattr(saved, "tree", saved), abstract_state)
    if diff:
      raise CheckpointMismatchError(
          f"Checkpoint {self.directory / str(step)} does not match this "
          f"run's state:\n{diff}")
    restored = self._manager.restore(step, args=ocp.args.Composite(**{
        _STATE: ocp.args.StandardRestore(abstract_state)}))
    return restored[_STATE]


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


def load_state(workdir: str, step: int | None = None) -> tuple[Any, int]:
  """Reads a run's saved state as numpy arrays, without a target structure.

  For inspection, notebooks and tests; training resumes with
  `Checkpointer.restore_latest` instead.

  Args:
    workdir: the run directory (holding `checkpoints/`).
    step: which step; the newest when None.

  Returns:
    `(state, step)` with the state as nested dicts of numpy arrays.

  Raises:
    FileNotFoundError: no checkpoint in `workdir` (or not that step).
  """
  directory = pathlib.Path(workdir).absolute() / "checkpoints"
  if not directory.is_dir():
    raise FileNotFoundError(f"No checkpoints under {directory}")
  with ocp.CheckpointManager(directory,
                             item_handlers=_item_handlers()) as mngr:
    steps = mngr.all_steps()
    if not steps:
      raise FileNotFoundError(f"No checkpoints under {directory}")
    step = max(steps) if step is None else step
    if step not in steps:
      raise FileNotFoundError(f"No checkpoint for step {step} under "
                              f"{directory} (have {sorted(steps)})")
    path = os.fspath(directory / str(step) / _STATE)
  with ocp.StandardCheckpointer() as ckptr:
    meta = ckptr.metadata(path)
    tree = getattr(meta, "item_metadata", meta)
    tree = getattr(tree, "tree", tree)
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(
            m.shape, m.dtype,
            sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0])),
        tree)
    state = ckptr.restore(path, target)
  return jax.tree.map(np.asarray, state), step
