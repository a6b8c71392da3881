"""Tests for disent_jax.metrics.alignment (Procrustes, scaled ICP, MICC)."""

import jax
import numpy as np
import pytest
from scipy import spatial
from scipy.spatial import transform as sptf

from disent_jax.metrics import alignment


def _surface(seed=0, n=40, noise=0.1):
  """A bumpy half-ellipsoid 'face' in mm with a Delaunay triangulation.

  Returns (vertices [V, 3], faces [F, 3], nose tip [3]).
  """
  rng = np.random.default_rng(seed)
  u, v = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))
  inside = u ** 2 + v ** 2 <= 1.0
  u, v = u[inside], v[inside]
  r2 = np.clip(1 - u ** 2 - v ** 2, 0, None)
  z = 60.0 * np.sqrt(r2)
  # Nose, eye sockets, chin: bumps that break the ellipsoid's symmetries.
  z += 25.0 * np.exp(-((u / 0.12) ** 2 + ((v + 0.05) / 0.25) ** 2))
  for cx in (-0.35, 0.35):
    z -= 8.0 * np.exp(-(((u - cx) / 0.15) ** 2 + ((v - 0.3) / 0.1) ** 2))
  z += 6.0 * np.exp(-((u / 0.3) ** 2 + ((v + 0.75) / 0.12) ** 2))
  z += 3.0 * u * v  # asymmetric tilt
  verts = np.stack([70.0 * u, 95.0 * v, z], -1)
  verts += rng.normal(scale=noise, size=verts.shape)
  faces = spatial.Delaunay(np.stack([u, v], -1)).simplices.astype(np.int32)
  tip = verts[np.argmax(verts[:, 2])]
  return verts, faces, tip


def _np_umeyama(x, y, with_scale):
  mx, my = x.mean(0), y.mean(0)
  xc, yc = x - mx, y - my
  u, d, vt = np.linalg.svd(yc.T @ xc / len(x))
  s_mat = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
  r = u @ s_mat @ vt
  s = (d * np.diag(s_mat)).sum() / (xc ** 2).sum(-1).mean() if with_scale else 1
  return r, s, my - s * r @ mx


@pytest.mark.parametrize("with_scale", [False, True])
def test_procrustes_matches_numpy_umeyama(with_scale):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 30, 3))
  y = rng.normal(size=(3, 30, 3))
  got = jax.jit(alignment.procrustes, static_argnames="scale")(
      x.astype(np.float32), y.astype(np.float32), scale=with_scale)
  for b in range(3):
    r, s, t = _np_umeyama(x[b], y[b], with_scale)
    np.testing.assert_allclose(got.rotation[b], r, atol=2e-5)
    np.testing.assert_allclose(got.scale[b], s, rtol=2e-5)
    np.testing.assert_allclose(got.translation[b], t, atol=2e-5)
    assert np.linalg.det(np.asarray(got.rotation[b])) == pytest.approx(
        1.0, abs=1e-5)


def test_procrustes_recovers_exact_similarity_and_handles_reflection():
  rng = np.random.default_rng(1)
  x = rng.normal(scale=40.0, size=(100, 3))
  rot = sptf.Rotation.from_euler("xyz", [20, -35, 50], degrees=True)
  y = 1.3 * x @ rot.as_matrix().T + np.array([5.0, -2.0, 7.0])
  t = alignment.procrustes(x, y, scale=True)
  np.testing.assert_allclose(t.rotation, rot.as_matrix(), atol=1e-5)
  assert float(t.scale) == pytest.approx(1.3, rel=1e-5)
  np.testing.assert_allclose(t.translation, [5.0, -2.0, 7.0], atol=1e-3)
  # A mirrored target: the result must still be a proper rotation.
  t = alignment.procrustes(x, x * np.array([-1.0, 1.0, 1.0]))
  assert np.linalg.det(np.asarray(t.rotation)) == pytest.approx(1.0, 1e-5)
  # Degenerate (all points equal) source: finite output.
  t = alignment.procrustes(np.zeros((5, 3)), y[:5], scale=True)
  assert all(np.isfinite(np.asarray(a)).all() for a in t)


def test_weighted_procrustes_ignores_zero_weight_outliers():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(50, 3))
  y = x + 1.0
  y[:5] += 100.0
  w = np.ones(50)
  w[:5] = 0.0
  t = alignment.procrustes(x, y, weights=w)
  np.testing.assert_allclose(t.translation, [1.0, 1.0, 1.0], atol=1e-4)


@pytest.mark.parametrize("method", ["point_to_plane", "point_to_point"])
def test_scaled_icp_recovers_known_similarity_sub_millimetre(method):
  verts, _, _ = _surface(seed=0)
  rot = sptf.Rotation.from_euler("xyz", [8, -12, 6], degrees=True)
  s, t = 1.15, np.array([12.0, -7.0, 20.0])
  moved = s * verts @ rot.as_matrix().T + t
  result = alignment.scaled_icp(moved, verts, scale=True, method=method)
  err = np.linalg.norm(result.aligned - verts, axis=-1)
  assert err.mean() < 0.1 and err.max() < 1.0, (err.mean(), err.max())
  # The recovered transform is the inverse of the one applied.
  np.testing.assert_allclose(result.transform.scale * s, 1.0, atol=1e-3)
  np.testing.assert_allclose(result.transform.rotation @ rot.as_matrix(),
                             np.eye(3), atol=2e-3)


