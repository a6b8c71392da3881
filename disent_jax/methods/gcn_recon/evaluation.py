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

The linear model of the same data (`baseline_ridge`): ridge regressions
from the pixels (average-pooled to at most 32 x 32) to the 3DMM fit's
coefficients, on the labelled training images only (the supervision the
model's L_shp gets), and to the 2D landmarks, on every training image
(the landmark detector's); the strengths are chosen on training subjects
held out from the fit (`metrics.linear.select_ridge`).

`micc_metrics` adds the MICC-style protocol (`micc`: three views of
subjects never seen in training, scaled ICP, point-to-plane errors within
95 mm of the nose tip) for the model and the same baselines: the template,
the oracle 3DMM fit of each exact neutral and the ridge regressor's
shapes, averaged over the views like the model's.
"""

import dataclasses
from typing import Any, Callable, Iterable, Mapping

import jax.numpy as jnp
import numpy as np

from disent_jax.losses import image_formation
from disent_jax.methods.gcn_recon import micc
from disent_jax.metrics import linear
from disent_jax.nets import align
from disent_jax.synthface import morphable as mm_lib
from disent_jax.train import partitioning


_RIDGE_PIXELS = 32
_RIDGE_MAX_EXAMPLES = 3000


def ridge_features(images: np.ndarray) -> np.ndarray:
  """Images [N, S, S, 3] (uint8 or [0, 1]) -> [N, D] pixels average-pooled
  to at most 32 x 32 (a linear map, so a ridge on them is linear in the
  pixels)."""
  x = np.asarray(images)
  x = x.astype(np.float64) / (255.0 if x.dtype == np.uint8 else 1.0)
  n, s = x.shape[0], x.shape[1]
  f = max(1, s // _RIDGE_PIXELS)
  if s % f:
    raise ValueError(f"ridge_features: image size {s} is not a multiple of "
                     f"its pooling factor {f}")
  x = x.reshape(n, s // f, f, s // f, f, 3).mean(axis=(2, 4))
  return x.reshape(n, -1)


def _spaced(n: int, limit: int) -> np.ndarray:
  if n <= limit:
    return np.arange(n)
  return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


@dataclasses.dataclass(frozen=True)
class Baselines:
  """Trivial and linear answers from the training split.

  Attributes:
    mean_shape: [V, 3] the template (the 3DMM mean).
    mean_landmarks: [68, 2] the mean training landmarks (pixels).
    mean_image: [S, S, 3] the mean training image.
    ridge_coefficients: pixels -> concat(mm_identity, mm_expression), or
      None without labelled images.
    ridge_landmarks: pixels -> flattened landmarks [136] (pixels).
  """
  mean_shape: np.ndarray
  mean_landmarks: np.ndarray
  mean_image: np.ndarray
  ridge_coefficients: linear.LinearMap | None = None
  ridge_landmarks: linear.LinearMap | None = None

  @classmethod
  def fit(cls, train: Mapping[str, np.ndarray],
          morphable: mm_lib.Morphable) -> "Baselines":
    """Fits every baseline on the training arrays (`data.generate`'s)."""
    idx = _spaced(len(train["image"]), _RIDGE_MAX_EXAMPLES)
    x = ridge_features(np.asarray(train["image"])[idx])
    subjects = np.asarray(train["subject"])[idx]
    lm = np.asarray(train["landmarks_2d"], np.float64)[idx].reshape(
        len(idx), -1)
    (a_l,) = linear.select_ridge(x, (lm,), subjects)
    ridge_l = linear.fit_ridge(x, lm, alpha=a_l)
    ridge_c = None
    lab = np.asarray(train["labelled"], bool)[idx]
    if lab.sum() >= 2:
      coeffs = np.concatenate(
          [np.asarray(train["mm_identity"], np.float64)[idx][lab],
           np.asarray(train["mm_expression"], np.float64)[idx][lab]], -1)
      (a_c,) = linear.select_ridge(x[lab], (coeffs,), subjects[lab])
      ridge_c = linear.fit_ridge(x[lab], coeffs, alpha=a_c)
    return cls(np.asarray(morphable.mean, np.float32),
               np.asarray(train["landmarks_2d"], np.float64).mean(0),
               np.asarray(train["image"], np.float64).mean(0).astype(
                   np.float32), ridge_c, ridge_l)

  def ridge_shapes(self, features: np.ndarray,
                   morphable: mm_lib.Morphable) -> np.ndarray | None:
    """`ridge_features` [N, D] -> [N, V, 3] shapes of the ridge's predicted
    coefficients (None without labelled training images)."""
    if self.ridge_coefficients is None:
      return None
    c = self.ridge_coefficients(features)
    k = morphable.num_identity
    return np.asarray(mm_lib.reconstruct(morphable, c[:, :k], c[:, k:]))

  def ridge_landmarks_2d(self, features: np.ndarray) -> np.ndarray | None:
    """`ridge_features` [N, D] -> [N, 68, 2] the ridge's landmarks
    (pixels), or None."""
    if self.ridge_landmarks is None:
      return None
    return self.ridge_landmarks(features).reshape(-1, 68, 2)


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
  cols = {k: [] for k in ("shape", "shape_tpl", "shape_fit", "shape_ridge",
                          "nme", "nme_mean", "nme_ridge", "photo",
                          "photo_mean")}
  for batch in dataset:
    out = predict(state, batch["image"])
    out, batch = partitioning.to_host((out, batch))
    gt = np.asarray(batch["vertices"])
    cols["shape"].append(_vertex_error(out["shape"], gt))
    cols["shape_tpl"].append(_vertex_error(baselines.mean_shape[None], gt))
    fit = mm_lib.reconstruct(morphable, batch["mm_identity"],
                             batch["mm_expression"])
    cols["shape_fit"].append(_vertex_error(np.asarray(fit), gt))
    features = ridge_features(np.asarray(batch["image"]))
    ridge = baselines.ridge_shapes(features, morphable)
    if ridge is not None:
      cols["shape_ridge"].append(_vertex_error(ridge, gt))
    lm = np.asarray(batch["landmarks_2d"])
    cols["nme"].append(_nme(np.asarray(out["landmarks_2d"]), lm))
    cols["nme_mean"].append(_nme(np.broadcast_to(
        baselines.mean_landmarks, lm.shape), lm))
    ridge_lm = baselines.ridge_landmarks_2d(features)
    if ridge_lm is not None:
      cols["nme_ridge"].append(_nme(ridge_lm, lm))
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
  c = {k: np.concatenate(v) for k, v in cols.items() if v}
  ridge = {}
  if "shape_ridge" in c:
    ridge["baseline_ridge/shape/mean_mm"] = float(c["shape_ridge"].mean())
  if "nme_ridge" in c:
    ridge["baseline_ridge/landmarks/nme"] = float(c["nme_ridge"].mean())
  return {
      **ridge,
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


def micc_metrics(predict: Callable[[Any, Any], dict[str, Any]], state: Any,
                 data: Mapping[str, np.ndarray], *, baselines: Baselines,
                 morphable: mm_lib.Morphable, single_view: bool = False,
                 batch: int = 64) -> dict[str, float]:
  """Table 1 (`micc.evaluate`) of the model and the baselines, flattened:
  micc/<condition>/{mean,std[,single_view_mean]} for the model and
  baseline_<name>/micc/... for template, 3dmm_fit and ridge."""
  per_subject = int(np.prod(data["images"].shape[1:3]))

  def model(images):
    out = [partitioning.to_host(predict(state, images[i:i + batch]))["shape"]
           for i in range(0, len(images), batch)]
    return np.concatenate([np.asarray(o) for o in out])

  fit = np.asarray(mm_lib.reconstruct(morphable, *mm_lib.fit(
      morphable, jnp.asarray(data["neutral"]))))
  methods = {
      "model": model,
      "template": lambda x: np.repeat(baselines.mean_shape[None], len(x), 0),
      "3dmm_fit": lambda x: np.repeat(fit, per_subject, 0),
  }
  if baselines.ridge_coefficients is not None:
    methods["ridge"] = lambda x: baselines.ridge_shapes(
        ridge_features(x), morphable)
  table = micc.evaluate(methods, np.asarray(morphable.faces), data,
                        single_view=single_view)
  out = {}
  for name, row in table.items():
    prefix = "micc" if name == "model" else f"baseline_{name}/micc"
    out.update({f"{prefix}/{k}": v for k, v in row.items()})
  return out
