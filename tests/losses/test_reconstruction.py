"""Tests for disent_jax.losses.reconstruction (numpy references)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.losses import reconstruction as rec

from testutil.gradcheck import check_gradient


def _rand(shape, seed):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_elementwise_errors_against_numpy_and_by_hand():
  p, t = _rand((3, 5, 3), 0), _rand((3, 5, 3), 1)
  np.testing.assert_allclose(jax.jit(rec.mse)(p, t), np.mean((p - t) ** 2),
                             rtol=1e-6)
  np.testing.assert_allclose(rec.l1(p, t, reduction="sum"),
                             np.abs(p - t).sum(), rtol=1e-6)
  np.testing.assert_allclose(rec.mse(p, t, reduction="none"), (p - t) ** 2,
                             rtol=1e-6)
  np.testing.assert_allclose(jax.jit(rec.vertex_l2)(p, t),
                             np.linalg.norm(p - t, axis=-1).mean(), rtol=1e-6)
  # By hand: errors (3, 4) and (0, 0) -> lengths 5 and 0.
  a = jnp.array([[3.0, 4.0], [1.0, 1.0]])
  b = jnp.array([[0.0, 0.0], [1.0, 1.0]])
  assert float(rec.vertex_l2(a, b)) == 2.5
  assert float(rec.mse(a, b)) == 25.0 / 4
  assert float(rec.l1(a, b)) == 7.0 / 4


def test_elementwise_gradients_and_zero_error():
  p, t = _rand((2, 4, 3), 2), _rand((2, 4, 3), 3)
  check_gradient(rec.mse, p, t)
  check_gradient(rec.l1, p, t)
  check_gradient(rec.vertex_l2, p, t)
  # A perfect prediction: value 0, gradient 0 (not NaN).
  g = jax.grad(rec.vertex_l2)(jnp.asarray(t), jnp.asarray(t))
  np.testing.assert_array_equal(g, 0.0)


def test_shape_mismatch_and_bad_reduction_raise():
  with pytest.raises(ValueError, match="shapes differ"):
    rec.mse(jnp.zeros((2, 3)), jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match="reduction"):
    rec.l1(jnp.zeros(2), jnp.zeros(2), reduction="avg")


def test_masked_mean_against_numpy_and_empty_mask():
  v = _rand((2, 4, 5, 3), 4)
  m = (np.random.default_rng(5).random((2, 4, 5, 1)) > 0.5).astype(
      np.float32)
  want = (v * m).sum() / np.broadcast_to(m, v.shape).sum()
  np.testing.assert_allclose(jax.jit(rec.masked_mean)(v, m), want,
                             rtol=1e-6)
  per_image = rec.masked_mean(v, m, axis=(1, 2, 3))
  for b in range(2):
    sel = np.broadcast_to(m[b], v[b].shape) > 0
    np.testing.assert_allclose(per_image[b], v[b][sel].mean(), rtol=1e-5)
  zero = jnp.zeros((2, 4, 5, 1))
  assert float(rec.masked_mean(v, zero)) == 0.0
  g = jax.grad(lambda x: rec.masked_mean(x, zero))(jnp.asarray(v))
  np.testing.assert_array_equal(g, 0.0)


def _gdl_numpy(p, t, alpha, mask=None):
  dxp, dxt = np.abs(np.diff(p, axis=-2)), np.abs(np.diff(t, axis=-2))
  dyp, dyt = np.abs(np.diff(p, axis=-3)), np.abs(np.diff(t, axis=-3))
  tx, ty = np.abs(dxt - dxp) ** alpha, np.abs(dyt - dyp) ** alpha
  if mask is None:
    return tx.sum() + ty.sum(), tx.size + ty.size
  wx = mask[..., :, 1:] * mask[..., :, :-1]
  wy = mask[..., 1:, :] * mask[..., :-1, :]
  total = (tx * wx[..., None]).sum() + (ty * wy[..., None]).sum()
  return total, p.shape[-1] * (wx.sum() + wy.sum())


def test_gradient_difference_against_numpy_and_by_hand():
  p, t = _rand((2, 6, 7, 3), 6), _rand((2, 6, 7, 3), 7)
  total, count = _gdl_numpy(p, t, 1.0)
  np.testing.assert_allclose(rec.gradient_difference(p, t, reduction="sum"),
                             total, rtol=1e-5)
  np.testing.assert_allclose(jax.jit(rec.gradient_difference)(p, t),
                             total / count, rtol=1e-5)
  total2, _ = _gdl_numpy(p, t, 2.0)
  np.testing.assert_allclose(
      rec.gradient_difference(p, t, alpha=2.0, reduction="sum"), total2,
      rtol=1e-5)
  mask = (np.random.default_rng(8).random((2, 6, 7)) > 0.3).astype(
      np.float32)
  total_m, count_m = _gdl_numpy(p, t, 1.0, mask)
  np.testing.assert_allclose(rec.gradient_difference(p, t, mask=mask),
                             total_m / count_m, rtol=1e-5)
  # By hand: a 1 x 3 grey ramp 0, 1, 3 against a flat image: the horizontal
  # gradients 1 and 2 are lost, |1 - 0| + |2 - 0| = 3.
  ramp = jnp.array([0.0, 1.0, 3.0]).reshape(1, 3, 1)
  assert float(rec.gradient_difference(ramp, jnp.zeros_like(ramp),
                                       reduction="sum")) == 3.0
  # Invariant to a constant brightness offset.
  np.testing.assert_allclose(rec.gradient_difference(p + 0.7, p), 0.0,
                             atol=1e-6)
  check_gradient(lambda x: rec.gradient_difference(x, t, mask=mask), p)
  empty = np.zeros((2, 6, 7), np.float32)
  assert float(rec.gradient_difference(p, t, mask=empty)) == 0.0


def test_gradient_difference_rejects_bad_mask():
  with pytest.raises(ValueError, match="mask"):
    rec.gradient_difference(jnp.zeros((4, 4, 3)), jnp.zeros((4, 4, 3)),
                            mask=jnp.zeros((4, 3)))


def test_landmark_pairs_cover_the_ibug_contours():
  pairs = rec.IBUG68_CONTOUR_PAIRS
  assert pairs.min() == 0 and pairs.max() == 67
  # 16 jaw + 4 + 4 brows + 3 bridge + 4 base + 6 + 6 eyes + 12 + 8 lips.
  assert len(pairs) == 63
  assert {(36, 41), (41, 36)} & set(map(tuple, pairs.tolist()))
  assert len(rec.IBUG68_OPENING_PAIRS) == 10


def test_landmark_losses_against_numpy():
  p, u = _rand((3, 68, 2), 9), _rand((3, 68, 2), 10)
  np.testing.assert_allclose(jax.jit(rec.landmark_loss)(p, u),
                             np.linalg.norm(p - u, axis=-1).mean(),
                             rtol=1e-6)
  np.testing.assert_allclose(rec.landmark_loss(p, u, kind="squared"),
                             np.mean((p - u) ** 2), rtol=1e-6)
  pairs = rec.IBUG68_CONTOUR_PAIRS
  dp = np.linalg.norm(p[:, pairs[:, 0]] - p[:, pairs[:, 1]], axis=-1)
  du = np.linalg.norm(u[:, pairs[:, 0]] - u[:, pairs[:, 1]], axis=-1)
  want_pair = np.abs(dp - du).mean()
  np.testing.assert_allclose(rec.pairwise_distance_loss(p, u, pairs),
                             want_pair, rtol=1e-5)
  np.testing.assert_allclose(
      rec.landmark_loss(p, u, pairs=pairs, pair_weight=0.5),
      np.linalg.norm(p - u, axis=-1).mean() + 0.5 * want_pair, rtol=1e-5)
  w = np.random.default_rng(11).random(68).astype(np.float32)
  per = np.linalg.norm(p - u, axis=-1)
  np.testing.assert_allclose(rec.landmark_loss(p, u, weights=w),
                             (per * w).sum() / (3 * w.sum()), rtol=1e-5)
  check_gradient(lambda x: rec.landmark_loss(x, u, pairs=pairs), p)


def test_pairwise_distance_is_rigid_invariant_and_by_hand():
  u = _rand((10, 3), 12)
  rot, _ = np.linalg.qr(_rand((3, 3), 13))
  moved = u @ rot.T + np.array([1.0, -2.0, 0.5], np.float32)
  pairs = np.array([[0, 1], [2, 5], [9, 3]])
  np.testing.assert_allclose(rec.pairwise_distance_loss(moved, u, pairs),
                             0.0, atol=1e-5)
  # By hand: the mouth opens 1 -> 3 (error 2) while the other pair holds.
  closed = jnp.array([[0.0, 0.0], [0.0, 1.0], [5.0, 0.0]])
  opened = jnp.array([[0.0, 0.0], [0.0, 3.0], [5.0, 0.0]])
  got = rec.pairwise_distance_loss(opened, closed, np.array([[0, 1], [0, 2]]),
                                   reduction="none")
  np.testing.assert_allclose(got, [2.0, 0.0])
  with pytest.raises(ValueError, match="pair indices"):
    rec.pairwise_distance_loss(opened, closed, np.array([[0, 3]]))
