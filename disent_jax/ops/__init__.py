"""Pure differentiable math, no Flax: import once, use any submodule.

  multilinear: mode-n products, Khatri-Rao, n-way synthesis, HOSVD/HOOI,
    feature rotation (paper 000).
  sh_lighting: 9-band spherical-harmonics Lambertian shading.
  camera: rotations, weak-perspective / perspective projection, normals.
  raster: the differentiable triangle rasterizer.
  graph: mesh adjacency, graph Laplacians, Chebyshev filtering.
  mesh: mesh validation (`validate_mesh`, `MeshError`).
  laplacian: cotangent Laplace-Beltrami and uniform mesh Laplacians.
  hierarchy: quadric decimation, sampling matrices, CoMA-style hierarchies.
  pointwise: PointNet's last dense layer + ReLU + max-pool in one op.

  from disent_jax import ops
  ops.multilinear.khatri_rao([a, b])
"""

from disent_jax.ops import camera
from disent_jax.ops import graph
from disent_jax.ops import hierarchy
from disent_jax.ops import laplacian
from disent_jax.ops import mesh
from disent_jax.ops import multilinear
from disent_jax.ops import pointwise
from disent_jax.ops import raster
from disent_jax.ops import sh_lighting

__all__ = [
    "camera", "graph", "hierarchy", "laplacian", "mesh", "multilinear",
    "pointwise", "raster", "sh_lighting",
]
