"""How well a latent clusters by a factor (paper 000 Figs. 14-15, spec R4).

The paper shows t-SNE plots of z_exp coloured by expression and z_p by
pose against the AAE latent Z_0; these are the numbers behind such a plot,
computed on standardised latents with Euclidean distances:

* `silhouette`: the mean silhouette coefficient (b - a) / max(a, b), a the
  mean distance to the sample's own class, b to the nearest other class
  (Rousseeuw 1987; 0 for a sample alone in its class, as scikit-learn);
* `knn_accuracy`: leave-one-out k-nearest-neighbour accuracy.
"""

import numpy as np


def _standardise(x) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim != 2:
    raise ValueError(f"latents must be [N, d], got {x.shape}")
  return (x - x.mean(0)) / np.maximum(x.std(0), 1e-12)


def _distances(x: np.ndarray) -> np.ndarray:
  sq = np.sum(x * x, axis=1)
  d2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
  return np.sqrt(np.maximum(d2, 0.0))


def silhouette(latents, labels) -> float:
  """Mean silhouette of latents [N, d] under integer labels [N].

  Raises:
    ValueError: with fewer than two classes or mismatched lengths.
  """
  x = _standardise(latents)
  y = np.asarray(labels)
  if y.shape != (len(x),):
    raise ValueError(f"labels must be [{len(x)}], got {y.shape}")
  classes = np.unique(y)
  if len(classes) < 2:
    raise ValueError("silhouette needs at least two classes")
  d = _distances(x)
  onehot = (y[:, None] == classes[None, :]).astype(np.float64)  # [N, C]
  sums = d @ onehot  # [N, C] summed distance to each class
  counts = onehot.sum(0)
  own = np.argmax(onehot, axis=1)
  n_own = counts[own]
  a = np.where(n_own > 1, sums[np.arange(len(x)), own] /
               np.maximum(n_own - 1, 1), 0.0)
  mean_to = sums / counts[None, :]
  mean_to[np.arange(len(x)), own] = np.inf
  b = mean_to.min(axis=1)
  s = np.where(n_own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12),
               0.0)
  return float(s.mean())


def knn_accuracy(latents, labels, *, k: int = 5) -> float:
  """Leave-one-out k-NN accuracy (majority of the k nearest others; a tie
  goes to the class of the nearest tied neighbour)."""
  x = _standardise(latents)
  y = np.asarray(labels)
  if y.shape != (len(x),):
    raise ValueError(f"labels must be [{len(x)}], got {y.shape}")
  if not 1 <= k < len(x):
    raise ValueError(f"k={k}: expected 1 <= k < {len(x)}")
  d = _distances(x)
  np.fill_diagonal(d, np.inf)
  nearest = np.argsort(d, axis=1, kind="stable")[:, :k]  # [N, k]
  votes = y[nearest]
  correct = 0
  for i in range(len(x)):
    values, counts = np.unique(votes[i], return_counts=True)
    tied = set(values[counts == counts.max()])
    pred = next(v for v in votes[i] if v in tied)
    correct += int(pred == y[i])
  return correct / len(x)
