"""Tests for disent_jax.metrics.fid against scipy.linalg.sqrtm."""

import jax
import numpy as np
import pytest
from scipy import linalg

from disent_jax.metrics import fid


def _np_frechet(mu1, s1, mu2, s2):
  covmean = linalg.sqrtm(s1 @ s2).real
  return ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)


def test_frechet_distance_matches_scipy_sqrtm():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
  b = rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 0.5
  mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
  mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
  got_stats = fid.feature_statistics(a)
  np.testing.assert_allclose(got_stats[0], mu1, atol=1e-4)
  np.testing.assert_allclose(got_stats[1], s1, rtol=1e-4, atol=1e-4)
  got = jax.jit(fid.frechet_distance)(mu1, s1, mu2, s2)
  assert float(got) == pytest.approx(_np_frechet(mu1, s1, mu2, s2),
                                     rel=1e-3)


def test_frechet_distance_closed_forms():
  # Identical Gaussians: 0. Isotropic: |dmu|^2 + D (s1 - s2)^2.
  s = np.diag([1.0, 2.0, 3.0])
  assert float(fid.frechet_distance(np.zeros(3), s, np.zeros(3), s)) == (
      pytest.approx(0.0, abs=1e-5))
  d = fid.frechet_distance(np.zeros(3), 4.0 * np.eye(3), np.ones(3),
                           np.eye(3))
  assert float(d) == pytest.approx(3.0 + 3 * (2.0 - 1.0) ** 2, rel=1e-5)
  # Singular covariance stays finite and non-negative.
  d = fid.frechet_distance(np.zeros(3), np.zeros((3, 3)), np.zeros(3),
                           np.diag([1.0, 0.0, 0.0]))
  assert float(d) == pytest.approx(1.0, rel=1e-5)
  with pytest.raises(ValueError):
    fid.frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))


def test_feature_distance_names_features_and_orders_sets():
  rng = np.random.default_rng(1)
  base = rng.random((48, 32, 32, 3)).astype(np.float32)
  same = rng.random((48, 32, 32, 3)).astype(np.float32)
  shifted = np.clip(same * 0.5 + 0.4, 0, 1)
  for extractor in (fid.pixel_features(8), fid.random_conv_features(0)):
    near = fid.frechet_feature_distance(base, same, extractor=extractor,
                                        batch_size=16)
    far = fid.frechet_feature_distance(base, shifted, extractor=extractor,
                                       batch_size=16)
    assert near["features"] == extractor.name
    assert near["key"] == f"FD[{extractor.name}]"
    assert near["num_a"] == 48
    assert far["value"] > 3 * near["value"] > 0
  # Pixel features are exactly the block means.
  f = fid.pixel_features(8).fn(base[:2])
  ref = base[:2].reshape(2, 8, 4, 8, 4, 3).mean((2, 4)).reshape(2, -1)
  np.testing.assert_allclose(f, ref, rtol=1e-5)
  # Random conv features are deterministic for a seed.
  f1 = fid.random_conv_features(3).fn(base[:2])
  f2 = fid.random_conv_features(3).fn(base[:2])
  np.testing.assert_array_equal(f1, f2)
  assert f1.shape == (2, 256)
