"""Paper 003's evaluation on held-out SynthFace subjects (first part).

  * shape/mean_mm: the mean per-vertex distance (mm) between the predicted
    canonical shape and the exact one (SynthFace shapes share the template's
    frame, so no alignment is needed), beside the template (the mean face)
    and the 3DMM fit of the exact shape (the pseudo ground truth's own
    error, an oracle: it is fitted to the answer).
  * landmarks/nme: the projected landmarks' mean error over the
    inter-ocular distance, beside the training set's mean landmarks.
  * recon/photometric: the masked per-pixel colour error of the render
    (face mask ∩ coverage), beside the mean training image (face mask).

The MICC-style protocol (scans, scaled ICP, point-to-plane errors) is not
here yet.
"""

import dataclasses
from typing import Any, Callable, Iterable, Mapping

import jax.numpy as jnp
import numpy as np

from disent_jax.losses import image_formation
from disent_jax.nets import align
from disent_jax.synthface import morphable as mm_lib
from disent_jax.train import partitioning


@dataclasses.dataclass(frozen=True)
class Baselines:
  """Trivial answers from the training split.

  Attributes:
    mean_shape: [V, 3] the template (the 3DMM mean).
    mean_landmarks: [68, 2] the mean training landmarks (pixels).
    mean_image: [S, S, 3] the mean training image.
  """
  mean_shape: np.ndarray
  mean_landmarks: np.ndarray
  mean_image: np.ndarray

  @classmethod
  def fit(cls, train: Mapping[str, np.ndarray],
          morphable: mm_lib.Morphable) -> "Baselines":
    return cls(np.asarray(morphable.mean, np.float32),
               np.asarray(train["landmarks_2d"], np.float64).mean(0),
               np.asarray(train["image"], np.float64).mean(0).astype(
                   np.float32))


def _vertex_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
  return np.linalg.norm(np.asarray(pred) - np.asarray(gt), axis=-1).mean(-1)


def _nme(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
  five = np.asarray(align.five_points_from_ibug68(gt))
  io = np.linalg.norm(five[:, 0] - five[:, 1], axis=-1)
  return np.linalg.norm(pred - gt, axis=-1).mean(-1) / io


def evaluate(predict: Callable[[Any, Any], dict[str, Any]], state: Any,
             dataset: Iterable[Mapping[str, Any]], *, baselines: Baselines,
             morphable: mm_lib.Morphable) -> dict[str, float]:
  """The metrics of the module docstring over the test batches (which carry
  image, face_mask, landmarks_2d, vertices, mm_identity, mm_expression)."""
  cols = {k: [] for k in ("shape", "shape_tpl", "shape_fit", "nme",
                          "nme_mean", "photo", "photo_mean")}
  for batch in dataset:
    out = predict(state, batch["image"])
    out, batch = partitioning.to_host((out, batch))
    gt = np.asarray(batch["vertices"])
    cols["shape"].append(_vertex_error(out["shape"], gt))
    cols["shape_tpl"].append(_vertex_error(baselines.mean_shape[None], gt))
    fit = mm_lib.reconstruct(morphable, batch["mm_identity"],
                             batch["mm_expression"])
    cols["shape_fit"].append(_vertex_error(np.asarray(fit), gt))
    lm = np.asarray(batch["landmarks_2d"])
    cols["nme"].append(_nme(np.asarray(out["landmarks_2d"]), lm))
    cols["nme_mean"].append(_nme(np.broadcast_to(
        baselines.mean_landmarks, lm.shape), lm))
    image = jnp.asarray(batch["image"])
    face = jnp.asarray(batch["face_mask"])
    cols["photo"].append(np.asarray(image_formation.photometric_loss(
        jnp.asarray(out["image"]), image, face * out["coverage"],
        per_image=True)))
    cols["photo_mean"].append(np.asarray(image_formation.photometric_loss(
        jnp.broadcast_to(baselines.mean_image, image.shape), image, face,
        per_image=True)))
  if not cols["shape"]:
    raise ValueError("evaluate: the test dataset is empty")
  c = {k: np.concatenate(v) for k, v in cols.items()}
  return {
      "shape/mean_mm": float(c["shape"].mean()),
      "baseline_template/shape/mean_mm": float(c["shape_tpl"].mean()),
      "baseline_3dmm_fit/shape/mean_mm": float(c["shape_fit"].mean()),
      "landmarks/nme": float(c["nme"].mean()),
      "baseline_mean_landmarks/landmarks/nme": float(c["nme_mean"].mean()),
      "recon/photometric": float(c["photo"].mean()),
      "baseline_mean_image/recon/photometric": float(
          c["photo_mean"].mean()),
      "num_test_images": float(len(c["shape"])),
  }
