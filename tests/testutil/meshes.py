"""Small test meshes shared by the mesh-op and geometry-loss tests."""

import numpy as np
import trimesh


def sphere(subdivisions=2):
  m = trimesh.creation.icosphere(subdivisions=subdivisions)
  return np.asarray(m.vertices), np.asarray(m.faces)


def jittered_grid(n=7, seed=0):
  """A planar n x n grid in z = 0 with jittered interior vertices."""
  xs, ys = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
  verts = np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n)], 1)
  interior = ((verts[:, 0] > 0) & (verts[:, 0] < n - 1) & (verts[:, 1] > 0)
              & (verts[:, 1] < n - 1))
  rng = np.random.default_rng(seed)
  verts[interior, :2] += rng.uniform(-0.25, 0.25, (interior.sum(), 2))
  faces = []
  for i in range(n - 1):
    for j in range(n - 1):
      a, b = i * n + j, i * n + j + 1
      c, d = a + n, b + n
      faces += [[a, b, d], [a, d, c]]
  return verts, np.array(faces), interior
