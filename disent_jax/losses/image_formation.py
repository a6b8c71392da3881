"""3DMM and image-formation losses: SH lighting, skin colour, photometric.

* `sh_coefficient_loss`: the distance between two sets of spherical-harmonics
  lighting coefficients, squared (paper 000's lighting pseudo-supervision)
  or absolute (paper 001 eq. 4).
* `mean_masked_colour` and `skin_colour_loss`: the average colour over a
  face mask and the distance between two images' averages (paper 001
  eq. 5).
* `photometric_loss`: a per-pixel colour error averaged over a mask (paper
  003 eq. 6's M (.) ||I^ - I||_2); an empty mask gives 0.
* `coefficient_prior`: ||alpha / sigma||^2, the Gaussian prior of 3DMM
  coefficients.
"""

import jax
import jax.numpy as jnp

from disent_jax.losses import _base
from disent_jax.losses import reconstruction
from disent_jax.losses._base import Reduction


def _check_sh(prediction, target):
  _base.check_same_shape("sh_coefficient_loss", prediction, target)
  last = prediction.shape[-2:] if prediction.ndim >= 2 else ()
  if prediction.shape[-1:] != (27,) and last != (9, 3):
    raise ValueError("sh_coefficient_loss: coefficients must be [..., 27] or "
                     f"[..., 9, 3] (9 bands x RGB), got {prediction.shape}")


def sh_coefficient_loss(prediction: jax.Array, target: jax.Array, *,
                        norm: str = "squared",
                        reduction: Reduction = "mean") -> jax.Array:
  """Distance between 9-band SH lighting coefficients, per coefficient.

    norm="squared": (gamma - gamma^)^2   (paper 000, ||L - L^||^2)
    norm="abs":     |gamma - gamma^|     (paper 001 eq. 4, mean over the 27)

  Args:
    prediction: [..., 27] or [..., 9, 3] coefficients.
    target: the same shape.
    norm: "squared" or "abs".
    reduction: "mean", "sum" or "none" (per coefficient).

  Returns:
    A scalar, or the per-coefficient values with reduction="none".
  """
  prediction, target = jnp.asarray(prediction), jnp.asarray(target)
  _check_sh(prediction, target)
  diff = prediction - target
  if norm == "squared":
    values = jnp.square(diff)
  elif norm == "abs":
    values = jnp.abs(diff)
  else:
    raise ValueError(f"norm must be 'squared' or 'abs', got {norm!r}")
  return _base.reduce(values, reduction)


def _check_image_mask(name, images, mask):
  if images.ndim < 3:
    raise ValueError(f"{name}: images must be [..., H, W, C], got "
                     f"{images.shape}")
  if mask.shape != images.shape[:-1]:
    raise ValueError(f"{name}: mask must be [..., H, W] = {images.shape[:-1]},"
                     f" got {mask.shape}")


def mean_masked_colour(images: jax.Array, mask: jax.Array) -> jax.Array:
  """sum_p M_p I_p / sum_p M_p per image and channel.

  Args:
    images: [..., H, W, C].
    mask: [..., H, W] face mask (soft masks weight pixels).

  Returns:
    [..., C] average colours; 0 for an image whose mask is empty.
  """
  images = jnp.asarray(images)
  mask = jnp.asarray(mask, images.dtype)
  _check_image_mask("mean_masked_colour", images, mask)
  total = jnp.sum(images * mask[..., None], axis=(-3, -2))
  count = jnp.sum(mask, axis=(-2, -1))[..., None]
  return _base.safe_divide(total, count)


