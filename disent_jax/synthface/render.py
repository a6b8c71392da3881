"""SynthFace rendering with ground-truth maps.

A face (and an optional occluder) is posed with a weak-perspective camera,
rasterized with `disent_jax.ops.raster` and shaded per pixel with SH
Lambertian lighting (`disent_jax.ops.sh_lighting`). Alongside the image the
renderer returns every ground-truth map of the world: coverage mask, face and
occluder masks, camera-frame normals, albedo, shading (irradiance), depth,
and the 2D landmarks with visibility.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.ops import camera
from disent_jax.ops import raster
from disent_jax.ops import sh_lighting

SIZES = (64, 128, 256)
FACE_FRACTION = 0.8       # face height / image height at scale factor 1
FACE_HEIGHT_MM = 190.0
ROTATION_DEPTH_MM = -50.0  # depth of the rotation centre (inside the head)
LANDMARK_DEPTH_TOL_MM = 3.0


def framing(neutral: jax.Array) -> jax.Array:
  """Rotation centre [3] of a subject: the middle of its face box."""
  lo = jnp.min(neutral, axis=0)
  hi = jnp.max(neutral, axis=0)
  return jnp.stack([0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]),
                    jnp.float32(ROTATION_DEPTH_MM)])


def camera_params(pose: jax.Array, *, size: int, scale_factor: jax.Array,
                  shift: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(rotation [3, 3], scale [] px/mm, translation [2] px) of a view."""
  rotation = camera.euler_to_rotation(jnp.asarray(pose, jnp.float32))
  scale = scale_factor * FACE_FRACTION * size / FACE_HEIGHT_MM
  translation = size * (0.5 + jnp.asarray(shift, jnp.float32))
  return rotation, scale, translation


def render(vertices: jax.Array, albedo: jax.Array, faces: np.ndarray, *,
           landmarks: np.ndarray, num_face_faces: int, pose: jax.Array,
           sh: jax.Array, background: jax.Array, centre: jax.Array,
           size: int, scale_factor: jax.Array | float = 1.0,
           shift: jax.Array | None = None) -> dict[str, jax.Array]:
  """Renders a posed, lit face with its ground truth.

  Args:
    vertices: [V, 3] model-frame vertices in mm (face first, then any
      occluder vertices).
    albedo: [V, 3] per-vertex RGB albedo.
    faces: [F, 3] int triangles (static); the first `num_face_faces` belong
      to the face, the rest to the occluder.
    landmarks: [L] int landmark vertex indices (static).
    num_face_faces: number of face triangles (static).
    pose: [3] (pitch, yaw, roll) radians.
    sh: [3, 9] SH lighting (discofacegan convention) in the camera frame.
    background: [size, size, 3] image behind the face.
    centre: [3] model-frame rotation centre (`framing`).
    size: image size in pixels (static).
    scale_factor: [] zoom relative to the default framing.
    shift: [2] image-centre offset as a fraction of `size`.

  Returns:
    A dict of
      image [S, S, 3] in [0, 1];
      mask [S, S] bool, the rasterizer coverage;
      face_mask, occluder_mask [S, S] bool;
      normals [S, S, 3] unit camera-frame normals (x right, y up, z to the
        viewer), 0 outside the mask;
      albedo [S, S, 3], shading [S, S, 3] (irradiance), 0 outside;
      depth [S, S] mm behind the plane of the rotation centre (larger is
        farther), 0 outside;
      landmarks_2d [L, 2] pixel (x, y), landmarks_visible [L] bool;
      screen [V, 3] the screen-space vertices.
  """
  vertices = jnp.asarray(vertices, jnp.float32)
  if vertices.ndim != 2 or vertices.shape[-1] != 3:
    raise ValueError(f"vertices must be [V, 3], got {vertices.shape}")
  if albedo.shape != vertices.shape:
    raise ValueError(f"albedo {albedo.shape} must match vertices "
                     f"{vertices.shape}")
  if background.shape != (size, size, 3):
    raise ValueError(f"background must be [{size}, {size}, 3], got "
                     f"{background.shape}")
  shift = jnp.zeros(2, jnp.float32) if shift is None else shift
  rotation, scale, translation = camera_params(
      pose, size=size, scale_factor=scale_factor, shift=shift)
  centred = vertices - centre[None, :]
  screen = camera.weak_perspective_screen(centred, rotation, scale,
                                          translation)
  frags = raster.rasterize(screen, faces, height=size, width=size)
  rotated = jnp.matmul(centred, rotation.T, precision=jax.lax.Precision.HIGHEST)
  vnormals = camera.vertex_normals(rotated, faces)
  nmap = raster.interpolate(vnormals, faces, frags)
  nmap = camera.safe_normalize(nmap)
  mask = frags.mask
  nmap = jnp.where(mask[..., None], nmap, 0.0)
  amap = raster.interpolate(albedo, faces, frags)
  irr = sh_lighting.irradiance(nmap, sh[None, None])
  irr = jnp.where(mask[..., None], irr, 0.0)
  shaded = jnp.clip(amap * irr, 0.0, 1.0)
  image = jnp.where(mask[..., None], shaded, background)
  occ_mask = mask & (frags.triangle_id >= num_face_faces)
  face_mask = mask & ~occ_mask
  depth = jnp.where(mask, frags.depth / scale, 0.0)
  # Landmarks: projected vertices, visible when nothing nearer covers them.
  lm2 = screen[landmarks, :2]
  lmz = screen[landmarks, 2]
  col = jnp.floor(lm2[:, 0]).astype(jnp.int32)
  row = jnp.floor(lm2[:, 1]).astype(jnp.int32)
  inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
  rc, cc = jnp.clip(row, 0, size - 1), jnp.clip(col, 0, size - 1)
  zbuf = jnp.where(mask[rc, cc], frags.depth[rc, cc], jnp.inf)
  unoccluded = lmz <= zbuf + LANDMARK_DEPTH_TOL_MM * scale
  visible = inside & unoccluded & ~occ_mask[rc, cc]
  return {
      "image": image.astype(jnp.float32),
      "mask": mask,
      "face_mask": face_mask,
      "occluder_mask": occ_mask,
      "normals": nmap.astype(jnp.float32),
      "albedo": jnp.where(mask[..., None], amap, 0.0).astype(jnp.float32),
      "shading": irr.astype(jnp.float32),
      "depth": depth.astype(jnp.float32),
      "landmarks_2d": lm2.astype(jnp.float32),
      "landmarks_visible": visible,
      "screen": screen,
  }
