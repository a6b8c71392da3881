"""Paper 000's evaluation on held-out SynthFace subjects.

  * Table 1 (§5.4): the angular error of the stream-2 normal map against
    the exact normals inside the face, per image; mean ± std over images
    and the share of images under 20-40°. Beside it, computed on the same
    images: the 3DMM-fit normals (the pseudo ground truth's own error), the
    training set's mean normal map and the flat normal (0, 0, 1).
  * Reconstruction: the MSE of x_hat against the input, beside the mean
    training image.
  * Tables 2-3 (§5.5): linear-SVM probes (k-fold) of z_id, z_exp, z_p, z_l
    on a full factorial grid of unseen identities x expressions x yaws x
    lights; every latent against every factor, so the cross-factor leakage
    is a matrix.
  * Editing (§5.1-5.2): expression and pose transfer and relighting on
    the same grid against its ground-truth re-renders (`editing`).
  * Identity preservation (what eq. 8 optimises): the SFace cosine between
    each test image and its reconstruction, both aligned with the image's
    five fitted points, beside the mean image and the PCA reconstruction.
"""

import dataclasses
from typing import Any, Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.data import onthefly
from disent_jax.methods.tensor_aae import baselines as baselines_lib
from disent_jax.methods.tensor_aae import editing
from disent_jax.metrics import clusters
from disent_jax.metrics import normals as normal_metrics
from disent_jax.metrics import probes
from disent_jax.nets import align
from disent_jax.nets import sface
from disent_jax.train import partitioning

THRESHOLDS = (20.0, 25.0, 30.0, 35.0, 40.0)
LATENTS = ("identity", "expression", "pose", "light")
FACTORS = ("identity", "expression", "pose", "light")
# Figs. 14-15 (R4): (latent, factor) pairs whose clustering is measured.
CLUSTERS = (("expression", "expression"), ("pose", "pose"))
# Table 3's (latent, factor) pairs on the frontal grid.
FRONTAL_PROBES = (("identity", "identity"), ("expression", "expression"),
                  ("light", "light"))


@dataclasses.dataclass(frozen=True)
class Baselines:
  """Trivial answers computed from the training split.

  Attributes:
    mean_image: [S, S, 3] the mean training image.
    mean_normals: [S, S, 3] the mean training pseudo-normal map, unit
      length where any training face covers the pixel ((0, 0, 1) elsewhere).
    pca_mean: [S*S*3], pca_basis: [S*S*3, k] a PCA of the training images
      with as many components as the method has latent dimensions (a linear
      model of the same size; its codes are probed like the latents).
  """
  mean_image: np.ndarray
  mean_normals: np.ndarray
  pca_mean: np.ndarray | None = None
  pca_basis: np.ndarray | None = None

  @classmethod
  def fit(cls, images: np.ndarray, fit_normals: np.ndarray, *,
          components: int = 0) -> "Baselines":
    """From training images [N, S, S, 3] and fit normals [N, S, S, 3];
    `components` > 0 adds the PCA."""
    pca_mean = pca_basis = None
    if components > 0:
      pca_mean, pca_basis = baselines_lib.linear_decomposition(images,
                                                               components)
    mean_image = np.asarray(images, np.float64).mean(0)
    n = np.asarray(fit_normals, np.float64).sum(0)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    flat = np.zeros_like(n)
    flat[..., 2] = 1.0
    mean_normals = np.where(norm > 1e-6, n / np.maximum(norm, 1e-12), flat)
    return cls(mean_image.astype(np.float32), mean_normals.astype(np.float32),
               pca_mean, pca_basis)

  def pca_codes(self, images: np.ndarray) -> np.ndarray:
    """PCA coefficients [N, k] of images [N, S, S, 3]."""
    return baselines_lib.linear_codes(images, self.pca_mean, self.pca_basis)

  def pca_reconstruct(self, images: np.ndarray) -> np.ndarray:
    """The PCA's reconstruction of images, same shape."""
    recon = self.pca_codes(images) @ self.pca_basis.T + self.pca_mean
    return recon.reshape(np.shape(images)).astype(np.float32)


