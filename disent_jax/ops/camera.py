"""Rotations, camera projections and mesh normals.

Frames (see CONTRACT.md):

* Model/world frame (meshes, millimetres): x to the image right, y up, z out
  of the face towards the viewer.
* Camera frame for `perspective` (OpenCV): camera at the origin, x right,
  y down, z forward (positive depth).
* Raster screen space (`weak_perspective_screen`): x right, y down, in
  pixels; smaller z is nearer the camera.

Rotations act on column vectors, `X' = R @ X`. Euler angles are
(pitch about x, yaw about y, roll about z) in radians with R = Rz @ Ry @ Rx,
the convention of Deep3DFaceRecon/DiscoFaceGAN (and of
`scipy.spatial.transform.Rotation.from_euler("xyz", ...)`, extrinsic).

Every function is pure, jit- and vmap-able, takes leading batch dimensions
`...`, and is free of NaN (values and gradients) on degenerate input: zero
vectors, zero-area triangles, gimbal lock (yaw = +-90 degrees), points at
zero depth.
"""

from typing import Sequence

import jax
import jax.numpy as jnp

_HIGHEST = jax.lax.Precision.HIGHEST
_EPS = 1e-12


def _check_last(name: str, x: jax.Array, shape: Sequence[int]) -> None:
  """Raises ValueError unless `x.shape` ends with `shape`."""
  shape = tuple(shape)
  if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
    raise ValueError(
        f"{name} must have shape [..., {', '.join(map(str, shape))}], "
        f"got {tuple(x.shape)}")


def _safe_norm(x: jax.Array, *, eps: float = _EPS, keepdims: bool = True
               ) -> jax.Array:
  """Euclidean norm over the last axis, clamped below by `eps` (no NaN)."""
  sq = jnp.sum(x * x, axis=-1, keepdims=keepdims)
  return jnp.sqrt(jnp.maximum(sq, eps * eps))


def safe_normalize(x: jax.Array, *, eps: float = _EPS) -> jax.Array:
  """Unit vectors along the last axis; (near-)zero vectors map to ~zero.

  Args:
    x: [..., D] vectors.
    eps: vectors shorter than `eps` map to zero with a zero gradient, so
      zero input gives neither NaN nor the 1/eps blow-up of clamping.

  Returns:
    [..., D] `x / |x|`, or zero where |x| <= eps.
  """
  sq = jnp.sum(x * x, axis=-1, keepdims=True)
  ok = sq > eps * eps
  return jnp.where(ok, x / jnp.sqrt(jnp.where(ok, sq, 1.0)), 0.0)


def _safe_atan2(y: jax.Array, x: jax.Array) -> jax.Array:
  """atan2 whose gradient is finite (zero) at y = x = 0."""
  zero = (jnp.abs(x) + jnp.abs(y)) < _EPS
  return jnp.where(zero, 0.0, jnp.arctan2(jnp.where(zero, 0.0, y),
                                          jnp.where(zero, 1.0, x)))


# ----------------------------------------------------------------------------
# Euler angles.


