"""Tests for disent_jax.metrics.mesh_errors against numpy references."""

import jax
import numpy as np
import pytest

from disent_jax.metrics import alignment
from disent_jax.metrics import mesh_errors


def _rot(angle_deg, axis):
  a = np.deg2rad(angle_deg)
  c, s = np.cos(a), np.sin(a)
  i, j = [(1, 2), (2, 0), (0, 1)][axis]
  r = np.eye(3)
  r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
  return r


def test_per_vertex_and_mesh_error_match_numpy():
  rng = np.random.default_rng(0)
  pred = rng.normal(size=(4, 50, 3)).astype(np.float32)
  target = rng.normal(size=(4, 50, 3)).astype(np.float32)
  ref = np.sqrt(((pred.astype(np.float64) - target) ** 2).sum(-1))
  got = jax.jit(mesh_errors.per_vertex_error)(pred, target)
  np.testing.assert_allclose(got, ref, rtol=1e-5)
  np.testing.assert_allclose(
      jax.jit(mesh_errors.mesh_error)(pred, target), ref.mean(-1), rtol=1e-5)
  mask = (rng.random(50) > 0.5).astype(np.float32)
  np.testing.assert_allclose(
      mesh_errors.mesh_error(pred, target, mask=mask),
      (ref * mask).sum(-1) / mask.sum(), rtol=1e-5)
  np.testing.assert_allclose(mesh_errors.error_map(pred, target),
                             ref.mean(0), rtol=1e-5)
  # Closed-form gradient (unit directions / V), and 0 (not NaN) where a
  # vertex is exact.
  g = jax.grad(lambda p: mesh_errors.mesh_error(p, target[0]))(pred[0])
  np.testing.assert_allclose(g, (pred[0] - target[0]) / ref[0][:, None] / 50,
                             rtol=1e-4)
  g = jax.grad(lambda p: mesh_errors.mesh_error(p, target[0]))(target[0])
  np.testing.assert_array_equal(g, 0.0)


def test_known_offset_before_and_after_alignment():
  rng = np.random.default_rng(1)
  target = rng.normal(scale=50.0, size=(200, 3))
  # A pure translation of (3, 4, 0) mm: every vertex is exactly 5 mm off.
  pred = target + np.array([3.0, 4.0, 0.0])
  assert float(mesh_errors.mesh_error(pred, target)) == pytest.approx(5.0,
                                                                       1e-5)
  aligned = alignment.align(pred, target)
  assert float(mesh_errors.mesh_error(aligned, target)) < 1e-3
  # A rigid rotation by 10 degrees about z, plus a 2 mm shift, then noise.
  rot = _rot(10.0, 2)
  moved = target @ rot.T + 2.0
  before = float(mesh_errors.mesh_error(moved, target))
  ref_before = np.linalg.norm(moved - target, axis=-1).mean()
  assert before == pytest.approx(ref_before, rel=1e-5)
  assert float(mesh_errors.mesh_error(alignment.align(moved, target),
                                      target)) < 1e-3


def test_summarize_matches_numpy():
  e = np.array([1.0, 2.0, 4.0, 10.0])
  s = mesh_errors.summarize(e, prefix="E_rec/")
  assert s == {"E_rec/mean": 4.25, "E_rec/std": pytest.approx(np.std(e)),
               "E_rec/median": 3.0}
  with pytest.raises(ValueError):
    mesh_errors.summarize([])


def _edis_reference(identity, subject_ids):
  out = {}
  for sid in np.unique(subject_ids):
    a = identity[subject_ids == sid].astype(np.float64)
    d = np.sqrt(((a - a.mean(0)) ** 2).sum(-1))
    out[sid] = d.std()
  return out


def test_identity_spread_matches_reference():
  rng = np.random.default_rng(2)
  identity = rng.normal(size=(12, 30, 3)).astype(np.float32)
  ids = np.array([5, 5, 5, 9, 9, 2, 2, 2, 2, 9, 5, 2])
  ref = _edis_reference(identity, ids)
  got = mesh_errors.disentanglement_error(identity, ids)
  vals = np.array([ref[k] for k in sorted(ref)])
  assert got["E_dis/mean"] == pytest.approx(vals.mean(), rel=1e-5)
  assert got["E_dis/median"] == pytest.approx(np.median(vals), rel=1e-5)
  _, labels = np.unique(ids, return_inverse=True)
  per = jax.jit(mesh_errors.identity_spread, static_argnames="num_subjects")(
      identity, labels, num_subjects=4)
  np.testing.assert_allclose(per[:3], vals, rtol=1e-4)
  assert float(per[3]) == 0.0  # a subject without meshes


def test_identical_identity_predictions_give_zero_edis():
  rng = np.random.default_rng(3)
  shapes = rng.normal(scale=30.0, size=(3, 40, 3))
  ids = np.repeat(np.arange(3), 4)
  identity = shapes[ids]
  got = mesh_errors.disentanglement_error(identity, ids)
  assert got["E_dis/mean"] == pytest.approx(0.0, abs=1e-4)
  # Hand-computed case: one subject, two predictions that differ by +/- 1 mm
  # along x on half of the vertices: distances are {1, 1, 0, 0} twice, std
  # 0.5.
  base = np.zeros((4, 3))
  a, b = base.copy(), base.copy()
  a[:2, 0] += 1.0
  b[:2, 0] -= 1.0
  got = mesh_errors.disentanglement_error(np.stack([a, b]), [0, 0])
  assert got["E_dis/mean"] == pytest.approx(0.5, rel=1e-6)


def test_shape_errors():
  with pytest.raises(ValueError):
    mesh_errors.per_vertex_error(np.zeros((4, 2)), np.zeros((4, 2)))
  with pytest.raises(ValueError):
    mesh_errors.per_vertex_error(np.zeros((4, 3)), np.zeros((5, 3)))
  with pytest.raises(ValueError):
    mesh_errors.identity_spread(np.zeros((4, 5, 3)), np.zeros(3, int),
                                num_subjects=1)


def test_mesh_metrics_table_row():
  rng = np.random.default_rng(4)
  neutral = rng.normal(scale=40.0, size=(3, 25, 3))
  ids = np.array([0, 0, 1, 1, 2, 2])
  target = neutral[ids] + rng.normal(scale=2.0, size=(6, 25, 3))
  recon = target + np.array([1.0, 0.0, 0.0])  # 1 mm off everywhere
  identity = neutral[ids] + np.array([0.0, 2.0, 0.0])  # 2 mm off
  got = mesh_errors.mesh_metrics(recon, target, identity=identity,
                                 neutral=neutral[ids], subject_ids=ids)
  assert got["E_rec/mean"] == pytest.approx(1.0, rel=1e-5)
  assert got["E_rec/std"] == pytest.approx(0.0, abs=1e-5)
  assert got["AVD_neu/median"] == pytest.approx(2.0, rel=1e-5)
  assert got["E_dis/mean"] == pytest.approx(0.0, abs=1e-4)
  # Rigid alignment removes the constant offsets.
  got = mesh_errors.mesh_metrics(recon, target, identity=identity,
                                 neutral=neutral[ids], align="rigid")
  assert got["E_rec/mean"] < 1e-3 and got["AVD_neu/mean"] < 1e-3
  assert "E_dis/mean" not in got
  with pytest.raises(ValueError):
    mesh_errors.mesh_metrics(recon, target, align="affine")
