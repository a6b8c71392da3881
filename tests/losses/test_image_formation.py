"""Tests for disent_jax.losses.image_formation (numpy references)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.losses import image_formation as imf

from testutil.gradcheck import check_gradient


def _images(seed, shape=(2, 6, 5, 3)):
  return np.random.default_rng(seed).random(shape).astype(np.float32)


def _mask(seed, shape=(2, 6, 5)):
  return (np.random.default_rng(seed).random(shape) > 0.4).astype(np.float32)


def test_sh_coefficient_loss_against_numpy():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(4, 27)).astype(np.float32)
  b = rng.normal(size=(4, 27)).astype(np.float32)
  np.testing.assert_allclose(jax.jit(imf.sh_coefficient_loss)(a, b),
                             np.mean((a - b) ** 2), rtol=1e-6)
  np.testing.assert_allclose(imf.sh_coefficient_loss(a, b, norm="abs"),
                             np.mean(np.abs(a - b)), rtol=1e-6)
  np.testing.assert_allclose(
      imf.sh_coefficient_loss(a.reshape(4, 9, 3), b.reshape(4, 9, 3),
                              reduction="sum"),
      np.sum((a - b) ** 2), rtol=1e-6)
  with pytest.raises(ValueError, match="27"):
    imf.sh_coefficient_loss(jnp.zeros((2, 9)), jnp.zeros((2, 9)))
  check_gradient(lambda x: imf.sh_coefficient_loss(x, b), a)


def test_mean_colour_and_skin_colour_loss_against_numpy():
  x, ref, m = _images(1), _images(2), _mask(3)
  c = np.stack([(x[b] * m[b, ..., None]).sum((0, 1)) / m[b].sum()
                for b in range(2)])
  np.testing.assert_allclose(imf.mean_masked_colour(x, m), c, rtol=1e-5)
  cr = np.stack([(ref[b] * m[b, ..., None]).sum((0, 1)) / m[b].sum()
                 for b in range(2)])
  want = np.sqrt(((c - cr) ** 2).sum(-1) + 1e-8).mean()
  np.testing.assert_allclose(jax.jit(imf.skin_colour_loss)(x, ref, m), want,
                             rtol=1e-5)
  np.testing.assert_allclose(imf.skin_colour_loss(x, ref, m, norm="l1"),
                             np.abs(c - cr).sum(-1).mean(), rtol=1e-5)
  # By hand: a face of constant colour (0.5, 0.2, 0.1) against (0.2, 0.6,
  # 0.1): distance sqrt(0.09 + 0.16) = 0.5, whatever lies outside the mask.
  face = np.broadcast_to([0.5, 0.2, 0.1], (1, 4, 4, 3)).copy()
  other = np.broadcast_to([0.2, 0.6, 0.1], (1, 4, 4, 3)).copy()
  mask = np.zeros((1, 4, 4), np.float32)
  mask[0, 1:3, 1:3] = 1
  face[0, 0, 0] = other[0, 3, 3] = 9.0  # Outside the mask: ignored.
  np.testing.assert_allclose(
      imf.skin_colour_loss(face, other, mask, epsilon=0.0), 0.5, rtol=1e-5)
  # An empty mask gives colour 0, not NaN.
  np.testing.assert_array_equal(
      imf.mean_masked_colour(x, np.zeros_like(m)), 0.0)
  check_gradient(lambda y: imf.skin_colour_loss(y, ref, m), x)


def test_photometric_loss_against_numpy_and_empty_mask():
  p, t, m = _images(4), _images(5), _mask(6)
  dist = np.linalg.norm(p - t, axis=-1)
  np.testing.assert_allclose(jax.jit(imf.photometric_loss)(p, t, m),
                             (dist * m).sum() / m.sum(), rtol=1e-5)
  np.testing.assert_allclose(
      imf.photometric_loss(p, t, m, norm="squared", per_image=True),
      ((dist ** 2) * m).sum((1, 2)) / m.sum((1, 2)), rtol=1e-5)
  np.testing.assert_allclose(imf.photometric_loss(p, t, m, norm="l1"),
                             (np.abs(p - t).sum(-1) * m).sum() / m.sum(),
                             rtol=1e-5)
  zero = np.zeros_like(m)
  assert float(imf.photometric_loss(p, t, zero)) == 0.0
  g = jax.grad(lambda x: imf.photometric_loss(x, t, zero))(jnp.asarray(p))
  np.testing.assert_array_equal(g, 0.0)
  # A perfect render: value and gradient 0.
  g = jax.grad(lambda x: imf.photometric_loss(x, t, m))(jnp.asarray(t))
  assert np.isfinite(g).all() and float(jnp.abs(g).max()) == 0.0
  check_gradient(lambda x: imf.photometric_loss(x, t, m), p)
  with pytest.raises(ValueError, match="mask"):
    imf.photometric_loss(p, t, m[:, :3])


def test_coefficient_prior():
  rng = np.random.default_rng(7)
  alpha = rng.normal(size=(3, 10)).astype(np.float32)
  sigma = rng.random(10).astype(np.float32) + 0.5
  np.testing.assert_allclose(imf.coefficient_prior(alpha, sigma),
                             ((alpha / sigma) ** 2).sum(-1).mean(),
                             rtol=1e-5)
  np.testing.assert_allclose(imf.coefficient_prior(alpha, reduction="none"),
                             (alpha ** 2).sum(-1), rtol=1e-5)
  with pytest.raises(ValueError, match="stddev"):
    imf.coefficient_prior(alpha, sigma[:5])
