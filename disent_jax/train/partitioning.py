"""Device mesh, shardings of the state and of batches, multi-host set-up."""

import re
from typing import Any, Mapping, Sequence

from absl import logging
import jax
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P
import numpy as np

DATA_AXIS = "data"
MODEL_AXIS = "model"


def initialize_distributed(*, coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Starts `jax.distributed` (multi-host); call before any other JAX use.

  With no arguments JAX detects the cluster (TPU pods, SLURM, ...). On CPU,
  gloo collectives are selected so several processes on one machine (or a CPU
  cluster) can run one program.

  Args:
    coordinator_address: "host:port" of process 0, or None to auto-detect.
    num_processes: the number of processes, or None to auto-detect.
    process_id: this process's index, or None to auto-detect.
  """
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id)
  logging.info("jax.distributed: process %d of %d, %d local / %d devices",
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def make_mesh(shape: Sequence[int], axes: Sequence[str]) -> Mesh:
  """A device mesh over all devices.

  Args:
    shape: sizes per axis; one entry may be -1 (all remaining devices).
    axes: axis names, e.g. ("data", "model").

  Returns:
    The mesh.

  Raises:
    ValueError: if the shape does not fit the device count.
  """
  shape = list(shape)
  if len(shape) != len(axes):
    raise ValueError(f"config mesh.shape {tuple(shape)} and mesh.axes "
                     f"{tuple(axes)} must have the same length")
  n = jax.device_count()
  if shape.count(-1) > 1:
    raise ValueError(f"config mesh.shape {tuple(shape)}: at most one -1")
  known = int(np.prod([s for s in shape if s != -1]))
  if -1 in shape:
    if known <= 0 or n % known:
      raise ValueError(f"config mesh.shape {tuple(shape)} does not divide the "
                       f"{n} available devices")
    shape[shape.index(-1)] = n // known
  if int(np.prod(shape)) != n:
    raise ValueError(f"config mesh.shape {tuple(shape)} needs "
                     f"{int(np.prod(shape))} devices, {n} are available")
  # Auto axes: XLA propagates shardings inside the step (GSPMD); methods
  # need no sharding annotations of their own.
  return jax.make_mesh(tuple(shape), tuple(axes),
                       axis_types=(AxisType.Auto,) * len(axes))


def path_to_str(path: Sequence[Any]) -> str:
  """Joins a pytree key path into "a/b/0/c"."""
  parts = []
  for k in path:
    if isinstance(k, jax.tree_util.DictKey):
      parts.append(str(k.key))
    elif isinstance(k, jax.tree_util.GetAttrKey):
      parts.append(k.name)
    elif isinstance(k, jax.tree_util.SequenceKey):
      parts.append(str(k.idx))
    else:
      parts.append(str(k))
  return "/".join(parts)


def state_shardings(abstract_state: Any, mesh: Mesh,
                    rules: Sequence[tuple[str, Sequence[Any]]] = ()) -> Any:
  """Shardings for every array of the state, by regex rules on their paths.

  The first rule whose regex `re.search`-es the "/"-joined path wins; its spec
  is used if the array's dims divide the mesh axes, otherwise the array is
  replicated (with a log line). Unmatched arrays are replicated: data
  parallelism by default.

  Args:
    abstract_state: pytree of `jax.ShapeDtypeStruct` (from `jax.eval_shape`).
    mesh: the device mesh.
    rules: `(regex, spec)` pairs; spec is a tuple of axis names / None.

  Returns:
    A pytree of `NamedSharding` matching `abstract_state`.
  """
  compiled = [(re.compile(r), P(*spec)) for r, spec in rules]

  def fits(shape, spec):
    if len(spec) > len(shape):
      return False
    for dim, axis in zip(shape, spec):
      if axis is None:
        continue
      names = axis if isinstance(axis, tuple) else (axis,)
      size = int(np.prod([mesh.shape[a] for a in names]))
      if dim % size:
        return False
    return True

  def one(path, leaf):
    name = path_to_str(path)
    for regex, spec in compiled:
      if regex.search(name):
        if fits(leaf.shape, spec):
          return NamedSharding(mesh, spec)
        logging.info("sharding rule %s does not fit %s %s; replicating",
                     regex.pattern, name, leaf.shape)
        break
    return NamedSharding(mesh, P())

  return jax.tree_util.tree_map_with_path(one, abstract_state)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Batches are split along their leading dim over the `data` axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def local_batch_size(global_batch_size: int, mesh: Mesh) -> int:
  """The per-process share of a global batch, checked for divisibility."""
  data_size = mesh.shape[DATA_AXIS]
  if global_batch_size % data_size:
    raise ValueError(f"config batch_size={global_batch_size} must be "
                     f"divisible by the data axis size {data_size}")
  if global_batch_size % jax.process_count():
    raise ValueError(f"config batch_size={global_batch_size} must be "
                     f"divisible by the {jax.process_count()} processes")
  return global_batch_size // jax.process_count()


def make_global_batch(local_batch: Mapping[str, Any], mesh: Mesh) -> Any:
  """Assembles process-local numpy batches into global sharded arrays."""
  sharding = batch_sharding(mesh)

  def one(x):
    x = np.asarray(x)
    global_shape = (x.shape[0] * jax.process_count(),) + x.shape[1:]
    return jax.make_array_from_process_local_data(sharding, x, global_shape)

  return jax.tree.map(one, dict(local_batch))


def to_host(tree: Any) -> Any:
  """Copies a pytree of (possibly multi-host sharded) arrays to numpy."""

  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)

  return jax.tree.map(one, tree)
