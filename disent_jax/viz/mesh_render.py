"""Mesh-to-PNG rendering with the project's rasterizer and error heat maps.

A mesh in the model frame (mm; x right, y up, z towards the viewer) is
fitted into the image with `ops.camera.weak_perspective_screen`, rasterized
with `ops.raster.rasterize`, and shaded with a head-on directional light
(from the viewer, along +z) plus ambient: colour * (ambient + (1 - ambient)
* |n_z|), with n the interpolated vertex normal. Per-vertex scalar values
(e.g. errors in mm) are mapped through a matplotlib colour map and drawn
with a colour bar by `save_error_maps`.
"""

import functools
import os
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import matplotlib
from matplotlib import cm
from matplotlib import colors as mpl_colors
from matplotlib import image as mpl_image
import numpy as np

from disent_jax.ops import camera
from disent_jax.ops import raster
from disent_jax.viz import grids

_HI = jax.lax.Precision.HIGHEST


def _view_rotation(rotation):
  if rotation is None:
    return jnp.eye(3, dtype=jnp.float32)
  r = jnp.asarray(rotation, jnp.float32)
  if r.shape == (3,):
    return camera.euler_to_rotation(r)
  if r.shape != (3, 3):
    raise ValueError(f"rotation must be Euler angles [3] or [3, 3], got "
                     f"{r.shape}.")
  return r


