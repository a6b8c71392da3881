"""Reconstruction losses: element, vertex and pixel errors, masks, landmarks.

* `mse`, `l1`: per-element squared / absolute errors.
* `vertex_l2`: the Euclidean length of the error of each vertex (or pixel,
  or landmark) over the last axis, with a finite gradient at zero error.
* `masked_mean`: a mean over the entries a mask selects; zero coverage gives
  0, not NaN.
* `gradient_difference`: the image gradient-difference loss of Mathieu et
  al. (2016), paper 003 eq. (6), optionally restricted to a mask.
* `landmark_loss`, `pairwise_distance_loss`: 2D/3D landmark errors and the
  "distance between two landmarks" term of paper 003 eq. (7), with the
  iBUG-68 contour and opening pairs as constants.

Every loss takes a `reduction`: "mean" (default), "sum" or "none" (the
unreduced per-item values, whose shape each docstring gives).
"""

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.losses import _base
from disent_jax.losses._base import Reduction


def mse(prediction: jax.Array, target: jax.Array, *,
        reduction: Reduction = "mean") -> jax.Array:
  """Squared error (prediction - target)^2.

  Args:
    prediction: [...] any shape.
    target: the same shape.
    reduction: "mean" (the MSE), "sum" or "none" ([...] per element).

  Returns:
    A scalar, or [...] with reduction="none".
  """
  prediction, target = jnp.asarray(prediction), jnp.asarray(target)
  _base.check_same_shape("mse", prediction, target)
  return _base.reduce(jnp.square(prediction - target), reduction)


def l1(prediction: jax.Array, target: jax.Array, *,
       reduction: Reduction = "mean") -> jax.Array:
  """Absolute error |prediction - target|.

  Args:
    prediction: [...] any shape.
    target: the same shape.
    reduction: "mean" (mean absolute error), "sum" or "none" ([...]).

  Returns:
    A scalar, or [...] with reduction="none".
  """
  prediction, target = jnp.asarray(prediction), jnp.asarray(target)
  _base.check_same_shape("l1", prediction, target)
  return _base.reduce(jnp.abs(prediction - target), reduction)


def vertex_l2(prediction: jax.Array, target: jax.Array, *,
              reduction: Reduction = "mean") -> jax.Array:
  """Euclidean length of the error over the last axis (per vertex / pixel).

  The mean over vertices is the mean per-vertex Euclidean error of paper
  002's E_rec (in the units of the inputs); over an RGB axis it is the
  per-pixel colour distance of paper 003 eq. (6). The gradient at a zero
  error is 0.

  Args:
    prediction: [..., C], e.g. [B, V, 3] vertices or [B, H, W, 3] pixels.
    target: the same shape.
    reduction: "mean", "sum" or "none" ([...] per vertex).

  Returns:
    A scalar, or [...] with reduction="none".
  """
  prediction, target = jnp.asarray(prediction), jnp.asarray(target)
  _base.check_same_shape("vertex_l2", prediction, target)
  return _base.reduce(_base.safe_norm(prediction - target), reduction)


def masked_mean(values: jax.Array, mask: jax.Array, *,
                axis: int | tuple[int, ...] | None = None) -> jax.Array:
  """sum(mask * values) / sum(mask) over `axis`; 0 where the mask is empty.

  The mask broadcasts against `values` (e.g. a [B, H, W, 1] mask over
  [B, H, W, 3] values) and the count is taken after broadcasting, so the
  result is the mean over the selected entries. Soft (fractional) masks
  weight entries. An all-zero mask gives 0 with zero gradients, not NaN.

  Args:
    values: [...] per-entry values.
    mask: broadcastable to `values`, non-negative weights.
    axis: axes to reduce (None: all).

  Returns:
    `values` reduced over `axis`.
  """
  values = jnp.asarray(values)
  mask = jnp.broadcast_to(jnp.asarray(mask, values.dtype), values.shape)
  total = jnp.sum(values * mask, axis=axis)
  count = jnp.sum(mask, axis=axis)
  return _base.safe_divide(total, count)


def _gdl_terms(prediction, target, axis, alpha):
  dp = jnp.abs(jnp.diff(prediction, axis=axis))
  dt = jnp.abs(jnp.diff(target, axis=axis))
  diff = jnp.abs(dt - dp)
  if alpha == 1.0:
    return diff
  # |d|^alpha with a finite gradient at d = 0 for alpha < 1 as well.
  positive = diff > 0
  return jnp.where(positive, jnp.where(positive, diff, 1.0) ** alpha, 0.0)


