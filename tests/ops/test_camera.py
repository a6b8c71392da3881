"""Tests for disent_jax.ops.camera against numpy/scipy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
import trimesh

from disent_jax.ops import camera

_RTOL = 1e-5
_ATOL = 1e-5


class _Jitted:
  """Attribute access returns the jitted function of a module."""

  def __init__(self, module):
    self._module = module

  def __getattr__(self, name):
    return jax.jit(getattr(self._module, name))


cam = _Jitted(camera)


def _jgrad(fn):
  return jax.jit(jax.grad(fn))


def _jjacfwd(fn):
  return jax.jit(jax.jacfwd(fn))


def _rng(seed=0):
  return np.random.default_rng(seed)


def _random_angles(rng, n):
  return np.stack([rng.uniform(-np.pi, np.pi, n),
                   rng.uniform(-np.pi / 2 + 0.05, np.pi / 2 - 0.05, n),
                   rng.uniform(-np.pi, np.pi, n)], -1).astype(np.float32)


def _assert_rotation(r, atol=1e-5):
  r = np.asarray(r, np.float64)
  eye = np.broadcast_to(np.eye(3), r.shape)
  np.testing.assert_allclose(np.swapaxes(r, -1, -2) @ r, eye, atol=atol)
  np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=atol)


def _numeric_jacobian(fn, x, eps=1e-6):
  """Central differences of a float64 numpy function: [out..., in]."""
  x = np.asarray(x, np.float64)
  cols = []
  for i in range(x.size):
    d = np.zeros_like(x).ravel()
    d[i] = eps
    d = d.reshape(x.shape)
    cols.append((fn(x + d) - fn(x - d)) / (2 * eps))
  return np.stack(cols, -1)


# ----------------------------------------------------------------------------
# Euler angles.


def test_euler_matches_scipy_extrinsic_xyz():
  angles = _random_angles(_rng(), 64)
  ours = cam.euler_to_rotation(angles)
  ref = Rotation.from_euler("xyz", angles.astype(np.float64)).as_matrix()
  np.testing.assert_allclose(ours, ref, atol=_ATOL)
  # R = Rz Ry Rx explicitly.
  a = angles[3].astype(np.float64)
  rx = Rotation.from_euler("x", a[0]).as_matrix()
  ry = Rotation.from_euler("y", a[1]).as_matrix()
  rz = Rotation.from_euler("z", a[2]).as_matrix()
  np.testing.assert_allclose(ours[3], rz @ ry @ rx, atol=_ATOL)
  _assert_rotation(ours)


def test_euler_round_trip():
  angles = _random_angles(_rng(1), 128)
  rot = cam.euler_to_rotation(angles)
  back = cam.rotation_to_euler(rot)
  np.testing.assert_allclose(back, angles, atol=1e-4)
  ref = Rotation.from_matrix(np.asarray(rot, np.float64)).as_euler("xyz")
  np.testing.assert_allclose(back, ref, atol=1e-4)


@pytest.mark.parametrize("yaw", [np.pi / 2, -np.pi / 2])
def test_gimbal_lock_round_trip_and_finite_gradients(yaw):
  angles = jnp.array([[0.3, yaw, 1.2], [-2.0, yaw, 0.0], [0.0, yaw, 0.0]],
                     jnp.float32)
  rot = cam.euler_to_rotation(angles)
  back = cam.rotation_to_euler(rot)
  assert np.all(np.isfinite(back))
  np.testing.assert_allclose(cam.euler_to_rotation(back), rot, atol=1e-5)
  np.testing.assert_allclose(np.abs(back[:, 1]), np.pi / 2, atol=1e-3)

  def loss(a):
    return jnp.sum(cam.rotation_to_euler(cam.euler_to_rotation(a)) ** 2)

  grads = _jgrad(loss)(angles)
  assert np.all(np.isfinite(grads))


@pytest.mark.parametrize("pitch", [np.pi / 2, -np.pi / 2])
def test_pitch_ninety_degrees(pitch):
  angles = jnp.array([pitch, 0.4, -0.7], jnp.float32)
  rot = cam.euler_to_rotation(angles)
  _assert_rotation(rot)
  np.testing.assert_allclose(cam.rotation_to_euler(rot), angles, atol=1e-5)
  jac = _jjacfwd(lambda a: cam.rotation_to_euler(
      cam.euler_to_rotation(a)))(angles)
  np.testing.assert_allclose(jac, np.eye(3), atol=1e-3)


def test_rotation_to_euler_identity_gradient_finite():
  grad = _jgrad(lambda r: jnp.sum(cam.rotation_to_euler(r)))(
      jnp.eye(3))
  assert np.all(np.isfinite(grad))
  grad0 = _jgrad(lambda r: jnp.sum(cam.rotation_to_euler(r)))(
      jnp.zeros((3, 3)))
  assert np.all(np.isfinite(grad0))


def test_euler_gradient_matches_finite_differences():
  angles = np.array([0.3, -0.5, 1.1])
  ref = _numeric_jacobian(
      lambda a: Rotation.from_euler("xyz", a).as_matrix(), angles)
  ours = _jjacfwd(cam.euler_to_rotation)(jnp.asarray(angles,
                                                           jnp.float32))
  np.testing.assert_allclose(ours, ref, atol=1e-5)


# ----------------------------------------------------------------------------
# 6D and 9D representations.


def _gram_schmidt_np(x):
  a1, a2 = x[..., :3], x[..., 3:]
  b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
  u2 = a2 - np.sum(b1 * a2, -1, keepdims=True) * b1
  b2 = u2 / np.linalg.norm(u2, axis=-1, keepdims=True)
  return np.stack([b1, b2, np.cross(b1, b2)], -1)


def test_6d_matches_gram_schmidt_and_round_trips():
  x = _rng(2).normal(size=(32, 6))
  ours = cam.rotation_from_6d(x.astype(np.float32))
  np.testing.assert_allclose(ours, _gram_schmidt_np(x), atol=1e-5)
  _assert_rotation(ours)
  rot = Rotation.random(16, random_state=3).as_matrix().astype(np.float32)
  np.testing.assert_allclose(
      cam.rotation_from_6d(cam.rotation_to_6d(rot)), rot, atol=1e-5)
  jac = _jjacfwd(cam.rotation_from_6d)(jnp.asarray(x[0], jnp.float32))
  np.testing.assert_allclose(jac, _numeric_jacobian(_gram_schmidt_np, x[0]),
                             atol=1e-4)


def test_6d_degenerate_inputs_give_rotations_without_nan():
  x = jnp.array([[0, 0, 0, 0, 0, 0], [1, 2, 3, 2, 4, 6], [0, 0, 0, 1, 0, 0],
                 [0, 1, 0, 0, -3, 0], [1, 0, 0, 0, 0, 0]], jnp.float32)
  rot = cam.rotation_from_6d(x)
  _assert_rotation(rot)
  grad = _jgrad(lambda v: jnp.sum(cam.rotation_from_6d(v) ** 3))(x)
  assert np.all(np.isfinite(grad))


def _so3_projection_np(m):
  m = np.asarray(m, np.float64).reshape(m.shape[:-1] + (3, 3))
  u, _, vt = np.linalg.svd(m)
  d = np.sign(np.linalg.det(u @ vt))
  u = u.copy()
  u[..., :, 2] *= d[..., None]
  return u @ vt


def test_9d_matches_numpy_svd_projection():
  m = _rng(4).normal(size=(64, 9))
  ours = cam.rotation_from_9d(m.astype(np.float32))
  ref = _so3_projection_np(m)
  np.testing.assert_allclose(ours, ref, atol=1e-4)
  _assert_rotation(ours)
  assert np.any(np.linalg.det(m.reshape(-1, 3, 3)) < 0)  # both signs seen
  # [..., 3, 3] input is accepted too.
  np.testing.assert_allclose(
      cam.rotation_from_9d(m.reshape(-1, 3, 3).astype(np.float32)), ours)


def test_9d_is_nearest_rotation():
  m = _rng(5).normal(size=(9,))
  r = np.asarray(cam.rotation_from_9d(m.astype(np.float32)), np.float64)
  best = np.linalg.norm(m.reshape(3, 3) - r)
  others = Rotation.random(2000, random_state=6).as_matrix()
  dists = np.linalg.norm(m.reshape(1, 3, 3) - others, axis=(1, 2))
  assert best <= dists.min() + 1e-5


def test_9d_round_trip_and_gradient():
  rot = Rotation.random(8, random_state=7).as_matrix().astype(np.float32)
  np.testing.assert_allclose(
      cam.rotation_from_9d(cam.rotation_to_9d(rot)), rot, atol=1e-5)
  for m in [_rng(8).normal(size=9), rot[0].ravel().astype(np.float64),
            rot[1].ravel() + 0.1 * _rng(9).normal(size=9)]:
    jac = _jjacfwd(cam.rotation_from_9d)(jnp.asarray(m, jnp.float32))
    ref = _numeric_jacobian(_so3_projection_np, m)
    np.testing.assert_allclose(jac, ref, atol=2e-4)


def test_9d_degenerate_input_finite():
  for m in [jnp.zeros(9), jnp.ones(9), jnp.eye(3).ravel()]:
    r = cam.rotation_from_9d(m)
    assert np.all(np.isfinite(r))
    _assert_rotation(r)
    g = _jgrad(lambda v: jnp.sum(cam.rotation_from_9d(v)
                                   * jnp.arange(9.).reshape(3, 3)))(m)
    assert np.all(np.isfinite(g))


# ----------------------------------------------------------------------------
# Projections.


def test_weak_perspective_and_screen():
  rng = _rng(10)
  pts = rng.normal(size=(2, 5, 3)).astype(np.float32)
  rot = Rotation.random(2, random_state=11).as_matrix().astype(np.float32)
  scale = np.array([2.0, 0.5], np.float32)
  trans = rng.normal(size=(2, 2)).astype(np.float32)
  ref = np.stack([scale[b] * (pts[b] @ rot[b].T)[:, :2] + trans[b]
                  for b in range(2)])
  ours = cam.weak_perspective(pts, rot, scale, trans)
  np.testing.assert_allclose(ours, ref, rtol=_RTOL, atol=_ATOL)
  screen = cam.weak_perspective_screen(pts, rot, scale, trans)
  p = np.stack([scale[b] * (pts[b] @ rot[b].T) for b in range(2)])
  np.testing.assert_allclose(screen[..., 0], p[..., 0] + trans[:, None, 0],
                             atol=_ATOL)
  np.testing.assert_allclose(screen[..., 1], trans[:, None, 1] - p[..., 1],
                             atol=_ATOL)
  np.testing.assert_allclose(screen[..., 2], -p[..., 2], atol=_ATOL)
  # A point nearer the viewer (larger model z) has smaller screen z.
  near_far = cam.weak_perspective_screen(
      jnp.array([[0., 0., 1.], [0., 0., -1.]]), jnp.eye(3), 1.0,
      jnp.array([32., 32.]))
  assert near_far[0, 2] < near_far[1, 2]
  np.testing.assert_allclose(near_far[:, :2], [[32, 32], [32, 32]])


def test_perspective_matches_pinhole_and_is_safe_at_zero_depth():
  rng = _rng(12)
  pts = np.concatenate([rng.normal(size=(6, 2)), rng.uniform(1, 5, (6, 1))],
                       -1).astype(np.float32)
  ours = cam.perspective(pts, focal=1015.0, center=(112.0, 112.0))
  ref = 1015.0 * pts[:, :2] / pts[:, 2:] + 112.0
  np.testing.assert_allclose(ours, ref, rtol=1e-5)
  ours_xy = cam.perspective(pts, focal=jnp.array([500., 600.]),
                               center=jnp.array([10., 20.]))
  np.testing.assert_allclose(ours_xy, pts[:, :2] / pts[:, 2:] * [500, 600] +
                             [10, 20], rtol=1e-5)
  zero = jnp.array([[0.1, 0.2, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, -1e-9]])
  out = cam.perspective(zero, focal=100.0, center=(0.0, 0.0))
  assert np.all(np.isfinite(out))
  g = _jgrad(lambda p: jnp.sum(cam.perspective(
      p, focal=100.0, center=(0.0, 0.0))))(zero)
  assert np.all(np.isfinite(g))


def test_landmarks():
  rng = _rng(13)
  verts = rng.normal(size=(3, 20, 3)).astype(np.float32)
  idx = np.array([4, 0, 19, 7])
  rot = Rotation.random(3, random_state=14).as_matrix().astype(np.float32)
  scale = np.full((3,), 10.0, np.float32)
  trans = np.full((3, 2), 32.0, np.float32)
  lm = cam.project_landmarks(verts, idx, rot, scale, trans)
  full = cam.weak_perspective_screen(verts, rot, scale, trans)
  np.testing.assert_allclose(lm, np.asarray(full)[:, idx, :2], atol=1e-5)
  # Perspective: Deep3DFaceRecon camera (z = 10, focal 1015, 224 px).
  t3 = rng.normal(size=(3, 3)).astype(np.float32) * 0.1
  lm_p = cam.project_landmarks_perspective(
      verts, idx, rot, t3, focal=1015.0, center=(112.0, 112.0),
      camera_distance=10.0)
  posed = np.einsum("bij,bnj->bni", rot, verts[:, idx]) + t3[:, None]
  u = 1015.0 * posed[..., 0] / (10.0 - posed[..., 2]) + 112.0
  v = 112.0 - 1015.0 * posed[..., 1] / (10.0 - posed[..., 2])
  np.testing.assert_allclose(lm_p, np.stack([u, v], -1), rtol=1e-4,
                             atol=1e-3)


# ----------------------------------------------------------------------------
# Normals.


def _vertex_normals_np(v, f):
  v = np.asarray(v, np.float64)
  acc = np.zeros_like(v)
  for a, b, c in f:
    n = np.cross(v[b] - v[a], v[c] - v[a])
    acc[a] += n
    acc[b] += n
    acc[c] += n
  norm = np.linalg.norm(acc, axis=-1, keepdims=True)
  return np.where(norm > 0, acc / np.where(norm > 0, norm, 1), 0)


def test_normals_match_numpy_loop_and_icosphere():
  sphere = trimesh.creation.icosphere(subdivisions=2)
  v = np.asarray(sphere.vertices, np.float32)
  f = np.asarray(sphere.faces, np.int32)
  vn = cam.vertex_normals(v, f)
  np.testing.assert_allclose(vn, _vertex_normals_np(v, f), atol=1e-5)
  # Outward radial normals on a sphere, counter-clockwise winding.
  radial = v / np.linalg.norm(v, axis=-1, keepdims=True)
  assert np.min(np.sum(np.asarray(vn) * radial, -1)) > 0.995
  fn = cam.face_normals(v, f)
  np.testing.assert_allclose(fn, sphere.face_normals, atol=1e-5)


def test_normals_batched_vmap_and_gradients():
  rng = _rng(15)
  f = np.array([[0, 1, 2], [0, 2, 3], [1, 3, 2], [0, 3, 1]], np.int32)
  v = rng.normal(size=(2, 4, 3))
  ours = cam.vertex_normals(v.astype(np.float32), f)
  mapped = jax.vmap(cam.vertex_normals, (0, None))(v.astype(np.float32),
                                                      f)
  np.testing.assert_allclose(ours, mapped, atol=1e-6)
  for b in range(2):
    np.testing.assert_allclose(ours[b], _vertex_normals_np(v[b], f),
                               atol=1e-5)
  w = rng.normal(size=(4, 3))

  def ref_fn(x):
    return np.sum(w * _vertex_normals_np(x.reshape(4, 3), f))

  grad = _jgrad(lambda x: jnp.sum(w * cam.vertex_normals(x, f)))(
      jnp.asarray(v[0], jnp.float32))
  num = _numeric_jacobian(lambda x: np.array(ref_fn(x)), v[0].ravel())
  np.testing.assert_allclose(np.asarray(grad).ravel(), num, atol=1e-3)


def test_normals_degenerate_faces_no_nan():
  v = jnp.array([[0., 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0], [5, 5, 5]])
  f = jnp.array([[0, 1, 2],   # collinear: zero area
                 [0, 0, 0],   # repeated vertex
                 [0, 1, 3]], jnp.int32)  # proper triangle
  fn = cam.face_normals(v, f)
  np.testing.assert_allclose(fn, [[0, 0, 0], [0, 0, 0], [0, 0, 1]],
                             atol=1e-6)
  vn = np.asarray(cam.vertex_normals(v, f))
  np.testing.assert_allclose(vn[[0, 1, 3]], [[0, 0, 1]] * 3, atol=1e-6)
  np.testing.assert_allclose(vn[[2, 4]], 0.0, atol=1e-6)  # undefined -> 0
  for fun in (cam.vertex_normals, cam.face_normals):
    g = _jgrad(lambda x: jnp.sum(fun(x, f) * jnp.arange(3.)))(v)
    assert np.all(np.isfinite(g))
    assert np.max(np.abs(g)) < 10.0  # no 1/eps blow-up
    np.testing.assert_array_equal(g[4], 0.0)  # isolated vertex
  g0 = _jgrad(lambda x: jnp.sum(cam.vertex_normals(x, f)))(
      jnp.zeros((5, 3)))
  assert np.all(np.isfinite(g0))


def test_safe_normalize_zero():
  out = cam.safe_normalize(jnp.zeros((2, 3)))
  np.testing.assert_array_equal(out, 0.0)
  g = _jgrad(lambda x: jnp.sum(cam.safe_normalize(x)))(jnp.zeros(3))
  np.testing.assert_array_equal(g, 0.0)
  x = np.array([3.0, 4.0, 0.0], np.float32)
  np.testing.assert_allclose(cam.safe_normalize(x), x / 5.0, rtol=1e-6)


def test_shape_errors():
  with pytest.raises(ValueError, match="angles"):
    camera.euler_to_rotation(jnp.zeros((4, 2)))
  with pytest.raises(ValueError, match="faces"):
    camera.vertex_normals(jnp.zeros((4, 3)), jnp.zeros((3, 4), jnp.int32))
  with pytest.raises(ValueError, match="faces must be integer"):
    camera.vertex_normals(jnp.zeros((4, 3)), jnp.zeros((3, 3)))
  with pytest.raises(ValueError, match="translation"):
    camera.weak_perspective(jnp.zeros((4, 3)), jnp.eye(3), 1.0, jnp.zeros(3))
  with pytest.raises(ValueError, match="focal"):
    camera.perspective(jnp.ones((4, 3)), focal=jnp.ones(3), center=(0., 0.))


def test_vmap_over_batches_matches_leading_dims():
  angles = _random_angles(_rng(16), 6).reshape(2, 3, 3)
  np.testing.assert_allclose(
      jax.vmap(cam.euler_to_rotation)(angles),
      cam.euler_to_rotation(angles), atol=1e-7)
  x = _rng(17).normal(size=(2, 3, 9)).astype(np.float32)
  np.testing.assert_allclose(jax.vmap(cam.rotation_from_9d)(x),
                             cam.rotation_from_9d(x), atol=1e-6)
