"""Tests for disent_jax.viz.scatter (PCA / t-SNE scatter of latents)."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from disent_jax.viz import scatter


def _clusters(seed=0, n=30, k=3, d=6):
  rng = np.random.default_rng(seed)
  centres = rng.normal(scale=8.0, size=(k, d))
  labels = np.repeat(np.arange(k), n)
  return centres[labels] + rng.normal(size=(k * n, d)), labels


def test_pca_matches_numpy_eig():
  rng = np.random.default_rng(1)
  z = rng.normal(size=(100, 4)) * np.array([5.0, 2.0, 1.0, 0.5])
  xy = scatter.pca_2d(z)
  zc = z - z.mean(0)
  w, v = np.linalg.eigh(np.cov(zc, rowvar=False))
  ref = zc @ v[:, ::-1][:, :2]
  np.testing.assert_allclose(np.abs(xy), np.abs(ref), atol=1e-8)
  assert scatter.pca_2d(rng.normal(size=(10, 1))).shape == (10, 2)


def _knn_purity(xy, labels, k=5):
  d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
  np.fill_diagonal(d, np.inf)
  nn = np.argsort(d, axis=1)[:, :k]
  return (labels[nn] == labels[:, None]).mean()


def test_tsne_keeps_clusters_apart():
  z, labels = _clusters()
  xy = scatter.tsne_2d(z, perplexity=10, num_steps=300)
  assert xy.shape == (90, 2) and np.isfinite(xy).all()
  assert _knn_purity(xy, labels) > 0.95
  with pytest.raises(ValueError):
    scatter.tsne_2d(z[:3])


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_latent_scatter_png(tmp_path, method):
  z, labels = _clusters(n=15)
  path = scatter.latent_scatter(str(tmp_path / f"{method}.png"), z, labels,
                                method=method, label_name="subject")
  img = mpimg.imread(path)[..., :3]
  assert img.shape[0] >= 300 and img.shape[1] >= 400
  assert img.std() > 0.05
  # Coloured points: some strongly saturated pixels.
  assert ((img.max(-1) - img.min(-1)) > 0.3).mean() > 0.002


def test_latent_scatter_continuous_labels(tmp_path):
  z, _ = _clusters(n=15)
  path = scatter.latent_scatter(str(tmp_path / "c.png"), z, z[:, 0],
                                label_name="yaw")
  assert mpimg.imread(path).std() > 0.05
  with pytest.raises(ValueError):
    scatter.latent_scatter(str(tmp_path / "x.png"), z, z[:3, 0])