@jax.jit
def _aligned_embeddings(net: sface.SFace, images: jax.Array,
                        five_points: jax.Array) -> jax.Array:
  return sface.embed(net, align.align_face(images, five_points))


def identity_cosines(net: sface.SFace, images: np.ndarray,
                     candidates: np.ndarray, five_points: np.ndarray
                     ) -> np.ndarray:
  """cos(𝒱(x_i), 𝒱(c_i)) [B] of images and candidates [B, S, S, 3], both
  aligned with the images' five points [B, 5, 2]."""
  five = jnp.asarray(five_points, jnp.float32)
  a = _aligned_embeddings(net, jnp.asarray(images, jnp.float32), five)
  b = _aligned_embeddings(net, jnp.asarray(candidates, jnp.float32), five)
  a = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
  b = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
  return np.asarray(jnp.sum(a * b, axis=-1))


def _normal_stats(prefix: str, pred: np.ndarray, target: np.ndarray,
                  mask: np.ndarray) -> dict[str, float]:
  stats = normal_metrics.normal_error_stats(pred, target, mask,
                                            thresholds=THRESHOLDS)
  return {f"{prefix}/{k}": v for k, v in stats.items()}


def evaluate(predict: Callable[[Any, jax.Array], tuple[dict, dict]],
             state: Any, dataset: Iterable[Mapping[str, jax.Array]], *,
             baselines: Baselines,
             probe_grid: Mapping[str, np.ndarray] | None = None,
             probe_folds: int = 10,
             edit: Callable[[Any, np.ndarray, np.ndarray, str], np.ndarray]
             | None = None, edit_pairs: int = 200,
             verifier: sface.SFace | None = None) -> dict[str, float]:
  """The metrics of a trained state on the test split (and the probe grid).

  Args:
    predict: jitted `(state, images) -> (outputs, latents)`.
    state: the train state.
    dataset: test batches with image, normals, face_mask, fit_normals and
      gt_near_frontal.
    baselines: `Baselines` of the training split.
    probe_grid: image [N, S, S, 3] and {factor}_label [N] of the probe grid
      (`probe_grid_arrays`); None skips the probes.
    probe_folds: k of the k-fold probes.
    edit: `(state, targets, donors, factor) -> edited images`; with a
      probe grid, the edits are scored against it (`editing`).
    edit_pairs: pairs per edited factor.
    verifier: SFace; adds identity/sface_cosine (needs fit_five_points in
      the batches) and its mean-image and PCA baselines.

  Returns:
    A flat {name: float}.
  """
  cols = {k: [] for k in ("normals", "gt", "mask", "fit", "sq", "base_sq",
                          "pca_sq", "frontal", "near", "id_cos",
                          "base_id_cos", "pca_id_cos")}
  for batch in dataset:
    out, _ = predict(state, batch["image"])
    out, batch = partitioning.to_host((out, batch))
    x = np.asarray(batch["image"], np.float32)
    cols["normals"].append(np.asarray(out["normals"]))
    cols["frontal"].append(np.asarray(out["frontal_normals"]))
    cols["gt"].append(np.asarray(batch["normals"], np.float32))
    cols["mask"].append(np.asarray(batch["face_mask"], np.float32)[..., 0])
    cols["fit"].append(np.asarray(batch["fit_normals"], np.float32))
    cols["near"].append(np.asarray(batch["gt_near_frontal"]) > 0.5)
    cols["sq"].append(np.mean(np.square(np.asarray(out["image"]) - x),
                              axis=(1, 2, 3)))
    cols["base_sq"].append(np.mean(np.square(baselines.mean_image - x),
                                   axis=(1, 2, 3)))
    if baselines.pca_basis is not None:
      cols["pca_sq"].append(np.mean(np.square(
          baselines.pca_reconstruct(x) - x), axis=(1, 2, 3)))
    if verifier is not None:
      five = batch["fit_five_points"]
      cols["id_cos"].append(identity_cosines(verifier, x, out["image"], five))
      cols["base_id_cos"].append(identity_cosines(
          verifier, x, np.broadcast_to(baselines.mean_image, x.shape), five))
      if baselines.pca_basis is not None:
        cols["pca_id_cos"].append(identity_cosines(
            verifier, x, baselines.pca_reconstruct(x), five))
  if not cols["sq"]:
    raise ValueError("evaluate: the test dataset is empty")
  c = {k: np.concatenate(v) for k, v in cols.items() if v}
  gt, mask = c["gt"], c["mask"]
  metrics = {"recon/mse": float(c["sq"].mean()),
             "baseline_mean_image/recon/mse": float(c["base_sq"].mean()),
             "num_test_images": float(len(c["sq"]))}
  if "pca_sq" in c:
    metrics["baseline_pca/recon/mse"] = float(c["pca_sq"].mean())
  for key, name in (("id_cos", "identity"),
                    ("base_id_cos", "baseline_mean_image/identity"),
                    ("pca_id_cos", "baseline_pca/identity")):
    if key in c:
      metrics[f"{name}/sface_cosine"] = float(c[key].mean())
  metrics.update(_normal_stats("normals", c["normals"], gt, mask))
  metrics.update(_normal_stats("baseline_fit_normals", c["fit"], gt, mask))
  metrics.update(_normal_stats(
      "baseline_mean_normals",
      np.broadcast_to(baselines.mean_normals, gt.shape), gt, mask))
  flat = np.zeros_like(gt)
  flat[..., 2] = 1.0
  metrics.update(_normal_stats("baseline_flat_normals", flat, gt, mask))
  near = c["near"]
  if near.any():
    metrics.update(_normal_stats("frontal_normals", c["frontal"][near],
                                 gt[near], mask[near]))
    # Stream 2 and the mean map on the same images, beside the [37]-style
    # decomposition (frontal only).
    metrics.update(_normal_stats("normals_near", c["normals"][near],
                                 gt[near], mask[near]))
    metrics.update(_normal_stats(
        "baseline_mean_normals_near",
        np.broadcast_to(baselines.mean_normals, gt[near].shape), gt[near],
        mask[near]))
  if probe_grid is not None:
    metrics.update(probe_metrics(predict, state, probe_grid,
                                 num_folds=probe_folds, baselines=baselines))
    if edit is not None and edit_pairs > 0:
      metrics.update(editing.editing_metrics(edit, state, probe_grid,
                                             num_pairs=edit_pairs))
  return metrics