def gradient_difference(prediction: jax.Array, target: jax.Array, *,
                        alpha: float = 1.0,
                        mask: jax.Array | None = None,
                        reduction: Reduction = "mean") -> jax.Array:
  """Image gradient-difference loss (Mathieu et al. 2016; paper 003 eq. 6).

    GDL = sum_p sum_c | |I_{p+x} - I_p| - |I^_{p+x} - I^_p| |^alpha
                    + | |I_{p+y} - I_p| - |I^_{p+y} - I^_p| |^alpha

  over horizontal and vertical neighbour pairs and channels. With a mask,
  only pairs whose two pixels are both inside it count (the spec of paper
  003 §2.2).

  Args:
    prediction: [..., H, W, C] images.
    target: the same shape.
    alpha: the exponent (1 in paper 003).
    mask: optional [..., H, W] pixel mask (1 inside); soft masks weight each
      pair by the product of its two pixels' values.
    reduction: "sum" (the formula above, over everything), "mean" (that sum
      divided by the number of counted (pair, channel) terms, 0 with an
      empty mask) or "none" (a pair of per-pair arrays: the horizontal
      [..., H, W-1, C] and vertical [..., H-1, W, C] terms, mask applied).

  Returns:
    A scalar, or a (horizontal, vertical) tuple with reduction="none".
  """
  prediction, target = jnp.asarray(prediction), jnp.asarray(target)
  _base.check_same_shape("gradient_difference", prediction, target)
  if prediction.ndim < 3:
    raise ValueError("gradient_difference: images must be [..., H, W, C], "
                     f"got {prediction.shape}")
  gx = _gdl_terms(prediction, target, -2, alpha)  # [..., H, W-1, C]
  gy = _gdl_terms(prediction, target, -3, alpha)  # [..., H-1, W, C]
  if mask is None:
    wx = jnp.ones(gx.shape[:-1], gx.dtype)
    wy = jnp.ones(gy.shape[:-1], gy.dtype)
  else:
    mask = jnp.asarray(mask, prediction.dtype)
    if mask.shape != prediction.shape[:-1]:
      raise ValueError("gradient_difference: mask must be [..., H, W] = "
                       f"{prediction.shape[:-1]}, got {mask.shape}")
    wx = mask[..., :, 1:] * mask[..., :, :-1]
    wy = mask[..., 1:, :] * mask[..., :-1, :]
  tx, ty = gx * wx[..., None], gy * wy[..., None]
  if reduction == "none":
    return tx, ty
  total = jnp.sum(tx) + jnp.sum(ty)
  if reduction == "sum":
    return total
  if reduction != "mean":
    raise ValueError(f"gradient_difference: reduction must be 'mean', 'sum' "
                     f"or 'none', got {reduction!r}")
  channels = prediction.shape[-1]
  return _base.safe_divide(total, channels * (jnp.sum(wx) + jnp.sum(wy)))


def _loop(first: int, last: int) -> list[tuple[int, int]]:
  return [(i, i + 1) for i in range(first, last)] + [(last, first)]


def _chain(first: int, last: int) -> list[tuple[int, int]]:
  return [(i, i + 1) for i in range(first, last)]


# Consecutive landmarks along every iBUG-68 contour: jaw, brows, nose bridge
# and base, the two eye loops, the outer and inner lip loops.
IBUG68_CONTOUR_PAIRS = np.asarray(
    _chain(0, 16) + _chain(17, 21) + _chain(22, 26) + _chain(27, 30)
    + _chain(31, 35) + _loop(36, 41) + _loop(42, 47) + _loop(48, 59)
    + _loop(60, 67), dtype=np.int32)
# Upper-to-lower eyelid and lip pairs: the eye and mouth openings that paper
# 003 §3.2 singles out.
IBUG68_OPENING_PAIRS = np.asarray(
    [(37, 41), (38, 40), (43, 47), (44, 46), (50, 58), (51, 57), (52, 56),
     (61, 67), (62, 66), (63, 65)], dtype=np.int32)