def skin_colour_loss(images: jax.Array, reference: jax.Array,
                     mask: jax.Array, *, norm: str = "euclidean",
                     epsilon: float = 1e-8,
                     reduction: Reduction = "mean") -> jax.Array:
  """Distance between the mean face colours of two images (paper 001 eq. 5).

    c(x) = mean_masked_colour(x, M)
    norm="euclidean": sqrt(||c(x) - c(x^)||^2 + epsilon)  (the authors' code)
    norm="l1":        |c(x) - c(x^)|_1                    (the paper's text)

  The same mask (the 3DMM face region of the render) is used for both
  images.

  Args:
    images: [..., H, W, C] generated images x.
    reference: [..., H, W, C] the rendered 3DMM faces x^.
    mask: [..., H, W] the render's face mask.
    norm: "euclidean" or "l1".
    epsilon: inside the square root (finite gradient at 0).
    reduction: "mean", "sum" or "none" ([...] per image).

  Returns:
    A scalar, or [...] with reduction="none".
  """
  images, reference = jnp.asarray(images), jnp.asarray(reference)
  _base.check_same_shape("skin_colour_loss", images, reference)
  diff = mean_masked_colour(images, mask) - mean_masked_colour(reference, mask)
  if norm == "euclidean":
    values = jnp.sqrt(jnp.sum(diff * diff, axis=-1) + epsilon)
  elif norm == "l1":
    values = jnp.sum(jnp.abs(diff), axis=-1)
  else:
    raise ValueError(f"norm must be 'euclidean' or 'l1', got {norm!r}")
  return _base.reduce(values, reduction)


def photometric_loss(prediction: jax.Array, target: jax.Array,
                     mask: jax.Array, *, norm: str = "euclidean",
                     per_image: bool = False) -> jax.Array:
  """Per-pixel colour error averaged over the masked pixels.

    norm="euclidean": ||I^_p - I_p||_2 (paper 003 eq. 6, not squared)
    norm="squared":   ||I^_p - I_p||_2^2
    norm="l1":        sum_c |I^_pc - I_pc|

  Pixels outside the mask (occluders, background, pixels the render does
  not cover) do not count; an empty mask gives 0 with zero gradients.

  Args:
    prediction: [..., H, W, C] rendered images.
    target: [..., H, W, C] input images.
    mask: [..., H, W] pixel mask (e.g. face segmentation & render coverage).
    norm: "euclidean", "squared" or "l1".
    per_image: if True, average within each image ([...]); otherwise pool
      all masked pixels of the batch into one mean (a scalar).

  Returns:
    A scalar, or [...] with per_image=True.
  """
  prediction, target = jnp.asarray(prediction), jnp.asarray(target)
  _base.check_same_shape("photometric_loss", prediction, target)
  mask = jnp.asarray(mask, prediction.dtype)
  _check_image_mask("photometric_loss", prediction, mask)
  diff = prediction - target
  if norm == "euclidean":
    per_pixel = _base.safe_norm(diff)
  elif norm == "squared":
    per_pixel = jnp.sum(diff * diff, axis=-1)
  elif norm == "l1":
    per_pixel = jnp.sum(jnp.abs(diff), axis=-1)
  else:
    raise ValueError(f"norm must be 'euclidean', 'squared' or 'l1', got "
                     f"{norm!r}")
  axis = (-2, -1) if per_image else None
  return reconstruction.masked_mean(per_pixel, mask, axis=axis)


def coefficient_prior(coefficients: jax.Array,
                      stddev: jax.Array | None = None, *,
                      reduction: Reduction = "mean") -> jax.Array:
  """sum_i (alpha_i / sigma_i)^2 per example: the 3DMM Gaussian prior.

  Args:
    coefficients: [..., K] model coefficients alpha.
    stddev: optional [K] standard deviations sigma (1 if omitted, for
      coefficients already in units of sigma).
    reduction: "mean", "sum" or "none" ([...] per example).

  Returns:
    A scalar, or [...] with reduction="none".
  """
  coefficients = jnp.asarray(coefficients)
  if stddev is not None:
    stddev = jnp.asarray(stddev, coefficients.dtype)
    _base.check_last_axis("coefficient_prior", stddev,
                          coefficients.shape[-1], "stddev")
    coefficients = coefficients / stddev
  return _base.reduce(jnp.sum(coefficients * coefficients, axis=-1),
                      reduction)
