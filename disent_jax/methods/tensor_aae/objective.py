"""Paper 000's objective: every term of §3.6 and [30]'s constraints.

    E = E_recon + λ_adv E_adv + λ_veri E_veri            (eq. 8)
      + λ_p E_p + λ_exp E_exp + λ_id E_id                (eq. 9-11)
      + λ_3d E_3d + λ_f E_f + λ_n E_n                    (eq. 12-14)
      + [30]'s normal, lighting, albedo, shading and mask terms.

Every norm is a per-element mean (spec A2). E_f and E_n are averaged over
the near-frontal samples of the batch only (flag from the fitted rotation),
inside the fitted face mask (A6). The 3DMM targets (coefficients, shape) are
standardised with training-set statistics (`Targets`).
"""

import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from disent_jax.losses import adversarial
from disent_jax.losses import identity as identity_losses
from disent_jax.losses import intrinsic
from disent_jax.losses import reconstruction
from disent_jax.nets import align
from disent_jax.nets import sface

Terms = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Weights:
  """Loss weights. The paper states none but eq. 8's form (spec §3.1).

  The [30] weights are that code's, divided by 4 (its reconstruction
  weight) so that E_recon keeps weight 1 (spec §3.1, "scaled").
  """
  recon: float = 1.0
  adversarial: float = 0.1
  verification: float = 0.0
  pose: float = 1.0
  expression: float = 1.0
  identity: float = 1.0
  shape: float = 1.0
  frontal: float = 1.0
  frontal_normals: float = 1.0
  normals: float = 0.05
  normal_smoothness: float = 0.05
  unit_normals: float = 1.25
  light: float = 1.25
  white_shading: float = 0.25
  albedo_tv: float = 0.05
  mask: float = 1.25
  mask_smoothness: float = 0.5
  face_recon: float = 0.0
  latent_l2: float = 0.0

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict) -> "Weights":
    """Reads `config.loss`; unknown weight names are errors."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in cfg.items():
      if key in ("white_shading_target", "near_frontal_min"):
        continue
      if key not in names:
        raise ValueError(f"config loss.{key}: not a loss weight; expected "
                         f"one of {sorted(names)}")
      if not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"config loss.{key}={value!r}: expected a "
                         "non-negative number")
      values[key] = float(value)
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class Targets:
  """Standardisation of the 3DMM pseudo targets (training statistics).

  Attributes:
    identity_mean, identity_std: [Ki] of the fitted identity coefficients.
    expression_mean, expression_std: [Ke].
    shape_mean: [3V] the mean fitted shape (mm); shape_std: [] its global
      per-coordinate std (A8: the shape MSE is O(1)).
    white_shading: the batch-wise shading anchor of [30] (0.75 there).
  """
  identity_mean: Any
  identity_std: Any
  expression_mean: Any
  expression_std: Any
  shape_mean: Any
  shape_std: Any
  white_shading: float = 0.75

  def identity(self, coeffs: jax.Array) -> jax.Array:
    return (coeffs - self.identity_mean) / self.identity_std

  def expression(self, coeffs: jax.Array) -> jax.Array:
    return (coeffs - self.expression_mean) / self.expression_std

  def shape(self, flat: jax.Array) -> jax.Array:
    return (flat - self.shape_mean) / self.shape_std

  def unshape(self, normalised: jax.Array) -> jax.Array:
    """Normalised shapes [..., 3V] -> mm."""
    return normalised * self.shape_std + self.shape_mean

  @classmethod
  def from_arrays(cls, arrays: Mapping[str, np.ndarray], *,
                  white_shading: float = 0.75) -> "Targets":
    """Statistics of training arrays fit_identity, fit_expression,
    fit_shape ([N, ...])."""
    def mean_std(x):
      x = np.asarray(x, np.float64)
      return (x.mean(0).astype(np.float32),
              np.maximum(x.std(0), 1e-6).astype(np.float32))
    im, isd = mean_std(arrays["fit_identity"])
    em, esd = mean_std(arrays["fit_expression"])
    shape = np.asarray(arrays["fit_shape"], np.float64)
    sm = shape.mean(0)
    ssd = float(max(np.sqrt(np.mean(np.square(shape - sm))), 1e-6))
    return cls(im, isd, em, esd, sm.astype(np.float32), np.float32(ssd),
               white_shading=float(white_shading))


def _per_sample_masked(sq: jax.Array, mask: jax.Array) -> jax.Array:
  """[B] masked means of per-pixel values [B, H, W, C] under [B, H, W, 1]."""
  return reconstruction.masked_mean(sq, mask, axis=(1, 2, 3))


def near_frontal_mean(values: jax.Array, near: jax.Array) -> jax.Array:
  """sum_i w_i v_i / max(1, sum_i w_i): the mean over near-frontal samples
  (0, with zero gradient, when the batch has none)."""
  w = jnp.asarray(near, values.dtype)
  return jnp.sum(w * values) / jnp.maximum(jnp.sum(w), 1.0)


def verification_loss(net: sface.SFace, images: jax.Array,
                      reconstructions: jax.Array,
                      five_points: jax.Array) -> jax.Array:
  """E_veri = mean_i 1 - cos(𝒱(x_i), 𝒱(x_hat_i)) (eq. 8).

  Both images are aligned to the SFace template with the same five points
  (the input's), so the term compares identities, not framings. 𝒱(x) is a
  constant target; the gradient flows through 𝒱(x_hat) to x_hat only if
  `net` is frozen (`sface.frozen`).

  Args:
    net: the verification network (SFace in place of Light-CNN).
    images: x [B, S, S, 3] in [0, 1].
    reconstructions: x_hat [B, S, S, 3].
    five_points: [B, 5, 2] x's alignment points in pixels (`nets.align`).

  Returns:
    The scalar term.
  """
  target = jax.lax.stop_gradient(
      sface.embed(net, align.align_face(images, five_points)))
  embedding = sface.embed(net, align.align_face(reconstructions,
                                                five_points))
  return identity_losses.cosine_identity_loss(embedding, target)


def generator_terms(outputs: Mapping[str, jax.Array],
                    latents: Mapping[str, jax.Array],
                    batch: Mapping[str, jax.Array], *, targets: Targets,
                    fake_error: jax.Array | None = None,
                    verifier: sface.SFace | None = None,
                    verification_active: jax.Array | bool = True) -> Terms:
  """Every generator-side term (unweighted) of one batch.

  Args:
    outputs: `TensorAutoencoder.decode` outputs.
    latents: the encoder's latents.
    batch: image [B, S, S, 3]; the pseudo ground truth fit_rotation
      [B, 3, 3], fit_identity [B, Ki], fit_expression [B, Ke], fit_shape
      [B, 3V] (mm), fit_normals [B, S, S, 3], fit_mask [B, S, S, 1], fit_sh
      [B, 27], near_frontal [B] and (for E_veri) fit_five_points [B, 5, 2].
    targets: `Targets`.
    fake_error: [B] 𝒟's reconstruction error of x_hat (BEGAN's L(x_hat));
      None leaves E_adv out.
    verifier: the frozen verification network; None leaves E_veri out.
    verification_active: a bool scalar; while False (the warm-up) E_veri is
      0 and 𝒱 is not run.

  Returns:
    {name: scalar}, names as the fields of `Weights`.
  """
  x = batch["image"]
  fit_mask = batch["fit_mask"]
  near = batch["near_frontal"]
  b = x.shape[0]
  normals = outputs["normals"]
  terms = {
      "recon": reconstruction.mse(outputs["image"], x),
      "pose": reconstruction.mse(latents["pose"],
                                 batch["fit_rotation"].reshape(b, 9)),
      "expression": reconstruction.mse(
          outputs["fit_expression"],
          targets.expression(batch["fit_expression"])),
      "identity": reconstruction.mse(
          outputs["fit_identity"], targets.identity(batch["fit_identity"])),
      "shape": reconstruction.mse(outputs["shape"],
                                  targets.shape(batch["fit_shape"])),
      "frontal": near_frontal_mean(_per_sample_masked(
          jnp.square(outputs["frontal"] - x), fit_mask), near),
      "frontal_normals": near_frontal_mean(_per_sample_masked(
          jnp.square(outputs["frontal_normals"] - batch["fit_normals"]),
          fit_mask), near),
      "normals": reconstruction.masked_mean(
          jnp.square(normals - batch["fit_normals"]), fit_mask),
      "normal_smoothness": intrinsic.masked_smoothness(normals, fit_mask),
      "unit_normals": intrinsic.unit_length_loss(normals),
      "light": reconstruction.mse(outputs["sh"].reshape(b, 27),
                                  batch["fit_sh"]),
      "white_shading": intrinsic.batch_white_shading(
          outputs["shading"], fit_mask, target=targets.white_shading),
      "albedo_tv": intrinsic.total_variation_l1(outputs["albedo"], fit_mask),
      "mask": reconstruction.l1(outputs["mask"], fit_mask),
      "mask_smoothness": intrinsic.masked_smoothness(outputs["mask"]),
      "face_recon": reconstruction.masked_mean(
          jnp.square(outputs["face"] - x), fit_mask),
      "latent_l2": (jnp.mean(jnp.square(latents["identity"]))
                    + jnp.mean(jnp.square(latents["expression"]))),
  }
  if fake_error is not None:
    terms["adversarial"] = adversarial.began_generator_loss(fake_error)
  if verifier is not None:
    terms["verification"] = jax.lax.cond(
        verification_active,
        lambda: verification_loss(verifier, x, outputs["image"],
                                  batch["fit_five_points"]),
        lambda: jnp.zeros((), jnp.float32))
  return terms


def weighted_total(terms: Terms, weights: Weights, *,
                   adversarial_scale: jax.Array | float = 1.0) -> jax.Array:
  """sum_k w_k term_k; the weights of E_adv and E_veri are also multiplied
  by `adversarial_scale` (0 during the warm-up, spec §3.3)."""
  total = jnp.zeros((), jnp.float32)
  for name, value in terms.items():
    w = getattr(weights, name)
    if name in ("adversarial", "verification"):
      w = w * adversarial_scale
    total = total + w * value
  return total