@functools.partial(jax.jit, static_argnames=("size",))
def _render(vertices, faces, colors, rotation, *, size, ambient, background,
            margin):
  v = vertices - 0.5 * (jnp.max(vertices, 0) + jnp.min(vertices, 0))
  rv = jnp.matmul(v, rotation.T, precision=_HI)
  lo, hi = jnp.min(rv[:, :2], 0), jnp.max(rv[:, :2], 0)
  extent = jnp.max(hi - lo)
  scale = (1.0 - 2.0 * margin) * size / jnp.maximum(extent, 1e-12)
  # Centre the rotated bounding box: x_s = s (x - cx) + size / 2 and
  # y_s = size / 2 - s (y - cy).
  c = 0.5 * (lo + hi)
  translation = size / 2.0 + scale * jnp.stack([-c[0], c[1]])
  screen = camera.weak_perspective_screen(v, rotation, scale, translation)
  frags = raster.rasterize(screen, faces, height=size, width=size)
  normals = camera.vertex_normals(rv, faces)
  n = raster.interpolate(normals, faces, frags)
  n = n / jnp.maximum(jnp.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
  shade = ambient + (1.0 - ambient) * jnp.abs(n[..., 2:3])
  rgb = raster.interpolate(colors, faces, frags) * shade
  return jnp.where(frags.mask[..., None], rgb, background), frags.mask


def values_to_colors(values, *, cmap: str = "jet",
                     vmin: Optional[float] = None,
                     vmax: Optional[float] = None) -> np.ndarray:
  """Per-vertex scalars [V] -> RGB [V, 3] through a matplotlib colour map."""
  x = np.asarray(values, np.float64)
  lo = np.nanmin(x) if vmin is None else vmin
  hi = np.nanmax(x) if vmax is None else vmax
  t = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
  return matplotlib.colormaps[cmap](np.clip(np.nan_to_num(t), 0, 1))[
      :, :3].astype(np.float32)


def render_mesh(vertices, faces, *, size: int = 256, values=None,
                colors=None, cmap: str = "jet", vmin: Optional[float] = None,
                vmax: Optional[float] = None, rotation=None,
                base_color=(0.78, 0.78, 0.78), ambient: float = 0.25,
                background: float = 1.0, margin: float = 0.05
                ) -> np.ndarray:
  """Renders one mesh to an RGB image.

  Args:
    vertices: [V, 3] model-frame vertices (any unit; fitted to the image).
    faces: [F, 3] int triangles.
    size: image height and width in pixels.
    values: optional [V] scalars drawn as a heat map (e.g. errors in mm).
    colors: optional [V, 3] RGB in [0, 1] (ignored when `values` is given).
    cmap: colour map for `values`.
    vmin: value mapped to the bottom of the colour map (default min).
    vmax: value mapped to the top (default max).
    rotation: optional view rotation, Euler angles [3] (pitch, yaw, roll,
      radians) or a [3, 3] matrix, applied before projection.
    base_color: RGB of an uncoloured mesh.
    ambient: ambient share of the shading; the rest is the head-on light.
    background: grey level of empty pixels.
    margin: fraction of the image left empty on each side.

  Returns:
    [size, size, 3] float32 image in [0, 1].
  """
  v = np.asarray(vertices, np.float32)
  f = np.asarray(faces, np.int32)
  if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
    raise ValueError(
        f"vertices [V, 3] and faces [F, 3] needed, got {v.shape}, {f.shape}.")
  if values is not None:
    if np.shape(values) != (v.shape[0],):
      raise ValueError(f"values must be [{v.shape[0]}], got "
                       f"{np.shape(values)}.")
    c = values_to_colors(values, cmap=cmap, vmin=vmin, vmax=vmax)
  elif colors is not None:
    c = np.asarray(colors, np.float32)
  else:
    c = np.broadcast_to(np.asarray(base_color, np.float32), v.shape)
  img, _ = _render(v, f, c, _view_rotation(rotation), size=size,
                   ambient=float(ambient), background=float(background),
                   margin=float(margin))
  return np.clip(np.asarray(img), 0.0, 1.0)


def render_meshes(vertices, faces, **kwargs) -> np.ndarray:
  """`render_mesh` over [N, V, 3] vertices (shared faces) -> [N, S, S, 3].

  A `values` keyword may be [N, V] (one heat map per mesh).
  """
  values = kwargs.pop("values", None)
  out = []
  for i, v in enumerate(np.asarray(vertices)):
    out.append(render_mesh(v, faces, values=None if values is None else
                           np.asarray(values)[i], **kwargs))
  return np.stack(out)


def save_mesh_image(path: str, vertices, faces, **kwargs) -> str:
  """Renders a mesh (see `render_mesh`) and writes it as PNG."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  mpl_image.imsave(path, render_mesh(vertices, faces, **kwargs))
  return path


def save_error_maps(path: str, vertices, faces, errors, *,
                    titles: Optional[Sequence[str]] = None,
                    vmax: Optional[float] = None, cmap: str = "jet",
                    label: str = "error (mm)", size: int = 256,
                    rotation=None, title: Optional[str] = None,
                    dpi: int = 100) -> str:
  """Per-vertex error heat maps of N meshes side by side, one colour bar.

  Args:
    path: output PNG.
    vertices: [N, V, 3] (or [V, 3]) meshes on which to draw the errors
      (typically the ground truth).
    faces: [F, 3].
    errors: [N, V] (or [V]) per-vertex errors, e.g. from
      `metrics.mesh_errors.per_vertex_error`.
    titles: N panel titles (e.g. "subject 3: 1.21 mm").
    vmax: top of the colour scale (default: the largest error); the bottom
      is 0.
    cmap: colour map.
    label: colour-bar label.
    size: rendered image size per panel.
    rotation: optional view rotation (see `render_mesh`).
    title: figure title.
    dpi: output resolution.

  Returns:
    `path`.
  """
  verts = np.asarray(vertices, np.float32)
  errs = np.asarray(errors, np.float32)
  if verts.ndim == 2:
    verts, errs = verts[None], errs[None]
  if errs.shape != verts.shape[:2]:
    raise ValueError(f"errors must be {verts.shape[:2]}, got {errs.shape}.")
  top = float(np.nanmax(errs)) if vmax is None else float(vmax)
  top = top if top > 0 else 1.0
  n = verts.shape[0]
  fig = grids.new_figure((2.6 * n + 0.9, 2.9 + (0.3 if title else 0)))
  axes = fig.subplots(1, n, squeeze=False)
  for i in range(n):
    ax = axes[0, i]
    ax.imshow(render_mesh(verts[i], faces, values=errs[i], cmap=cmap,
                          vmin=0.0, vmax=top, size=size, rotation=rotation))
    ax.set_axis_off()
    if titles is not None:
      ax.set_title(str(titles[i]), fontsize=9)
  mappable = cm.ScalarMappable(norm=mpl_colors.Normalize(0, top), cmap=cmap)
  fig.colorbar(mappable, ax=axes[0].tolist(), fraction=0.04, pad=0.02,
               label=label)
  if title:
    fig.suptitle(title, fontsize=11)
  return grids.save_figure(fig, path, dpi=dpi)
