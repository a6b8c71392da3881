"""Building a run's state: data context, shardings, abstract and real state."""

from typing import Any

import jax
import ml_collections

from disent_jax.train import partitioning
from disent_jax.train.method import DataContext, Method


def data_context(config: ml_collections.ConfigDict, split: str,
                 mesh: jax.sharding.Mesh) -> DataContext:
  """The context handed to `method.data` for `split` on this process."""
  return DataContext(
      config=config, split=split, process_index=jax.process_index(),
      process_count=jax.process_count(),
      local_batch_size=partitioning.local_batch_size(config.batch_size, mesh))


def example_batch(config: ml_collections.ConfigDict, method: Method,
                  mesh: jax.sharding.Mesh) -> Any:
  """One global train batch (from a throw-away iterator), for shapes."""
  local = next(method.data(data_context(config, "train", mesh)))
  return partitioning.make_global_batch(local, mesh)


def sharding_rules(config: ml_collections.ConfigDict, method: Method):
  """The config's `sharding_rules` if set, else the method's defaults."""
  rules = config.get("sharding_rules", None)
  return tuple(rules) if rules else tuple(method.sharding_rules)


def _init_key(config: ml_collections.ConfigDict) -> jax.Array:
  return jax.random.fold_in(jax.random.key(config.seed), 0x1D1)


def abstract_state(config: ml_collections.ConfigDict, method: Method,
                   mesh: jax.sharding.Mesh, example: Any) -> tuple[Any, Any]:
  """The state's shapes with their shardings, without computing it.

  Returns:
    `(abstract, shardings)`: a pytree of `jax.ShapeDtypeStruct` carrying
    `.sharding` (the restore target), and the pytree of shardings.
  """
  abstract = jax.eval_shape(method.init, _init_key(config), example)
  shardings = partitioning.state_shardings(abstract, mesh,
                                           sharding_rules(config, method))
  abstract = jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
      abstract, shardings)
  return abstract, shardings


def init_state(config: ml_collections.ConfigDict, method: Method,
               mesh: jax.sharding.Mesh, example: Any
               ) -> tuple[Any, Any, Any]:
  """Initialises the state directly into its shardings (`jit` + out_shardings).

  Returns:
    `(state, abstract, shardings)` as in `abstract_state`.
  """
  abstract, shardings = abstract_state(config, method, mesh, example)
  state = jax.jit(method.init, out_shardings=shardings)(_init_key(config),
                                                        example)
  return state, abstract, shardings
