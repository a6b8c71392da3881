"""Surface-normal angular error (paper 000 §5.4, Table 1).

Table 1 of paper 000 reports, over a test set of images, the mean ± std of
the angular error between estimated and reference normal maps and the share
of images whose error is under 35° and under 40°. The std there (3–6°) is a
spread over images, so the per-image error is the mean over the face mask
and the shares count images. The pixel-level shares are returned as well.
"""

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def angular_error(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Angle between normal vectors in degrees, safe for zero vectors.

  Uses atan2(|a x b|, a . b), accurate near 0° and 180°; vectors need not be
  unit length. A zero vector against anything gives 90°.

  Args:
    pred: [..., 3] normals.
    target: [..., 3] normals.

  Returns:
    [...] angles in degrees, in [0, 180].
  """
  pred = jnp.asarray(pred)
  target = jnp.asarray(target)
  if pred.shape[-1] != 3 or target.shape[-1] != 3:
    raise ValueError(
        f"normals must be [..., 3], got {pred.shape} and {target.shape}.")
  cross = jnp.cross(pred, target)
  dot = jnp.sum(pred * target, axis=-1)
  sin2 = jnp.sum(cross * cross, axis=-1)
  # Double `where`s keep gradients finite at parallel or zero vectors.
  sin = jnp.where(sin2 > 0, jnp.sqrt(jnp.where(sin2 > 0, sin2, 1.0)), 0.0)
  both_zero = (sin2 == 0) & (dot == 0)
  angle = jnp.arctan2(sin, jnp.where(both_zero, 1.0, dot))
  return jnp.where(both_zero, 90.0, jnp.rad2deg(angle))


def per_image_angular_error(pred: jax.Array, target: jax.Array,
                            mask: Optional[jax.Array] = None) -> jax.Array:
  """Mean angular error over the (masked) pixels of each image.

  Args:
    pred: [..., H, W, 3] normal maps.
    target: [..., H, W, 3] reference normal maps.
    mask: optional [..., H, W] face mask (bool or weights).

  Returns:
    [...] mean error per image in degrees (0 for an empty mask).
  """
  err = angular_error(pred, target)
  if err.ndim < 2:
    raise ValueError(f"normal maps must be [..., H, W, 3], got {pred.shape}.")
  if mask is None:
    mask = jnp.ones_like(err)
  mask = jnp.broadcast_to(jnp.asarray(mask, err.dtype), err.shape)
  total = jnp.sum(mask, axis=(-2, -1))
  return jnp.sum(err * mask, axis=(-2, -1)) / jnp.maximum(total, 1e-12)


def normal_error_stats(pred, target, mask=None, *,
                       thresholds: Sequence[float] = (35.0, 40.0)
                       ) -> dict[str, float]:
  """Paper 000 Table 1 statistics for a set of normal maps.

  Args:
    pred: [N, H, W, 3] estimated normal maps.
    target: [N, H, W, 3] reference normal maps.
    mask: optional [N, H, W] face masks.
    thresholds: angles (degrees) for the "share under" columns.

  Returns:
    {"mean", "std"} over images of the per-image error (degrees),
    "under_{t}" the share of images whose error is below t, and
    "pixels_under_{t}" the share of masked pixels below t.
  """
  per_image = np.asarray(per_image_angular_error(pred, target, mask),
                         np.float64)
  err = np.asarray(angular_error(pred, target), np.float64)
  weights = (np.ones_like(err) if mask is None else
             np.broadcast_to(np.asarray(mask, np.float64), err.shape))
  out = {"mean": float(per_image.mean()), "std": float(per_image.std())}
  for t in thresholds:
    name = f"{t:g}"
    out[f"under_{name}"] = float(np.mean(per_image < t))
    out[f"pixels_under_{name}"] = float(
        np.sum((err < t) * weights) / max(weights.sum(), 1e-12))
  return out
