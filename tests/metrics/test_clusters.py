"""disent_jax.metrics.clusters against loops of the definitions."""

import numpy as np
import pytest

from disent_jax.metrics import clusters


def _silhouette_loop(x, y):
  x = (x - x.mean(0)) / x.std(0)
  out = []
  for i in range(len(x)):
    d = np.linalg.norm(x - x[i], axis=1)
    own = (y == y[i])
    if own.sum() == 1:
      out.append(0.0)
      continue
    a = d[own].sum() / (own.sum() - 1)
    b = min(d[y == c].mean() for c in np.unique(y) if c != y[i])
    out.append((b - a) / max(a, b))
  return float(np.mean(out))


def test_silhouette_matches_the_definition():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(40, 3))
  y = rng.integers(0, 4, size=40)
  y[0] = 7  # a class of one sample scores 0
  assert clusters.silhouette(x, y) == pytest.approx(_silhouette_loop(x, y),
                                                    abs=1e-9)


def test_separated_clusters_score_near_one_and_noise_near_chance():
  rng = np.random.default_rng(1)
  y = np.repeat(np.arange(3), 30)
  x = rng.normal(size=(90, 3)) * 0.05 + np.eye(3)[y] * 10.0
  assert clusters.silhouette(x, y) > 0.95
  assert clusters.knn_accuracy(x, y, k=5) == 1.0
  noise = rng.normal(size=(600, 4))
  labels = rng.integers(0, 3, size=600)
  assert abs(clusters.knn_accuracy(noise, labels, k=5) - 1 / 3) < 0.08
  assert abs(clusters.silhouette(noise, labels)) < 0.05


def test_knn_leaves_the_sample_out_and_checks_input():
  # Two points per class far apart: the only neighbour of each is its pair.
  x = np.array([[0.0], [0.1], [5.0], [5.1]])
  y = np.array([0, 0, 1, 1])
  assert clusters.knn_accuracy(x, y, k=1) == 1.0
  with pytest.raises(ValueError, match="k="):
    clusters.knn_accuracy(x, y, k=4)
  with pytest.raises(ValueError, match="two classes"):
    clusters.silhouette(x, np.zeros(4))
  with pytest.raises(ValueError, match="labels"):
    clusters.silhouette(x, np.zeros(3))