def euler_to_rotation(angles: jax.Array) -> jax.Array:
  """Rotation matrices from Euler angles, R = Rz(roll) Ry(yaw) Rx(pitch).

  Args:
    angles: [..., 3] (pitch about x, yaw about y, roll about z) in radians.

  Returns:
    [..., 3, 3] rotation matrices acting on column vectors.
  """
  angles = jnp.asarray(angles)
  _check_last("angles", angles, (3,))
  cx, cy, cz = [jnp.cos(angles[..., i]) for i in range(3)]
  sx, sy, sz = [jnp.sin(angles[..., i]) for i in range(3)]
  rows = [
      [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
      [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
      [-sy, cy * sx, cy * cx],
  ]
  return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def rotation_to_euler(rotation: jax.Array, *, eps: float = 1e-6
                      ) -> jax.Array:
  """Euler angles (pitch, yaw, roll) of R = Rz(roll) Ry(yaw) Rx(pitch).

  Yaw is returned in [-pi/2, pi/2], pitch and roll in (-pi, pi]. At gimbal
  lock (|cos(yaw)| < eps) only pitch -+ roll is determined; roll is then set
  to 0 and the whole in-plane angle is returned as pitch. Values and
  gradients stay finite there.

  Args:
    rotation: [..., 3, 3] rotation matrices.
    eps: threshold on cos(yaw) below which the gimbal-lock branch is used.

  Returns:
    [..., 3] angles in radians.
  """
  rotation = jnp.asarray(rotation)
  _check_last("rotation", rotation, (3, 3))
  r = rotation
  cos_yaw = _safe_norm(jnp.stack([r[..., 0, 0], r[..., 1, 0]], -1),
                       keepdims=False)
  yaw = jnp.arctan2(-r[..., 2, 0], cos_yaw)
  locked = cos_yaw < eps
  pitch_free = _safe_atan2(r[..., 2, 1], r[..., 2, 2])
  roll_free = _safe_atan2(r[..., 1, 0], r[..., 0, 0])
  # Gimbal lock: sin(yaw) = s = +-1, R01 = s sin(pitch - s roll) and
  # R11 = cos(pitch - s roll); with roll = 0, pitch = atan2(s R01, R11).
  s = jnp.where(r[..., 2, 0] <= 0, 1.0, -1.0)
  pitch_locked = _safe_atan2(s * r[..., 0, 1], r[..., 1, 1])
  pitch = jnp.where(locked, pitch_locked, pitch_free)
  roll = jnp.where(locked, 0.0, roll_free)
  return jnp.stack([pitch, yaw, roll], axis=-1)


# ----------------------------------------------------------------------------
# Continuous rotation representations.


def _any_perpendicular(v: jax.Array) -> jax.Array:
  """A unit vector perpendicular to unit (or zero) vectors `v` [..., 3]."""
  ex = jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0], v.dtype), v.shape)
  ey = jnp.broadcast_to(jnp.array([0.0, 1.0, 0.0], v.dtype), v.shape)
  use_y = jnp.abs(v[..., :1]) > 0.9
  axis = jnp.where(use_y, ey, ex)
  p = axis - jnp.sum(axis * v, -1, keepdims=True) * v
  return safe_normalize(p)


def rotation_from_6d(x: jax.Array, *, eps: float = 1e-6) -> jax.Array:
  """Rotation from the 6D representation of Zhou et al. (CVPR 2019).

  `x` holds two 3-vectors (a1, a2), the unnormalised first two columns of R.
  Gram-Schmidt gives b1 = a1/|a1|, b2 = the unit part of a2 orthogonal to b1,
  b3 = b1 x b2, and R = [b1 b2 b3] (as columns). Degenerate input (a1 = 0, or
  a2 parallel to a1) falls back to a fixed axis so the result is always a
  proper rotation with finite gradients.

  Args:
    x: [..., 6] = (a1, a2).
    eps: norms below `eps` count as zero.

  Returns:
    [..., 3, 3] rotation matrices, det = +1.
  """
  x = jnp.asarray(x)
  _check_last("x", x, (6,))
  a1, a2 = x[..., :3], x[..., 3:]
  n1 = _safe_norm(a1)
  e_x = jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0], x.dtype), a1.shape)
  b1 = jnp.where(n1 > eps, a1 / n1, e_x)
  u2 = a2 - jnp.sum(b1 * a2, -1, keepdims=True) * b1
  n2 = _safe_norm(u2)
  b2 = jnp.where(n2 > eps, u2 / n2, _any_perpendicular(b1))
  b3 = jnp.cross(b1, b2)
  return jnp.stack([b1, b2, b3], axis=-1)


def rotation_to_6d(rotation: jax.Array) -> jax.Array:
  """The 6D representation (first two columns) of rotations.

  Args:
    rotation: [..., 3, 3].

  Returns:
    [..., 6] = (R[:, 0], R[:, 1]); `rotation_from_6d` inverts it.
  """
  rotation = jnp.asarray(rotation)
  _check_last("rotation", rotation, (3, 3))
  return jnp.concatenate([rotation[..., :, 0], rotation[..., :, 1]], axis=-1)


def _svd_special_orthogonal(m: jax.Array) -> tuple[jax.Array, ...]:
  """U', signed singular values s', V with M = U' diag(s') V^T, det U'V^T=1."""
  u, s, vt = jnp.linalg.svd(m)
  v = jnp.swapaxes(vt, -1, -2)
  d = jnp.sign(jnp.linalg.det(u) * jnp.linalg.det(v))
  d = jnp.where(d == 0, 1.0, d)
  flip = jnp.stack([jnp.ones_like(d), jnp.ones_like(d), d], axis=-1)
  return u * flip[..., None, :], s * flip, v


@jax.custom_jvp
def _project_to_so3(m: jax.Array) -> jax.Array:
  u, _, v = _svd_special_orthogonal(m)
  return jnp.matmul(u, jnp.swapaxes(v, -1, -2), precision=_HIGHEST)


