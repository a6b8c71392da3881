"""Identity and metric-learning losses: cosine identity, center loss, softmax.

* `cosine_similarity` and `cosine_identity_loss`: max(1 - cos - tau, 0)
  between two embeddings, paper 001 eq. (2) (tau = 0.3); with tau = 0 it is
  paper 000's verification term 1 - cos (eq. 8) and paper 001 eq. (8).
* `softmax_cross_entropy`: classification into identity classes with integer
  labels (paper 003's L_soft).
* `center_loss` and `center_update` (Wen et al. 2016; paper 003 eq. 5): the
  pull of each feature towards its class centre, and the non-trainable
  centre update, returned as new state for the caller to keep.
"""

import jax
import jax.numpy as jnp

from disent_jax.losses import _base
from disent_jax.losses._base import Reduction


def cosine_similarity(a: jax.Array, b: jax.Array, *,
                      epsilon: float = 1e-12) -> jax.Array:
  """<a, b> / (||a|| ||b||) over the last axis.

  Args:
    a: [..., D].
    b: broadcastable to [..., D].
    epsilon: floor on each norm, so a zero vector gives 0, not NaN.

  Returns:
    [...] similarities in [-1, 1].
  """
  a, b = jnp.asarray(a), jnp.asarray(b)
  dot = jnp.sum(a * b, axis=-1)
  na = jnp.maximum(_base.safe_norm(a), epsilon)
  nb = jnp.maximum(_base.safe_norm(b), epsilon)
  return dot / (na * nb)


def cosine_identity_loss(embedding: jax.Array, target: jax.Array, *,
                         margin: float = 0.0,
                         reduction: Reduction = "mean") -> jax.Array:
  """max(1 - cos(embedding, target) - margin, 0) (paper 001 eq. 2).

  Identity embeddings need not match exactly: within the margin tau the
  loss and its gradient are 0. Stop the target's gradient if it comes from
  a frozen network applied to the real image.

  Args:
    embedding: [..., D] embeddings of generated images.
    target: [..., D] embeddings of the reference images.
    margin: tau (0.3 in paper 001; 0 for a plain 1 - cos).
    reduction: "mean", "sum" or "none" ([...]).

  Returns:
    A scalar, or [...] with reduction="none".
  """
  embedding, target = jnp.asarray(embedding), jnp.asarray(target)
  _base.check_same_shape("cosine_identity_loss", embedding, target)
  values = jax.nn.relu(1.0 - cosine_similarity(embedding, target) - margin)
  return _base.reduce(values, reduction)


def _check_labels(name, features, labels, centers=None):
  if features.ndim != 2:
    raise ValueError(f"{name}: features must be [B, D], got {features.shape}")
  if labels.shape != features.shape[:1]:
    raise ValueError(f"{name}: labels must be [{features.shape[0]}], got "
                     f"{labels.shape}")
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(f"{name}: labels must be integers, got {labels.dtype}")
  if centers is not None and (centers.ndim != 2
                              or centers.shape[1] != features.shape[1]):
    raise ValueError(f"{name}: centers must be [num_classes, "
                     f"{features.shape[1]}], got {centers.shape}")


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array, *,
                          reduction: Reduction = "mean") -> jax.Array:
  """-log softmax(logits)[label] per example.

  Args:
    logits: [..., K] class logits.
    labels: [...] integer classes in [0, K).
    reduction: "mean", "sum" or "none" ([...]).

  Returns:
    A scalar, or [...] with reduction="none".
  """
  logits, labels = jnp.asarray(logits), jnp.asarray(labels)
  if labels.shape != logits.shape[:-1]:
    raise ValueError(f"softmax_cross_entropy: labels must be "
                     f"{logits.shape[:-1]}, got {labels.shape}")
  log_p = jax.nn.log_softmax(logits, axis=-1)
  values = -jnp.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
  return _base.reduce(values, reduction)


def center_loss(features: jax.Array, labels: jax.Array, centers: jax.Array,
                *, reduction: str = "sum") -> jax.Array:
  """L_C = 1/2 sum_b ||x_b - c_{y_b}||^2 (Wen et al. 2016, eq. 2).

  The centres receive no gradient here: they move by `center_update`.

  Args:
    features: [B, D] deep features (paper 003: c_id).
    labels: [B] integer classes.
    centers: [K, D] the current class centres.
    reduction: "sum" over the batch (Wen et al.) or "mean" (divided by B).

  Returns:
    A scalar.
  """
  features, labels = jnp.asarray(features), jnp.asarray(labels)
  centers = jnp.asarray(centers)
  _check_labels("center_loss", features, labels, centers)
  own = jax.lax.stop_gradient(jnp.take(centers, labels, axis=0))
  values = 0.5 * jnp.sum(jnp.square(features - own), axis=-1)
  if reduction not in ("sum", "mean"):
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
  return _base.reduce(values, reduction)


def center_update(features: jax.Array, labels: jax.Array, centers: jax.Array,
                  *, alpha: float = 0.5) -> jax.Array:
  """Wen et al.'s centre step c_j <- c_j - alpha * delta c_j.

    delta c_j = sum_b [y_b = j] (c_j - x_b) / (1 + sum_b [y_b = j])

  Classes absent from the batch keep their centre; a class seen n times
  moves towards its batch mean by alpha * n / (n + 1) of the way.

  Args:
    features: [B, D] features (their gradient is stopped).
    labels: [B] integer classes in [0, K).
    centers: [K, D] current centres.
    alpha: the centre learning rate (0.5 in Wen et al.).

  Returns:
    [K, D] the new centres.
  """
  features, labels = jnp.asarray(features), jnp.asarray(labels)
  centers = jnp.asarray(centers)
  _check_labels("center_update", features, labels, centers)
  features = jax.lax.stop_gradient(features).astype(centers.dtype)
  num_classes = centers.shape[0]
  counts = jax.ops.segment_sum(jnp.ones_like(labels, centers.dtype), labels,
                               num_segments=num_classes)  # [K]
  sums = jax.ops.segment_sum(features, labels,
                             num_segments=num_classes)  # [K, D]
  delta = (counts[:, None] * centers - sums) / (1.0 + counts[:, None])
  return centers - alpha * delta
