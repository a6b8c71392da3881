"""Small pure helpers for writing a method's train step."""

from typing import Any

import jax
import jax.numpy as jnp


def tree_l2(tree: Any) -> jax.Array:
  """The global L2 norm of all arrays in a pytree (float32 scalar)."""
  leaves = jax.tree_util.tree_leaves(tree)
  if not leaves:
    return jnp.zeros((), jnp.float32)
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32)))
                      for x in leaves))


def grad_metrics(grads: Any, params: Any, *, prefix: str = ""
                 ) -> dict[str, jax.Array]:
  """`l2_grads` and `l2_params` (optionally prefixed, e.g. "disc/")."""
  return {f"{prefix}l2_grads": tree_l2(grads),
          f"{prefix}l2_params": tree_l2(params)}


def all_finite(metrics: Any) -> jax.Array:
  """True iff every floating value in `metrics` is finite."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(metrics)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
  if not leaves:
    return jnp.array(True)
  return jnp.all(jnp.stack(leaves))