def _check_landmarks(name, prediction, target, weights):
  _base.check_same_shape(name, prediction, target)
  if prediction.ndim < 2:
    raise ValueError(f"{name}: landmarks must be [..., L, D], got "
                     f"{prediction.shape}")
  if weights is not None and weights.shape[-1] != prediction.shape[-2]:
    raise ValueError(f"{name}: weights must be [..., {prediction.shape[-2]}],"
                     f" got {weights.shape}")


def pairwise_distance_loss(prediction: jax.Array, target: jax.Array,
                           pairs: jax.Array | np.ndarray, *,
                           weights: jax.Array | None = None,
                           reduction: Reduction = "mean") -> jax.Array:
  """| ||p_i - p_j|| - ||u_i - u_j|| | over landmark pairs (paper 003 eq. 7).

  Keeps the distances between landmarks (eyelid to eyelid, lip to lip)
  close to the target's, whatever the absolute error.

  Args:
    prediction: [..., L, D] predicted landmarks.
    target: [..., L, D] target landmarks.
    pairs: [P, 2] int landmark index pairs, e.g. `IBUG68_CONTOUR_PAIRS`.
    weights: optional [P] (or [..., P]) per-pair weights; "mean" is then the
      weighted mean.
    reduction: "mean", "sum" or "none" ([..., P]).

  Returns:
    A scalar, or [..., P] with reduction="none".
  """
  prediction, target = jnp.asarray(prediction), jnp.asarray(target)
  _base.check_same_shape("pairwise_distance_loss", prediction, target)
  pairs = np.asarray(pairs)
  if pairs.ndim != 2 or pairs.shape[1] != 2:
    raise ValueError(f"pairwise_distance_loss: pairs must be [P, 2], got "
                     f"{pairs.shape}")
  if pairs.size and (pairs.min() < 0 or pairs.max() >= prediction.shape[-2]):
    raise ValueError(f"pairwise_distance_loss: pair indices must lie in "
                     f"[0, {prediction.shape[-2]})")
  i, j = pairs[:, 0], pairs[:, 1]
  dp = _base.safe_norm(prediction[..., i, :] - prediction[..., j, :])
  dt = _base.safe_norm(target[..., i, :] - target[..., j, :])
  values = jnp.abs(dp - dt)
  if weights is None:
    return _base.reduce(values, reduction)
  weights = jnp.broadcast_to(jnp.asarray(weights, values.dtype), values.shape)
  if reduction == "mean":
    return masked_mean(values, weights)
  return _base.reduce(values * weights, reduction)


def landmark_loss(prediction: jax.Array, target: jax.Array, *,
                  kind: str = "euclidean",
                  weights: jax.Array | None = None,
                  pairs: jax.Array | np.ndarray | None = None,
                  pair_weight: float = 1.0) -> jax.Array:
  """Landmark error, optionally plus the pairwise-distance term.

    kind="euclidean":  mean_l ||p_l - u_l||        (paper 003 eq. 7)
    kind="squared":    mean_{l, d} (p_ld - u_ld)^2  (paper 001 eq. 3 as its
                                                    code reduces it)
    + pair_weight * pairwise_distance_loss(p, u, pairs)   if pairs given

  Normalise coordinates before calling (paper 001's weights assume division
  by the image size).

  Args:
    prediction: [..., L, D] landmarks.
    target: [..., L, D].
    kind: "euclidean" or "squared".
    weights: optional [..., L] per-landmark weights (e.g. visibility); the
      mean becomes a weighted mean, 0 if all weights are 0.
    pairs: optional [P, 2] landmark pairs for the distance term.
    pair_weight: its weight (1 in paper 003).

  Returns:
    A scalar.
  """
  prediction, target = jnp.asarray(prediction), jnp.asarray(target)
  if weights is not None:
    weights = jnp.asarray(weights, prediction.dtype)
  _check_landmarks("landmark_loss", prediction, target, weights)
  if kind == "euclidean":
    per_landmark = _base.safe_norm(prediction - target)  # [..., L]
  elif kind == "squared":
    per_landmark = jnp.mean(jnp.square(prediction - target), axis=-1)
  else:
    raise ValueError(f"landmark_loss: kind must be 'euclidean' or 'squared', "
                     f"got {kind!r}")
  if weights is None:
    loss = jnp.mean(per_landmark)
  else:
    loss = masked_mean(per_landmark, weights)
  if pairs is not None:
    loss = loss + pair_weight * pairwise_distance_loss(prediction, target,
                                                       pairs)
  return loss