def test_scaled_icp_on_a_nose_tip_crop_of_a_noisy_scan():
  # The MICC set-up: the target is a 95 mm crop of a noisy scan (0.3 mm
  # noise); the source is the full clean surface under a similarity.
  clean, _, tip = _surface(seed=3, noise=0.0)
  scan = clean + np.random.default_rng(4).normal(scale=0.3, size=clean.shape)
  crop = scan[alignment.crop_around(scan, tip, radius=95.0)]
  rot = sptf.Rotation.from_euler("xyz", [-6, 12, 4], degrees=True)
  moved = 0.85 * clean @ rot.as_matrix().T + np.array([-9.0, 4.0, 15.0])
  result = alignment.scaled_icp(moved, crop, scale=True)
  err = np.linalg.norm(result.aligned - clean, axis=-1)
  assert err.mean() < 0.5 and np.percentile(err, 95) < 1.0, err.mean()


def test_rotvec_to_matrix_matches_scipy():
  for w in ([0.3, -0.2, 0.5], [1e-14, 0.0, 0.0], [0.0, 2.5, 0.0]):
    np.testing.assert_allclose(alignment._rotvec_to_matrix(np.array(w)),
                               sptf.Rotation.from_rotvec(w).as_matrix(),
                               atol=1e-12)


def test_estimate_normals_on_a_sphere():
  rng = np.random.default_rng(5)
  p = rng.normal(size=(2000, 3))
  p /= np.linalg.norm(p, axis=-1, keepdims=True)
  n = alignment.estimate_normals(p * 50.0)
  assert np.abs(np.sum(n * p, -1)).min() > 0.95


def test_point_to_plane_error_cases():
  verts, faces, tip = _surface(seed=1, noise=0.0)
  # Identical geometry, moved by a similarity: ~0 after ICP.
  rot = sptf.Rotation.from_euler("xyz", [5, 10, -4], degrees=True)
  moved = 0.9 * verts @ rot.as_matrix().T + 10.0
  res = alignment.point_to_plane_error(moved, faces, verts, nose_tip=tip)
  assert res["mean"] < 0.05
  # Without ICP a pure 2 mm shift along the normal of a plane gives exactly
  # 2 mm; a shift within the plane gives 0 (point-to-plane, not point-to-
  # point).
  g = np.stack(np.meshgrid(np.arange(20.0), np.arange(20.0)), -1)
  g = g.reshape(-1, 2)
  plane = np.concatenate([g, np.zeros((len(g), 1))], -1)
  tri = spatial.Delaunay(g).simplices
  res = alignment.point_to_plane_error(plane + [0, 0, 2.0], tri, plane,
                                       nose_tip=plane[0], radius=1e3,
                                       icp=False)
  assert res["mean"] == pytest.approx(2.0, abs=1e-9)
  res = alignment.point_to_plane_error(plane + [0.4, 0, 0], tri, plane,
                                       nose_tip=plane[0], radius=1e3,
                                       icp=False)
  assert res["mean"] == pytest.approx(0.0, abs=1e-9)
  # The crop keeps only points within the radius of the nose tip.
  mask = alignment.crop_around(plane, [0.0, 0.0, 0.0], radius=3.0)
  ref = (g ** 2).sum(-1) <= 9.0
  np.testing.assert_array_equal(mask, ref)


def test_vertex_normals_np_on_plane_and_degenerate():
  v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]], float)
  f = np.array([[0, 1, 2], [0, 0, 1]])
  n = alignment.vertex_normals_np(v, f)
  np.testing.assert_allclose(n[:3], [[0, 0, 1]] * 3)
  np.testing.assert_array_equal(n[3], 0.0)


def test_scaled_icp_on_a_synthface_scan():
  world_lib = pytest.importorskip("disent_jax.synthface.world")
  world = world_lib.World("1k")
  scan = np.asarray(world.neutral(world.identity(0, 3)), np.float64)
  faces = np.asarray(world.faces)
  tip = scan[np.asarray(world.landmarks)[30]]  # iBUG-68 nose tip
  noisy = scan + np.random.default_rng(6).normal(scale=0.2, size=scan.shape)
  rot = sptf.Rotation.from_euler("xyz", [7, -10, 5], degrees=True)
  moved = 1.2 * scan @ rot.as_matrix().T + np.array([15.0, -8.0, 30.0])
  res = alignment.point_to_plane_error(moved, faces, noisy, nose_tip=tip)
  err = np.linalg.norm(res["aligned"] - scan, axis=-1)
  assert err.mean() < 0.5 and np.percentile(err, 95) < 1.0, err.mean()
  # The remaining point-to-plane error is the scan noise (0.2 mm std, so a
  # mean absolute normal component of about 0.2 * sqrt(2 / pi) = 0.16).
  assert 0.08 < res["mean"] < 0.3, res["mean"]
