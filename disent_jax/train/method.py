"""The method contract: the pure functions a method hands to the harness.

A method (one per paper, plus the harness demo) lives in
`disent_jax/methods/<name>/method.py` and exposes `build(config) -> Method`.
The harness never looks inside the state beyond two conventions: if the state
is a mapping with a `"params"` entry, `l2_params` is logged for it; and the
state must be a pytree of arrays (Orbax saves it as one item).
"""

import dataclasses
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol

import jax
import ml_collections

State = Any  # A pytree of arrays: params, optimizer states, counters.
Batch = Mapping[str, Any]  # A dict of arrays with a leading batch dim.
Metrics = Mapping[str, jax.Array]  # Scalars to log.


class CheckpointableIterator(Protocol):
  """An input iterator whose position can be saved and restored.

  grain's `DatasetIterator` satisfies it; the harness saves `get_state()`
  with every checkpoint so a resumed run sees the same batches.
  """

  def __next__(self) -> Batch:
    ...

  def get_state(self) -> Any:
    ...

  def set_state(self, state: Any) -> None:
    ...


@dataclasses.dataclass(frozen=True)
class DataContext:
  """What a method's data function needs to know about the job.

  Attributes:
    config: the full run config.
    split: "train" (infinite, checkpointable) or "eval" (finite).
    process_index: this host's index (`jax.process_index()`).
    process_count: the number of hosts (`jax.process_count()`).
    local_batch_size: the per-process batch size (global / process_count).
  """
  config: ml_collections.ConfigDict
  split: str
  process_index: int
  process_count: int
  local_batch_size: int


@dataclasses.dataclass(frozen=True)
class Method:
  """The pure functions of one method.

  Attributes:
    name: the method's name (its subpackage).
    init: `(key, example_batch) -> state`. Called once, under `jax.jit` with
      the state's shardings as `out_shardings`.
    train_step: `(state, batch, key) -> (state, metrics)`, one optimisation
      step (GANs alternate their networks inside it). Metrics are scalars; a
      `"loss"` entry is expected, and `l2_grads` should be reported (see
      `disent_jax.train.step_utils.grad_metrics`). The harness jits it once
      with shardings and donates the state.
    eval_step: `(state, batch) -> outputs`, a pure function on one batch.
    evaluate: `(state, dataset) -> {name: float}` where `dataset` is an
      iterable of global (sharded) eval batches. May also return figures
      through `report`.
    data: `(ctx: DataContext) -> iterator` of process-local numpy batches. For
      `ctx.split == "train"` it is infinite and checkpointable
      (`get_state`/`set_state`); for "eval" it is finite.
    sharding_rules: `(regex, PartitionSpec-tuple)` pairs matched against
      "/"-joined state paths to shard arrays over the `model` mesh axis;
      unmatched arrays are replicated. Config `sharding_rules` override it.
    report: optional `(state, metrics, workdir) -> {caption: png_path}`,
      figures for `report.md`.
    applications: named plain functions of `(state, inputs)` (expression
      transfer, interpolation, relighting, ...).
  """
  name: str
  init: Callable[[jax.Array, Batch], State]
  train_step: Callable[[State, Batch, jax.Array], tuple[State, Metrics]]
  eval_step: Callable[[State, Batch], Any]
  evaluate: Callable[[State, Iterable[Batch]], dict[str, float]]
  data: Callable[[DataContext], Iterator[Batch]]
  sharding_rules: tuple[tuple[str, tuple[Any, ...]], ...] = ()
  report: Callable[[State, Mapping[str, float], str], dict[str, str]] | None = (
      None)
  applications: Mapping[str, Callable[..., Any]] = dataclasses.field(
      default_factory=dict)
