"""Device prefetch: the next global batches are ready before the step asks.

`DevicePrefetcher` wraps a process-local input iterator (a grain iterator
with `get_state` / `set_state`). A background thread reads local batches,
assembles each into a global `jax.Array` on the mesh
(`partitioning.make_global_batch`, which works across hosts) and keeps up to
`size` of them queued, so reading, collating and the host-to-device copy of
batch t+1 overlap the step on batch t.

Checkpoints stay exact: with every batch the thread records the iterator's
state right after reading it, and `get_state()` returns the state of the
last batch handed to the training loop, not of the ones read ahead. A run
resumed from that state sees exactly the batches an uninterrupted run sees.

An exception in the reader (a malformed file, say) is re-raised by
`__next__` in the training thread, unchanged, with its traceback.
"""

import copy
import queue
import threading
from typing import Any, Iterator

import jax

from disent_jax.train import partitioning

_END = object()


class DevicePrefetcher:
  """Iterates global device batches, `size` of them read ahead."""

  def __init__(self, iterator: Iterator[Any], mesh: jax.sharding.Mesh, *,
               size: int = 2):
    """Wraps `iterator`; nothing is read until the first `next`.

    Args:
      iterator: process-local batches (dicts of numpy arrays) with
        `get_state()` / `set_state()`.
      mesh: the device mesh the batches are sharded over.
      size: batches kept ready ahead of the consumer (>= 1).
    """
    if size < 1:
      raise ValueError(f"prefetch size must be >= 1, got {size}")
    self._iterator = iterator
    self._mesh = mesh
    self._queue: queue.Queue = queue.Queue(maxsize=size)
    self._stop = threading.Event()
    self._thread: threading.Thread | None = None
    self._state = copy.deepcopy(iterator.get_state())
    self._done = False

  # The iterator protocol grain's checkpointing and the loop use.

  def get_state(self) -> Any:
    """The input position after the last batch this object handed out."""
    return self._state

  def set_state(self, state: Any) -> None:
    """Moves the input to `state`; only before the first batch is read."""
    if self._thread is not None:
      raise RuntimeError("DevicePrefetcher.set_state after reading started")
    self._iterator.set_state(state)
    self._state = copy.deepcopy(self._iterator.get_state())

  def __iter__(self) -> "DevicePrefetcher":
    return self

  def __next__(self) -> Any:
    if self._done:
      raise StopIteration
    if self._thread is None:
      self._thread = threading.Thread(target=self._produce,
                                      name="device-prefetch", daemon=True)
      self._thread.start()
    item = self._queue.get()
    if item is _END:
      self._done = True
      raise StopIteration
    if isinstance(item, BaseException):
      self._done = True
      raise item
    batch, state = item
    self._state = state
    return batch

  def _put(self, item: Any) -> bool:
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def _produce(self) -> None:
    try:
      while not self._stop.is_set():
        try:
          local = next(self._iterator)
        except StopIteration:
          self._put(_END)
          return
        state = copy.deepcopy(self._iterator.get_state())
        batch = partitioning.make_global_batch(local, self._mesh)
        if not self._put((batch, state)):
          return
    except BaseException as e:  # pylint: disable=broad-exception-caught
      self._put(e)

  def close(self) -> None:
    """Stops the reader thread (batches read ahead are dropped)."""
    self._stop.set()
    self._done = True
    if self._thread is not None:
      self._thread.join(timeout=10.0)

  def __enter__(self) -> "DevicePrefetcher":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
