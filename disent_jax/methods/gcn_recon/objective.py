"""Paper 003's objective (§3.2): every generator-side term, unweighted.

    L_G = λ_soft L_soft + λ_soft λ_center L_center           (eq. 5)
        + λ_recon (M ⊙ ||Î − I||_2 + L_gdl,color)             (eq. 6)
        + λ_lmk (||ŝ_2D[L] − U|| + L_gdl,lmk)                 (eq. 7)
        + 𝟙[lab] (λ_shp L_shp + λ_pair L_pair)                (eq. 8, 9)
        + λ_smooth L_smooth + λ_symm L_symm                   (eq. 10, 11)
        + λ_adv (−D(ŝ))                                       (eq. 12)

Every term is a mean (spec §6.6): the photometric error over the pixels
inside the face mask and the render's coverage, landmarks in image-size
units, shapes in mm per coordinate, albedo per vertex. L_shp and L_pair
average over the labelled images of the batch only. The weights the paper
leaves open are spec §6.6's starting values (`Weights`).
"""

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from disent_jax.losses import adversarial
from disent_jax.losses import geometry
from disent_jax.losses import identity
from disent_jax.losses import image_formation
from disent_jax.losses import reconstruction
from disent_jax.ops import graph

Terms = dict[str, jax.Array]
# eq. 7's pairs: consecutive points of every contour and the openings.
LANDMARK_PAIRS = np.concatenate([reconstruction.IBUG68_CONTOUR_PAIRS,
                                 reconstruction.IBUG68_OPENING_PAIRS])


@dataclasses.dataclass(frozen=True)
class Weights:
  """Loss weights (the paper names only λ_center; spec §6.6's values).

  `center` is λ_center, relative to L_soft as in eq. 5: L_center's weight
  in the total is `softmax * center`.
  """
  recon: float = 1.0
  landmarks: float = 5.0
  shape: float = 0.1
  pair: float = 0.1
  smooth: float = 0.5
  symmetry: float = 0.5
  softmax: float = 0.05
  center: float = 0.005
  adversarial: float = 1e-3

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict) -> "Weights":
    """Reads `config.loss`; an unknown or negative weight is an error."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in cfg.items():
      if key not in names:
        raise ValueError(f"config loss.{key}: not a loss weight; expected "
                         f"one of {sorted(names)}")
      if not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"config loss.{key}={value!r}: expected a "
                         "non-negative number")
      values[key] = float(value)
    return cls(**values)

  def of(self, term: str) -> float:
    """The weight of a term of `generator_terms` in the total."""
    if term == "center":
      return self.softmax * self.center
    return getattr(self, term)


def reconstruction_loss(rendered: jax.Array, image: jax.Array,
                        mask: jax.Array) -> jax.Array:
  """eq. 6: mean_{p in M} ||Î_p − I_p||_2 plus the colour GDL over pixel
  pairs inside M. rendered, image [B, S, S, 3]; mask [B, S, S]."""
  return (image_formation.photometric_loss(rendered, image, mask)
          + reconstruction.gradient_difference(rendered, image, mask=mask))


def labelled_mean(values: jax.Array, labelled: jax.Array) -> jax.Array:
  """sum_i w_i v_i / max(1, sum_i w_i) of per-image values [B] (0, with
  zero gradient, without labelled images)."""
  w = jnp.asarray(labelled, values.dtype)
  return jnp.sum(w * values) / jnp.maximum(jnp.sum(w), 1.0)


def _shape_l1(pred: jax.Array, target: jax.Array) -> jax.Array:
  """[B] mean |ŝ − s| per image over vertices and coordinates (mm)."""
  return jnp.mean(jnp.abs(pred - target), axis=(-2, -1))


def generator_terms(outputs: Mapping[str, jax.Array],
                    rendered: Mapping[str, jax.Array],
                    batch: Mapping[str, jax.Array], *,
                    pseudo_shape: jax.Array, pair_shape: jax.Array,
                    pair_target: jax.Array, logits: jax.Array,
                    centers: jax.Array, fake_scores: jax.Array | None,
                    template: jax.Array, smooth_operator: graph.GraphOperator,
                    mirror: np.ndarray) -> Terms:
  """Every generator-side term of one batch (unweighted).

  Args:
    outputs: `GcnReconstructor` outputs: codes, shape [B, V, 3] (mm,
      canonical frame), albedo [B, V, 3].
    rendered: `model.render` of them (vmapped): image [B, S, S, 3], mask
      [B, S, S] (coverage), landmarks_2d [B, 68, 2].
    batch: image [B, S, S, 3], face_mask [B, S, S] (M: the face without
      occluders), landmarks_2d [B, 68, 2] (U), subject [B] (identity
      classes), labelled [B].
    pseudo_shape: [B, V, 3] s of eq. 8 (the 3DMM fit's shape).
    pair_shape: [B, V, 3] f_shape([c_id,A, c_exp,B]) for B the batch
      rolled by one; pair_target [B, V, 3] s_{A,B} of eq. 9.
    logits: [B, K] the identity classifier's logits of c_id (L_soft).
    centers: [K, 128] the center loss's class centres (state).
    fake_scores: [B] D(ŝ), or None to leave L_adv out.
    template: [V, 3] s̃ of eq. 10.
    smooth_operator: the template's uniform Laplacian.
    mirror: [V] the template's mirror map (eq. 11).

  Returns:
    {name: scalar}, names as the fields of `Weights` (center separate).
  """
  image = batch["image"]
  size = image.shape[-2]
  m = (jnp.asarray(batch["face_mask"], image.dtype).reshape(image.shape[:-1])
       * jnp.asarray(rendered["mask"], image.dtype))
  labelled = batch["labelled"]
  both_labelled = labelled * paired(labelled)
  codes = outputs["codes"]
  terms = {
      "recon": reconstruction_loss(rendered["image"], image, m),
      "landmarks": reconstruction.landmark_loss(
          rendered["landmarks_2d"] / size, batch["landmarks_2d"] / size,
          pairs=LANDMARK_PAIRS),
      "shape": labelled_mean(_shape_l1(outputs["shape"], pseudo_shape),
                             labelled),
      "pair": labelled_mean(_shape_l1(pair_shape, pair_target),
                            both_labelled),
      "smooth": jnp.mean(geometry.template_relative_smoothness(
          outputs["shape"], template, smooth_operator, reduction="mean")),
      "symmetry": geometry.symmetry_loss(outputs["albedo"], mirror),
      "softmax": identity.softmax_cross_entropy(logits, batch["subject"]),
      "center": identity.center_loss(codes["identity"], batch["subject"],
                                     centers, reduction="mean"),
  }
  if fake_scores is not None:
    terms["adversarial"] = adversarial.wasserstein_generator_loss(
        fake_scores)
  return terms


def weighted_total(terms: Terms, weights: Weights) -> jax.Array:
  """sum_k w_k term_k."""
  total = jnp.zeros((), jnp.float32)
  for name, value in terms.items():
    total = total + weights.of(name) * value
  return total


def paired(x: jax.Array) -> jax.Array:
  """x [B, ...] of image B for each image A: the batch rolled by one
  (eq. 9's pairs, every image with the next). Decode
  (c_id, paired(c_exp)) against reconstruct(id, paired(exp))."""
  return jnp.roll(x, -1, axis=0)