@_project_to_so3.defjvp
def _project_to_so3_jvp(primals, tangents):
  """Stable derivative of the special-orthogonal polar factor.

  With M = U' S' V^T (s'_3 carries the sign that makes det R = +1) and
  R = U' V^T, the derivative is dR = U' A V^T where
  A_ij = (C_ij - C_ji) / (s'_i + s'_j) and C = U'^T dM V. Unlike
  differentiating the SVD factors, this is finite when singular values
  repeat (e.g. at M = R); a vanishing denominator (the projection is not
  unique there) contributes zero.
  """
  (m,), (dm,) = primals, tangents
  u, s, v = _svd_special_orthogonal(m)
  r = jnp.matmul(u, jnp.swapaxes(v, -1, -2), precision=_HIGHEST)
  c = jnp.matmul(jnp.matmul(jnp.swapaxes(u, -1, -2), dm, precision=_HIGHEST),
                 v, precision=_HIGHEST)
  den = s[..., :, None] + s[..., None, :]
  ok = jnp.abs(den) > 1e-6
  a = jnp.where(ok, (c - jnp.swapaxes(c, -1, -2)) / jnp.where(ok, den, 1.0),
                0.0)
  dr = jnp.matmul(jnp.matmul(u, a, precision=_HIGHEST),
                  jnp.swapaxes(v, -1, -2), precision=_HIGHEST)
  return r, dr


def rotation_from_9d(x: jax.Array) -> jax.Array:
  """Nearest rotation to a 3x3 matrix (SVD projection, det = +1).

  The 9-vector is read row-major into M; the result is
  R = U diag(1, 1, det(U V^T)) V^T for M = U S V^T, the rotation nearest to
  M in Frobenius norm (Levinson et al., NeurIPS 2020). The derivative uses a
  closed form that stays finite when singular values repeat; it is zero in
  directions where the projection is not unique.

  Args:
    x: [..., 9] or [..., 3, 3].

  Returns:
    [..., 3, 3] rotation matrices.
  """
  x = jnp.asarray(x)
  if x.ndim >= 2 and x.shape[-2:] == (3, 3):
    m = x
  else:
    _check_last("x", x, (9,))
    m = x.reshape(x.shape[:-1] + (3, 3))
  return _project_to_so3(m)


def rotation_to_9d(rotation: jax.Array) -> jax.Array:
  """Row-major 9-vectors of rotations ([..., 3, 3] -> [..., 9])."""
  rotation = jnp.asarray(rotation)
  _check_last("rotation", rotation, (3, 3))
  return rotation.reshape(rotation.shape[:-2] + (9,))


# ----------------------------------------------------------------------------
# Projections.


def _rotate(points: jax.Array, rotation: jax.Array) -> jax.Array:
  """(R X) for points [..., N, 3] and rotations [..., 3, 3]."""
  return jnp.einsum("...ij,...nj->...ni", rotation, points,
                    precision=_HIGHEST)


def weak_perspective(points: jax.Array, rotation: jax.Array,
                     scale: jax.Array, translation: jax.Array) -> jax.Array:
  """Weak-perspective (scaled orthographic) projection s (R X)[:, :2] + t.

  Args:
    points: [..., N, 3] model-frame points.
    rotation: [..., 3, 3].
    scale: [...] scale factors.
    translation: [..., 2].

  Returns:
    [..., N, 2] projected points (same axes as the model frame: y up).
  """
  points, rotation = jnp.asarray(points), jnp.asarray(rotation)
  scale, translation = jnp.asarray(scale), jnp.asarray(translation)
  _check_last("points", points, (3,))
  _check_last("rotation", rotation, (3, 3))
  _check_last("translation", translation, (2,))
  rotated = _rotate(points, rotation)[..., :2]
  return scale[..., None, None] * rotated + translation[..., None, :]


