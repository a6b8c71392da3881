"""Intrinsic-image constraints on normal, albedo, shading and mask maps.

The constraints of Neural Face Editing (Shu et al. 2017) that paper 000
(§3.6) takes over: smooth masked normals, unit-length normals, piecewise
smooth (total-variation) albedo, a batch-wise "white" shading anchor and a
smooth mask. Maps are [B, H, W, C]; masks [B, H, W] or [B, H, W, 1] in
[0, 1]. Every reduction is a per-element mean so weights are comparable.
"""

import jax
import jax.numpy as jnp

from disent_jax.losses import _base


def _check_map(name: str, x: jax.Array) -> jax.Array:
  x = jnp.asarray(x)
  if x.ndim != 4:
    raise ValueError(f"{name}: maps must be [B, H, W, C], got {x.shape}")
  return x


def _mask4(name: str, mask: jax.Array | None, like: jax.Array) -> jax.Array:
  if mask is None:
    return jnp.ones(like.shape[:3] + (1,), like.dtype)
  mask = jnp.asarray(mask, like.dtype)
  if mask.ndim == 3:
    mask = mask[..., None]
  if mask.shape[:3] != like.shape[:3] or mask.shape[3] not in (1,
                                                               like.shape[3]):
    raise ValueError(f"{name}: mask {mask.shape} does not fit maps "
                     f"{like.shape}")
  return mask


def finite_differences(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Forward differences (d/dx [B, H, W-1, C], d/dy [B, H-1, W, C])."""
  x = _check_map("finite_differences", x)
  return x[:, :, 1:] - x[:, :, :-1], x[:, 1:] - x[:, :-1]


def masked_smoothness(x: jax.Array, mask: jax.Array | None = None
                      ) -> jax.Array:
  """Mean squared finite difference of the masked map M ⊙ x.

  [30]'s `SmoothSelfPartialCriterion` on normals and masks: the squared
  x- and y-differences of M ⊙ x, averaged over their entries and the two
  directions. A constant map inside a constant mask scores 0.

  Args:
    x: [B, H, W, C] map.
    mask: optional [B, H, W(, 1)] weights.

  Returns:
    A scalar.
  """
  x = _check_map("masked_smoothness", x)
  dx, dy = finite_differences(x * _mask4("masked_smoothness", mask, x))
  return 0.5 * (jnp.mean(jnp.square(dx)) + jnp.mean(jnp.square(dy)))


def total_variation_l1(x: jax.Array, mask: jax.Array | None = None
                       ) -> jax.Array:
  """Mean absolute finite difference of M ⊙ x (anisotropic TV, [30]'s
  `TVSelfPartialCriterion` on albedo), averaged over both directions.

  Args:
    x: [B, H, W, C] map.
    mask: optional [B, H, W(, 1)] weights.

  Returns:
    A scalar.
  """
  x = _check_map("total_variation_l1", x)
  dx, dy = finite_differences(x * _mask4("total_variation_l1", mask, x))
  return 0.5 * (jnp.mean(jnp.abs(dx)) + jnp.mean(jnp.abs(dy)))


def unit_length_loss(normals: jax.Array, mask: jax.Array | None = None
                     ) -> jax.Array:
  """mean((|n|^2 - 1)^2) over the (masked) pixels ([30]'s `criterion_Nnm`).

  Args:
    normals: [B, H, W, 3].
    mask: optional [B, H, W(, 1)] weights (None: every pixel).

  Returns:
    A scalar.
  """
  normals = _check_map("unit_length_loss", normals)
  _base.check_last_axis("unit_length_loss", normals, 3, "normals")
  sq = jnp.sum(jnp.square(normals), axis=-1, keepdims=True)
  values = jnp.square(sq - 1.0)
  m = _mask4("unit_length_loss", mask, normals)[..., :1]
  m = jnp.broadcast_to(m, values.shape)
  return _base.safe_divide(jnp.sum(values * m), jnp.sum(m))


def batch_white_shading(shading: jax.Array, mask: jax.Array, *,
                        target: float = 0.75) -> jax.Array:
  """[30]'s `BatchWhiteShadingCriterion`: sum_c ½ (mean S_c - target)^2.

  The mean of each shading channel over the batch's masked pixels is pulled
  to a grey level, which fixes the albedo/shading scale ambiguity on
  average without constraining any single image.

  Args:
    shading: [B, H, W, C] shading.
    mask: [B, H, W(, 1)] weights.
    target: the anchor (0.75 in [30]).

  Returns:
    A scalar.
  """
  shading = _check_map("batch_white_shading", shading)
  m = jnp.broadcast_to(_mask4("batch_white_shading", mask, shading)[..., :1],
                       shading.shape[:3] + (1,))
  means = _base.safe_divide(jnp.sum(shading * m, axis=(0, 1, 2)),
                            jnp.sum(m))
  return 0.5 * jnp.sum(jnp.square(means - target))
