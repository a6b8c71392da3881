"""Tests for disent_jax.metrics.normals."""

import jax
import numpy as np
import pytest

from disent_jax.metrics import normals


def _np_angle(a, b):
  a = a / np.linalg.norm(a, axis=-1, keepdims=True)
  b = b / np.linalg.norm(b, axis=-1, keepdims=True)
  return np.rad2deg(np.arccos(np.clip((a * b).sum(-1), -1, 1)))


def test_angular_error_matches_numpy_and_hand_values():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(100, 3))
  b = rng.normal(size=(100, 3))
  got = jax.jit(normals.angular_error)(a.astype(np.float32),
                                       b.astype(np.float32))
  np.testing.assert_allclose(got, _np_angle(a, b), atol=1e-3)
  x, y = np.array([1.0, 0, 0]), np.array([0, 2.0, 0])
  assert float(normals.angular_error(x, y)) == pytest.approx(90.0)
  assert float(normals.angular_error(x, -3 * x)) == pytest.approx(180.0)
  assert float(normals.angular_error(x, x)) == pytest.approx(0.0, abs=1e-6)
  diag = np.array([1.0, 1.0, 0.0])
  assert float(normals.angular_error(x, diag)) == pytest.approx(45.0, 1e-5)
  zero = normals.angular_error(np.zeros(3), np.zeros(3))
  assert np.isfinite(float(zero))
  for p in ([1.0, 1, 0], [0, 3.0, 0], [0, 0, 0.0]):  # generic, parallel, 0
    g = jax.grad(lambda q: normals.angular_error(q, y))(np.array(p))
    assert np.isfinite(np.asarray(g)).all()


def test_normal_error_stats_matches_reference():
  rng = np.random.default_rng(1)
  target = rng.normal(size=(6, 8, 8, 3))
  pred = target + rng.normal(scale=np.linspace(0.2, 1.5, 6)[:, None, None,
                                                              None],
                             size=target.shape)
  mask = rng.random((6, 8, 8)) > 0.3
  ang = _np_angle(pred, target)
  per_image = (ang * mask).sum((1, 2)) / mask.sum((1, 2))
  got = normals.normal_error_stats(pred.astype(np.float32),
                                   target.astype(np.float32), mask)
  assert got["mean"] == pytest.approx(per_image.mean(), rel=1e-4)
  assert got["std"] == pytest.approx(per_image.std(), rel=1e-3)
  for t in (35, 40):
    assert got[f"under_{t}"] == pytest.approx(np.mean(per_image < t))
    assert got[f"pixels_under_{t}"] == pytest.approx(
        (ang < t)[mask].mean(), abs=1e-6)


def test_hand_computed_map():
  # Two images: one exact, one rotated by 30 degrees everywhere.
  t = np.zeros((2, 2, 2, 3))
  t[..., 2] = 1.0
  p = t.copy()
  c, s = np.cos(np.deg2rad(30)), np.sin(np.deg2rad(30))
  p[1, ..., 1], p[1, ..., 2] = s, c
  got = normals.normal_error_stats(p, t, thresholds=(20.0,))
  assert got["mean"] == pytest.approx(15.0, rel=1e-4)
  assert got["std"] == pytest.approx(15.0, rel=1e-4)
  assert got["under_20"] == 0.5
  with pytest.raises(ValueError):
    normals.angular_error(np.zeros((4, 2)), np.zeros((4, 2)))