def weak_perspective_screen(points: jax.Array, rotation: jax.Array,
                            scale: jax.Array, translation: jax.Array
                            ) -> jax.Array:
  """Model frame to raster screen space under a weak-perspective camera.

  With P = s (R X): x_s = P_x + t_x, y_s = t_y - P_y, z_s = -P_z, so the
  screen y axis points down and nearer points have smaller z. Pass the image
  centre as `translation` for a centred face.

  Args:
    points: [..., N, 3] model-frame points.
    rotation: [..., 3, 3].
    scale: [...] pixels per model unit.
    translation: [..., 2] screen position of the model origin (pixels).

  Returns:
    [..., N, 3] screen-space points (x, y, z).
  """
  points, rotation = jnp.asarray(points), jnp.asarray(rotation)
  scale, translation = jnp.asarray(scale), jnp.asarray(translation)
  _check_last("points", points, (3,))
  _check_last("rotation", rotation, (3, 3))
  _check_last("translation", translation, (2,))
  p = scale[..., None, None] * _rotate(points, rotation)
  t = translation[..., None, :]
  return jnp.stack([p[..., 0] + t[..., 0], t[..., 1] - p[..., 1],
                    -p[..., 2]], axis=-1)


def perspective(points: jax.Array, *, focal: jax.Array | float,
                center: jax.Array | Sequence[float], eps: float = 1e-6
                ) -> jax.Array:
  """Pinhole projection of camera-frame points (OpenCV frame) to pixels.

  u = f_x x / z + c_x, v = f_y y / z + c_y. Depths with |z| < eps are
  replaced by eps (keeping the sign of z), so points at the camera centre
  give large but finite pixels and finite gradients.

  Args:
    points: [..., N, 3] camera-frame points (x right, y down, z forward).
    focal: focal length in pixels: a scalar, or [..., 2] = (f_x, f_y).
    center: [..., 2] principal point in pixels.
    eps: smallest depth magnitude.

  Returns:
    [..., N, 2] pixel coordinates.
  """
  points = jnp.asarray(points)
  _check_last("points", points, (3,))
  focal = jnp.asarray(focal, points.dtype)
  center = jnp.asarray(center, points.dtype)
  _check_last("center", center, (2,))
  if focal.ndim == 0:
    focal = jnp.stack([focal, focal], axis=-1)
  _check_last("focal", focal, (2,))
  z = points[..., 2:3]
  z_safe = jnp.where(jnp.abs(z) < eps, jnp.where(z < 0, -eps, eps), z)
  return focal[..., None, :] * points[..., :2] / z_safe + center[..., None, :]


def model_to_camera(points: jax.Array, rotation: jax.Array,
                    translation: jax.Array, *, camera_distance: float
                    ) -> jax.Array:
  """Posed model-frame points seen by a camera on the +z axis (OpenCV frame).

  The face is posed as X' = R X + t in the model frame; the camera sits at
  (0, 0, camera_distance) looking down -z (Deep3DFaceRecon/DiscoFaceGAN use
  camera_distance = 10 with BFM in decimetres). The OpenCV camera frame is
  then (x', -y', camera_distance - z').

  Args:
    points: [..., N, 3] model-frame points.
    rotation: [..., 3, 3].
    translation: [..., 3].
    camera_distance: camera position on the model z axis.

  Returns:
    [..., N, 3] camera-frame points, z = depth.
  """
  points, rotation = jnp.asarray(points), jnp.asarray(rotation)
  translation = jnp.asarray(translation)
  _check_last("points", points, (3,))
  _check_last("rotation", rotation, (3, 3))
  _check_last("translation", translation, (3,))
  p = _rotate(points, rotation) + translation[..., None, :]
  return jnp.stack([p[..., 0], -p[..., 1], camera_distance - p[..., 2]],
                   axis=-1)


def project_landmarks(vertices: jax.Array, landmark_indices: jax.Array,
                      rotation: jax.Array, scale: jax.Array,
                      translation: jax.Array) -> jax.Array:
  """Weak-perspective screen positions of landmark vertices.

  Args:
    vertices: [..., V, 3] model-frame vertices.
    landmark_indices: [L] int vertex ids.
    rotation: [..., 3, 3].
    scale: [...].
    translation: [..., 2] screen position of the model origin.

  Returns:
    [..., L, 2] landmark pixels in raster screen space (x right, y down),
    the first two coordinates of `weak_perspective_screen`.
  """
  vertices = jnp.asarray(vertices)
  landmark_indices = jnp.asarray(landmark_indices)
  if landmark_indices.ndim != 1:
    raise ValueError("landmark_indices must have shape [L], got "
                     f"{tuple(landmark_indices.shape)}")
  picked = jnp.take(vertices, landmark_indices, axis=-2)
  return weak_perspective_screen(picked, rotation, scale, translation)[..., :2]


