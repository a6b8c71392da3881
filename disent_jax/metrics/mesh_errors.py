"""3D mesh errors in millimetres (paper 002 §IV-C, CoMA protocol).

* `E_rec` (paper 002 eq. 9): mean per-vertex Euclidean distance between a
  reconstruction and its input, reported as mean, std and median over meshes.
* `E_dis` (paper 002 eq. 10): the spread of the predicted identity (neutral)
  shapes of one subject. As in the authors' public evaluation code, it is the
  standard deviation, over all of a subject's meshes and vertices, of the
  per-vertex distance between each predicted identity shape and the subject's
  mean predicted identity shape; then averaged (and the median taken) over
  subjects.
* `AVD_neu`: the `E_rec` formula applied to the predicted neutral versus the
  ground-truth neutral.

All functions are pure and jit-able, except `summarize` and
`disentanglement_error`, which return Python floats.
"""

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.losses import reconstruction
from disent_jax.metrics import alignment


def _check_points(name: str, x: jax.Array) -> None:
  if x.ndim < 2 or x.shape[-1] != 3:
    raise ValueError(f"{name} must have shape [..., V, 3], got {x.shape}.")


def per_vertex_error(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Euclidean distance between corresponding vertices.

  Args:
    pred: [..., V, 3] predicted vertices (mm).
    target: [..., V, 3] ground-truth vertices (mm).

  Returns:
    [..., V] distances in mm.
  """
  pred = jnp.asarray(pred)
  target = jnp.asarray(target)
  _check_points("pred", pred)
  _check_points("target", target)
  if pred.shape[-2] != target.shape[-2]:
    raise ValueError(
        f"Vertex counts differ: pred {pred.shape}, target {target.shape}.")
  # Zero gradient (not NaN) where a vertex is exact.
  return reconstruction.vertex_l2(pred, target, reduction="none")


def mesh_error(pred: jax.Array, target: jax.Array,
               *, mask: Optional[jax.Array] = None) -> jax.Array:
  """Mean per-vertex distance of each mesh (paper 002 eq. 9).

  Args:
    pred: [..., V, 3] predicted vertices (mm).
    target: [..., V, 3] ground-truth vertices (mm).
    mask: optional [V] or [..., V] vertex weights (e.g. a face-region mask).

  Returns:
    [...] mean distance per mesh in mm.
  """
  err = per_vertex_error(pred, target)
  if mask is None:
    return jnp.mean(err, axis=-1)
  mask = jnp.broadcast_to(jnp.asarray(mask, err.dtype), err.shape)
  return jnp.sum(err * mask, axis=-1) / jnp.maximum(
      jnp.sum(mask, axis=-1), 1e-12)


def error_map(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Per-vertex error averaged over meshes, for heat-map figures.

  Args:
    pred: [N, V, 3] or [V, 3] predicted vertices (mm).
    target: same shape as `pred`.

  Returns:
    [V] mean distance of each vertex over the N meshes (mm).
  """
  err = per_vertex_error(pred, target)
  return err if err.ndim == 1 else jnp.mean(
      err.reshape(-1, err.shape[-1]), axis=0)


def identity_spread(identity: jax.Array, subject_ids: jax.Array,
                    *, num_subjects: int) -> jax.Array:
  """E_dis of each subject (paper 002 eq. 10).

  Args:
    identity: [N, V, 3] predicted identity (neutral) shapes (mm).
    subject_ids: [N] integer subject labels in [0, num_subjects).
    num_subjects: number of subjects S (static).

  Returns:
    [S] standard deviation of ||A_i - A_mean||_2 over the subject's meshes
    and vertices; 0 for a subject without meshes.
  """
  identity = jnp.asarray(identity)
  _check_points("identity", identity)
  if identity.ndim != 3:
    raise ValueError(f"identity must be [N, V, 3], got {identity.shape}.")
  subject_ids = jnp.asarray(subject_ids, jnp.int32)
  if subject_ids.shape != identity.shape[:1]:
    raise ValueError(
        f"subject_ids must be [N]={identity.shape[:1]}, got "
        f"{subject_ids.shape}.")
  seg = dict(segment_ids=subject_ids, num_segments=num_subjects)
  counts = jax.ops.segment_sum(jnp.ones_like(subject_ids, identity.dtype),
                               **seg)
  safe_counts = jnp.maximum(counts, 1.0)
  means = jax.ops.segment_sum(identity, **seg) / safe_counts[:, None, None]
  dist = per_vertex_error(identity, means[subject_ids])  # [N, V]
  num_v = identity.shape[1]
  s1 = jax.ops.segment_sum(jnp.sum(dist, axis=-1), **seg)
  s2 = jax.ops.segment_sum(jnp.sum(dist * dist, axis=-1), **seg)
  n = safe_counts * num_v
  var = jnp.maximum(s2 / n - (s1 / n) ** 2, 0.0)
  return jnp.where(counts > 0, jnp.sqrt(var), 0.0)


def summarize(errors, *, prefix: str = "") -> dict[str, float]:
  """Mean, std and median over meshes, as the papers report them.

  Args:
    errors: [N] per-mesh errors (mm).
    prefix: prepended to each key, e.g. "E_rec/".

  Returns:
    {prefix+"mean", prefix+"std", prefix+"median"} as Python floats.
  """
  e = np.asarray(errors, np.float64).reshape(-1)
  if e.size == 0:
    raise ValueError("summarize needs at least one error value.")
  return {f"{prefix}mean": float(e.mean()), f"{prefix}std": float(e.std()),
          f"{prefix}median": float(np.median(e))}


def disentanglement_error(identity, subject_ids) -> dict[str, float]:
  """E_dis over a test set with arbitrary subject labels.

  Args:
    identity: [N, V, 3] predicted identity shapes (mm).
    subject_ids: [N] subject labels of any hashable numeric type.

  Returns:
    {"E_dis/mean", "E_dis/median"}: over subjects of the per-subject spread.
  """
  _, labels = np.unique(np.asarray(subject_ids), return_inverse=True)
  num = int(labels.max()) + 1
  per_subject = identity_spread(identity, labels.astype(np.int32),
                                num_subjects=num)
  per_subject = np.asarray(per_subject, np.float64)
  return {"E_dis/mean": float(per_subject.mean()),
          "E_dis/median": float(np.median(per_subject))}


def mesh_metrics(recon, target, *, identity=None, neutral=None,
                 subject_ids=None, align: Optional[str] = None
                 ) -> dict[str, float]:
  """The paper 002 table row for a test set, in mm.

  Args:
    recon: [N, V, 3] reconstructions.
    target: [N, V, 3] input meshes.
    identity: optional [N, V, 3] predicted identity (neutral) shapes.
    neutral: optional [N, V, 3] ground-truth neutral shapes (AVD_neu).
    subject_ids: optional [N] subject labels (E_dis).
    align: None, "rigid" or "similarity": align each prediction to its
      ground truth first (the public code of paper 002 aligns rigidly on
      BU-3DFE).

  Returns:
    {"E_rec/mean", "E_rec/std", "E_rec/median"}, plus "AVD_neu/..." when
    `identity` and `neutral` are given and "E_dis/mean", "E_dis/median"
    when `identity` and `subject_ids` are given.
  """
  if align not in (None, "rigid", "similarity"):
    raise ValueError(f"align must be None, 'rigid' or 'similarity', got "
                     f"{align!r}.")

  def aligned(pred, gt):
    if align is None:
      return pred
    return alignment.align(pred, gt, scale=align == "similarity")

  out = summarize(mesh_error(aligned(recon, target), target),
                  prefix="E_rec/")
  if identity is not None and neutral is not None:
    out.update(summarize(mesh_error(aligned(identity, neutral), neutral),
                         prefix="AVD_neu/"))
  if identity is not None and subject_ids is not None:
    out.update(disentanglement_error(identity, subject_ids))
  return out
