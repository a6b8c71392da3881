"""Mesh export to .ply / .obj through trimesh, optionally colour-coded."""

import os
from typing import Optional

import numpy as np
import trimesh

from disent_jax.viz import mesh_render


def export_mesh(path: str, vertices, faces, *, vertex_colors=None,
                values=None, cmap: str = "jet",
                vmin: Optional[float] = None,
                vmax: Optional[float] = None) -> str:
  """Writes a triangle mesh; the format follows the suffix (.ply or .obj).

  Vertex order and count are kept exactly (no merging or re-ordering), so
  the file lines up with the arrays it came from.

  Args:
    path: output path ending in .ply or .obj.
    vertices: [V, 3] (mm).
    faces: [F, 3] int.
    vertex_colors: optional [V, 3] RGB in [0, 1] or uint8.
    values: optional [V] scalars (e.g. errors) turned into colours with
      `cmap` (takes precedence over `vertex_colors`).
    cmap: colour map for `values`.
    vmin: bottom of the colour scale (default min of `values`).
    vmax: top of the colour scale (default max).

  Returns:
    `path`.
  """
  suffix = os.path.splitext(path)[1].lower()
  if suffix not in (".ply", ".obj"):
    raise ValueError(f"path must end in .ply or .obj, got {path!r}.")
  v = np.asarray(vertices, np.float64)
  f = np.asarray(faces, np.int64)
  if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
    raise ValueError(
        f"vertices [V, 3] and faces [F, 3] needed, got {v.shape}, {f.shape}.")
  if f.size and (f.min() < 0 or f.max() >= v.shape[0]):
    raise ValueError(f"face indices must lie in [0, {v.shape[0]}).")
  colors = None
  if values is not None:
    colors = mesh_render.values_to_colors(values, cmap=cmap, vmin=vmin,
                                          vmax=vmax)
  elif vertex_colors is not None:
    colors = np.asarray(vertex_colors)
  if colors is not None:
    if colors.dtype != np.uint8:
      colors = np.round(np.clip(colors, 0, 1) * 255).astype(np.uint8)
    if colors.shape != (v.shape[0], 3):
      raise ValueError(f"colours must be [{v.shape[0]}, 3], got "
                       f"{colors.shape}.")
    colors = np.concatenate(
        [colors, np.full((v.shape[0], 1), 255, np.uint8)], -1)
  mesh = trimesh.Trimesh(vertices=v, faces=f, vertex_colors=colors,
                         process=False, validate=False)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  if suffix == ".obj":
    mesh.export(path, include_color=colors is not None, include_normals=False,
                include_texture=False)
  else:
    mesh.export(path)
  return path