def project_landmarks_perspective(
    vertices: jax.Array, landmark_indices: jax.Array, rotation: jax.Array,
    translation: jax.Array, *, focal: jax.Array | float,
    center: jax.Array | Sequence[float], camera_distance: float
) -> jax.Array:
  """Perspective pixel positions of landmark vertices.

  `model_to_camera` followed by `perspective`; with focal = 1015,
  center = (112, 112) and camera_distance = 10 this is the Deep3DFaceRecon
  camera at 224 px.

  Args:
    vertices: [..., V, 3] model-frame vertices.
    landmark_indices: [L] int vertex ids.
    rotation: [..., 3, 3].
    translation: [..., 3].
    focal: focal length in pixels: a scalar or [..., 2].
    center: [..., 2] principal point.
    camera_distance: camera position on the model z axis.

  Returns:
    [..., L, 2] pixels (x right, y down).
  """
  vertices = jnp.asarray(vertices)
  landmark_indices = jnp.asarray(landmark_indices)
  if landmark_indices.ndim != 1:
    raise ValueError("landmark_indices must have shape [L], got "
                     f"{tuple(landmark_indices.shape)}")
  picked = jnp.take(vertices, landmark_indices, axis=-2)
  cam = model_to_camera(picked, rotation, translation,
                        camera_distance=camera_distance)
  return perspective(cam, focal=focal, center=center)


# ----------------------------------------------------------------------------
# Normals.


def _check_faces(faces: jax.Array) -> jax.Array:
  faces = jnp.asarray(faces)
  if faces.ndim != 2 or faces.shape[-1] != 3:
    raise ValueError(f"faces must have shape [F, 3], got {tuple(faces.shape)}")
  if not jnp.issubdtype(faces.dtype, jnp.integer):
    raise ValueError(f"faces must be integer, got {faces.dtype}")
  return faces


def _face_cross(vertices: jax.Array, faces: jax.Array) -> jax.Array:
  """(v1 - v0) x (v2 - v0) per face: [..., F, 3], length = 2 * area."""
  v0 = jnp.take(vertices, faces[:, 0], axis=-2)
  v1 = jnp.take(vertices, faces[:, 1], axis=-2)
  v2 = jnp.take(vertices, faces[:, 2], axis=-2)
  return jnp.cross(v1 - v0, v2 - v0)


def face_normals(vertices: jax.Array, faces: jax.Array) -> jax.Array:
  """Unit normals of triangles (counter-clockwise winding is front-facing).

  Args:
    vertices: [..., V, 3].
    faces: [F, 3] int vertex ids.

  Returns:
    [..., F, 3] unit normals; zero vectors for zero-area triangles.
  """
  vertices = jnp.asarray(vertices)
  _check_last("vertices", vertices, (3,))
  faces = _check_faces(faces)
  return safe_normalize(_face_cross(vertices, faces))


def vertex_normals(vertices: jax.Array, faces: jax.Array) -> jax.Array:
  """Area-weighted unit vertex normals of a triangle mesh.

  Each vertex normal is the normalised sum of (v1 - v0) x (v2 - v0) over its
  incident faces (so faces are weighted by their area). Zero-area faces add
  nothing; isolated vertices (or vertices whose faces cancel) get a zero
  normal. Cost: one gather of 3F vertices and one segment sum into V rows,
  done with vertices as the leading axis (batch dims folded behind it) so
  that the backward scatter is along the leading axis as well.

  Args:
    vertices: [..., V, 3].
    faces: [F, 3] int vertex ids.

  Returns:
    [..., V, 3] unit normals (zero where undefined).
  """
  vertices = jnp.asarray(vertices)
  _check_last("vertices", vertices, (3,))
  faces = _check_faces(faces)
  batch = vertices.shape[:-2]
  num_vertices = vertices.shape[-2]
  flat = jnp.moveaxis(vertices, -2, 0).reshape(num_vertices, -1, 3)
  tri = flat[faces]  # [F, 3, B, 3]
  cross = jnp.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  sums = jax.ops.segment_sum(jnp.concatenate([cross] * 3, axis=0),
                             faces.T.reshape(-1), num_segments=num_vertices)
  normals = safe_normalize(sums).reshape((num_vertices,) + batch + (3,))
  return jnp.moveaxis(normals, 0, -2)


__all__ = [
    "euler_to_rotation", "face_normals", "model_to_camera", "perspective",
    "project_landmarks", "project_landmarks_perspective", "rotation_from_6d",
    "rotation_from_9d", "rotation_to_6d", "rotation_to_9d",
    "rotation_to_euler", "safe_normalize", "vertex_normals",
    "weak_perspective", "weak_perspective_screen",
]
