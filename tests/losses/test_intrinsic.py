"""Tests of the intrinsic-image constraints against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.losses import intrinsic


def _maps(seed=0, shape=(2, 5, 6, 3)):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_masked_smoothness_matches_numpy():
  x = _maps()
  m = (np.random.default_rng(1).uniform(size=x.shape[:3]) > 0.4).astype(
      np.float32)
  mx = x * m[..., None]
  want = 0.5 * (np.mean(np.diff(mx, axis=2) ** 2)
                + np.mean(np.diff(mx, axis=1) ** 2))
  np.testing.assert_allclose(intrinsic.masked_smoothness(x, m), want,
                             rtol=1e-5)
  np.testing.assert_allclose(intrinsic.masked_smoothness(x, m[..., None]),
                             want, rtol=1e-5)


def test_smoothness_and_tv_vanish_on_constant_maps():
  x = np.full((1, 4, 4, 3), 0.3, np.float32)
  assert float(intrinsic.masked_smoothness(x)) == 0.0
  assert float(intrinsic.total_variation_l1(x)) == 0.0


def test_total_variation_matches_numpy():
  x = _maps(2)
  want = 0.5 * (np.mean(np.abs(np.diff(x, axis=2)))
                + np.mean(np.abs(np.diff(x, axis=1))))
  np.testing.assert_allclose(intrinsic.total_variation_l1(x), want,
                             rtol=1e-5)


def test_unit_length_loss():
  n = _maps(3)
  unit = n / np.linalg.norm(n, axis=-1, keepdims=True)
  assert float(intrinsic.unit_length_loss(unit)) < 1e-10
  want = np.mean((np.sum(n ** 2, -1) - 1) ** 2)
  np.testing.assert_allclose(intrinsic.unit_length_loss(n), want, rtol=1e-5)
  m = np.zeros(n.shape[:3], np.float32)
  m[0, 1, 2] = 1.0
  np.testing.assert_allclose(intrinsic.unit_length_loss(n, m),
                             (np.sum(n[0, 1, 2] ** 2) - 1) ** 2, rtol=1e-5)


def test_batch_white_shading_is_a_batch_statistic():
  s = np.random.default_rng(4).uniform(size=(3, 4, 4, 3)).astype(np.float32)
  m = np.ones((3, 4, 4), np.float32)
  means = s.mean(axis=(0, 1, 2))
  want = 0.5 * np.sum((means - 0.75) ** 2)
  np.testing.assert_allclose(intrinsic.batch_white_shading(s, m), want,
                             rtol=1e-5)
  # Two images that average to the anchor score 0 though neither is grey.
  pair = np.stack([np.full((2, 2, 3), 0.5), np.full((2, 2, 3), 1.0)])
  assert float(intrinsic.batch_white_shading(
      pair.astype(np.float32), np.ones((2, 2, 2)))) < 1e-12


def test_gradients_are_finite_with_an_empty_mask():
  x = jnp.asarray(_maps(5))
  m = jnp.zeros(x.shape[:3])
  for fn in (intrinsic.unit_length_loss, intrinsic.batch_white_shading):
    g = jax.grad(lambda v, fn=fn: fn(v, m))(x)
    assert np.all(np.isfinite(g))


def test_bad_shapes_raise():
  with pytest.raises(ValueError, match="B, H, W, C"):
    intrinsic.masked_smoothness(np.zeros((4, 4, 3)))
  with pytest.raises(ValueError, match="mask"):
    intrinsic.total_variation_l1(np.zeros((1, 4, 4, 3)), np.zeros((1, 3, 4)))
