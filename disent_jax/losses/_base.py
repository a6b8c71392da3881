"""Shared helpers of the loss modules: reductions and cheap shape checks."""

from typing import Literal

import jax
import jax.numpy as jnp

Reduction = Literal["mean", "sum", "none"]


def reduce(values: jax.Array, reduction: Reduction) -> jax.Array:
  """Reduces per-item loss values: "mean", "sum" or "none" (unchanged)."""
  if reduction == "mean":
    return jnp.mean(values)
  if reduction == "sum":
    return jnp.sum(values)
  if reduction == "none":
    return values
  raise ValueError(
      f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def check_same_shape(name: str, a: jax.Array, b: jax.Array) -> None:
  """Raises ValueError unless `a` and `b` have the same shape."""
  if a.shape != b.shape:
    raise ValueError(f"{name}: shapes differ, {a.shape} vs {b.shape}")


def check_last_axis(name: str, x: jax.Array, size: int, what: str) -> None:
  """Raises ValueError unless x is [..., size]."""
  if x.ndim < 1 or x.shape[-1] != size:
    raise ValueError(f"{name}: {what} must be [..., {size}], got {x.shape}")


def safe_norm(x: jax.Array, *, axis: int = -1,
              epsilon: float = 0.0) -> jax.Array:
  """sqrt(sum(x^2) + epsilon) along `axis`, with a zero gradient at 0.

  With `epsilon` = 0 the value at x = 0 is exactly 0 and its gradient is 0
  (not NaN), so a perfect prediction does not poison a backward pass.
  """
  sq = jnp.sum(x * x, axis=axis) + epsilon
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def safe_divide(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
  """numerator / denominator, 0 where the denominator is 0 (finite grads)."""
  nonzero = denominator != 0
  return jnp.where(nonzero,
                   numerator / jnp.where(nonzero, denominator, 1.0), 0.0)