def encode_images(predict: Callable[[Any, jax.Array], tuple[dict, dict]],
                  state: Any, images: np.ndarray, *, batch_size: int = 64
                  ) -> dict[str, np.ndarray]:
  """Latents {name: [N, d]} of images [N, S, S, 3], in batches."""
  out = {}
  for i in range(0, len(images), batch_size):
    _, lat = predict(state, jnp.asarray(images[i:i + batch_size]))
    for k, v in jax.device_get(lat).items():
      out.setdefault(k, []).append(np.asarray(v))
  return {k: np.concatenate(v) for k, v in out.items()}


def probe_metrics(predict, state, grid: Mapping[str, np.ndarray], *,
                  num_folds: int = 10, baselines: Baselines | None = None
                  ) -> dict[str, float]:
  """probe/z_{latent}/{factor} accuracies and probe/chance/{factor}; with
  a PCA in `baselines`, also probe/baseline_pca/{factor} of its codes; and
  cluster/z_{latent}/{factor}/* for `CLUSTERS` (Figs. 14-15); and, when
  the grid has poses, probe_frontal/z_{latent}/{factor} on its frontal
  subset (Table 3)."""
  lat = encode_images(predict, state, grid["image"])
  names = list(LATENTS)
  if baselines is not None and baselines.pca_basis is not None:
    lat["baseline_pca"] = baselines.pca_codes(grid["image"])
    names.append("baseline_pca")
  metrics = {}
  for factor in FACTORS:
    labels = grid[f"{factor}_label"]
    metrics[f"probe/chance/{factor}"] = float(
        1.0 / len(np.unique(labels)))
    for name in names:
      acc = probes.probe_accuracy(lat[name], labels, num_folds=num_folds)
      key = name if name.startswith("baseline") else f"z_{name}"
      metrics[f"probe/{key}/{factor}"] = acc["mean"]
      metrics[f"probe/{key}/{factor}/std"] = acc["std"]
  for lat_name, factor in CLUSTERS:
    metrics.update(cluster_metrics(f"z_{lat_name}", lat[lat_name],
                                   grid[f"{factor}_label"], factor))
  if "pose" not in grid:
    return metrics
  # Table 3: the frontal subset (yaw nearest 0), identity, expression and
  # light from z_id, z_exp and z_l.
  frontal = editing.frontal_rows(grid)
  for lat_name, factor in FRONTAL_PROBES:
    acc = probes.probe_accuracy(lat[lat_name][frontal],
                                grid[f"{factor}_label"][frontal],
                                num_folds=num_folds)
    metrics[f"probe_frontal/z_{lat_name}/{factor}"] = acc["mean"]
    metrics[f"probe_frontal/z_{lat_name}/{factor}/std"] = acc["std"]
  return metrics



