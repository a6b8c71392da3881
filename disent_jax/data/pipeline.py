"""grain input pipelines: shuffled, per-process, batched, checkpointable.

The global example stream is `source` shuffled with `seed` (a new order every
epoch) and repeated. Global batch k holds stream elements [k B, (k + 1) B);
process p reads rows [p L, (p + 1) L) of it (L = B / process_count), so the
assembled global batch is the same whatever the number of processes, and each
process only reads and transforms its own rows.
"""

from typing import Any, Callable, Mapping, Protocol, Sequence

import grain
import jax
import numpy as np


class RandomAccessSource(Protocol):
  """Anything with a length and integer indexing, e.g. `tfds.data_source`."""

  def __len__(self) -> int:
    ...

  def __getitem__(self, index: int) -> Mapping[str, Any]:
    ...


def _as_numpy_dict(example: Mapping[str, Any]) -> dict[str, np.ndarray]:
  return {k: np.asarray(v) for k, v in example.items()}


def batched_iterator(
    source: RandomAccessSource | Sequence[Mapping[str, Any]],
    *,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    num_epochs: int | None = None,
    transform: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    process_index: int | None = None,
    process_count: int | None = None,
    drop_remainder: bool = True,
) -> grain.DatasetIterator:
  """Iterates process-local batches of `source`.

  Args:
    source: random-access examples (dicts of arrays).
    batch_size: the GLOBAL batch size B (all processes together).
    seed: shuffling seed.
    shuffle: shuffle (per epoch) or keep the source order.
    num_epochs: passes over the data; None repeats forever.
    transform: applied to each example (after reading, before batching).
    process_index: this process (default `jax.process_index()`).
    process_count: all processes (default `jax.process_count()`).
    drop_remainder: drop a last partial global batch (finite epochs only).

  Returns:
    A grain iterator of dicts of numpy arrays with leading dim
    B / process_count; `get_state()`/`set_state()` save and restore its
    position.

  Raises:
    ValueError: on an empty source or a batch size the processes cannot
      split.
  """
  pi = jax.process_index() if process_index is None else process_index
  pc = jax.process_count() if process_count is None else process_count
  if len(source) == 0:
    raise ValueError("batched_iterator: the source is empty")
  if batch_size <= 0 or batch_size % pc:
    raise ValueError(f"batch_size={batch_size} must be a positive multiple "
                     f"of the process count {pc}")
  if not 0 <= pi < pc:
    raise ValueError(f"process_index={pi} outside [0, {pc})")
  local = batch_size // pc

  stream = grain.MapDataset.source(source)
  if shuffle:
    stream = stream.shuffle(seed=seed)
  stream = stream.repeat(num_epochs)
  total = len(stream)
  keep_partial = (not drop_remainder and num_epochs is not None and
                  total % batch_size)
  if keep_partial and pc > 1:
    raise ValueError("drop_remainder=False needs a single process: a partial "
                     "global batch cannot be split evenly")

  def global_index(i: int) -> int:
    k, j = divmod(i, local)
    return k * batch_size + pi * local + j

  n_local = total if keep_partial else (total // batch_size) * local
  rows = grain.MapDataset.range(n_local).map(
      lambda i: _as_numpy_dict(stream[global_index(i)]))
  if transform is not None:
    rows = rows.map(transform)
  batched = rows.batch(local, drop_remainder=drop_remainder)
  return iter(batched.to_iter_dataset())


class ArraySource:
  """A random-access source over in-memory arrays with a shared first dim."""

  def __init__(self, arrays: Mapping[str, np.ndarray]):
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
      raise ValueError(f"ArraySource: arrays differ in length: {lengths}")
    self._arrays = {k: np.asarray(v) for k, v in arrays.items()}
    self._n = next(iter(lengths.values()))

  def __len__(self) -> int:
    return self._n

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {k: v[index] for k, v in self._arrays.items()}