def probe_grid_arrays(*, resolution: str, render_size: int, num_identities: int,
                      seed: int, downsample: Callable[[np.ndarray], np.ndarray]
                      | None = None) -> dict[str, np.ndarray]:
  """The probe grid (Table 2's analogue): unseen identities x 6 expressions
  x 5 yaws x 4 lights, plain grey background.

  Args:
    resolution: the template resolution.
    render_size: the renderer's image size.
    num_identities: identities (drawn with `seed`, which must differ from
      the training data's seed so they are unseen).
    seed: the grid's seed.
    downsample: maps [N, R, R, 3] -> [N, S, S, 3] (None: keep R).

  Returns:
    image [N, S, S, 3] float32 in [0, 1], the face mask [N, S, S] (0/1),
    pose [N, 3] (Euler angles) and {identity, expression, pose,
    light}_label [N] int.
  """
  gen = onthefly.grid_generator(onthefly.GridConfig(
      resolution=resolution, size=render_size,
      num_identities=num_identities, seed=seed))
  parts = [onthefly.materialize(gen, split) for split in ("train", "test")]
  index = np.concatenate([p["index"] for p in parts])
  order = np.argsort(index)
  images = np.concatenate([p["image"] for p in parts])[order]
  images = images.astype(np.float32) / 255.0
  mask = np.concatenate([p["mask"] for p in parts])[order]
  mask = np.asarray(mask, np.float32).reshape(images.shape[:3] + (1,))
  if downsample is not None:
    images = downsample(images)
    mask = downsample(mask)
  out = {"image": np.asarray(images, np.float32),
         "mask": (mask[..., 0] >= 0.5).astype(np.float32),
         "pose": np.concatenate([p["pose"] for p in parts])[order]}
  for f in FACTORS:
    out[f"{f}_label"] = np.concatenate([p[f"{f}_label"]
                                        for p in parts])[order]
  return out


def cluster_metrics(name: str, latents: np.ndarray, labels: np.ndarray,
                    factor: str) -> dict[str, float]:
  """cluster/{name}/{factor}/{silhouette, knn5} of latents [N, d]."""
  return {
      f"cluster/{name}/{factor}/silhouette": clusters.silhouette(latents,
                                                                 labels),
      f"cluster/{name}/{factor}/knn5": clusters.knn_accuracy(latents, labels,
                                                             k=5)}
