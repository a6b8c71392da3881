"""Tests for disent_jax.ops.laplacian (numpy/scipy/trimesh references)."""

import jax
import jax.numpy as jnp
import numpy as np
import trimesh

from disent_jax.ops import graph
from disent_jax.ops import laplacian

from testutil.meshes import jittered_grid as _jittered_grid
from testutil.meshes import sphere as _sphere


def _cot_laplacian_reference(verts, faces):
  """Dense cotangent matrix from the corner angles (arccos, 1 / tan)."""
  v = verts.shape[0]
  lap = np.zeros((v, v))
  for f in faces:
    for c in range(3):
      i, j, k = f[c], f[(c + 1) % 3], f[(c + 2) % 3]
      e1, e2 = verts[j] - verts[i], verts[k] - verts[i]
      angle = np.arccos(np.dot(e1, e2) / np.linalg.norm(e1)
                        / np.linalg.norm(e2))
      w = 0.5 / np.tan(angle)
      lap[j, k] -= w
      lap[k, j] -= w
  lap -= np.diag(lap.sum(1))
  return lap


def test_cotangent_laplacian_is_symmetric_psd_with_constant_null_space():
  verts, faces = _sphere(2)
  rng = np.random.default_rng(0)
  verts = verts * (1 + 0.1 * rng.random((verts.shape[0], 1)))
  lap = laplacian.cotangent_laplacian_matrix(verts, faces).toarray()
  np.testing.assert_allclose(lap, _cot_laplacian_reference(verts, faces),
                             atol=1e-10)
  np.testing.assert_allclose(lap, lap.T, atol=1e-12)
  eig = np.linalg.eigvalsh(lap)
  assert eig.min() > -1e-9
  assert np.sum(eig < 1e-9) == 1  # Connected: only the constants.
  np.testing.assert_allclose(lap @ np.ones(verts.shape[0]), 0, atol=1e-12)


def test_cotangent_laplacian_dirichlet_energy_and_linear_precision():
  verts, faces, interior = _jittered_grid()
  lap = laplacian.cotangent_laplacian_matrix(verts, faces).toarray()
  rng = np.random.default_rng(1)
  f = rng.standard_normal(verts.shape[0])
  # f^T L f = sum_T area_T |grad f|^2 for the piecewise-linear f.
  energy = 0.0
  for tri in faces:
    p = verts[tri, :2]
    m = np.array([p[1] - p[0], p[2] - p[0]])
    grad = np.linalg.solve(m, f[tri[1:]] - f[tri[0]])
    energy += 0.5 * abs(np.linalg.det(m)) * grad @ grad
  np.testing.assert_allclose(f @ lap @ f, energy, rtol=1e-10)
  # A linear function is harmonic at interior vertices.
  linear = 0.3 * verts[:, 0] - 1.7 * verts[:, 1] + 2.0
  np.testing.assert_allclose((lap @ linear)[interior], 0, atol=1e-10)


def test_apply_cotangent_laplacian_matches_matrix_and_is_nan_free():
  verts, faces = _sphere(1)
  rng = np.random.default_rng(2)
  batch = (verts[None] * (1 + 0.2 * rng.random((2, 42, 1)))).astype(
      np.float32)
  x = rng.standard_normal((2, 42, 4)).astype(np.float32)
  got = jax.jit(laplacian.apply_cotangent_laplacian)(x, batch, faces)
  for b in range(2):
    lap = laplacian.cotangent_laplacian_matrix(batch[b], faces)
    np.testing.assert_allclose(got[b], lap @ x[b], rtol=1e-4, atol=1e-4)
  # A collapsed triangle gives finite values and gradients.
  degenerate = batch[0].copy()
  degenerate[faces[0, 1]] = degenerate[faces[0, 0]]
  g = jax.grad(lambda v: jnp.sum(
      laplacian.apply_cotangent_laplacian(v, v, faces) ** 2))(degenerate)
  assert np.isfinite(g).all()


def test_vertex_areas_sum_to_surface_area():
  verts, faces = _sphere(2)
  areas = laplacian.vertex_areas(verts.astype(np.float32), faces)
  np.testing.assert_allclose(float(areas.sum()),
                             trimesh.Trimesh(verts, faces).area, rtol=1e-5)


def test_row_normalised_cotangent_laplacian_has_unit_diagonal():
  verts, faces, interior = _jittered_grid()
  stiffness = laplacian.cotangent_laplacian_matrix(verts, faces).toarray()
  row = laplacian.cotangent_laplacian_matrix(
      verts, faces, normalization="row").toarray()
  np.testing.assert_allclose(row, stiffness / np.diag(stiffness)[:, None],
                             rtol=1e-12)
  np.testing.assert_allclose(np.diag(row), 1.0)
  np.testing.assert_allclose(row.sum(1), 0.0, atol=1e-12)
  # x_i minus the cotangent-weighted mean of the neighbours: zero for a
  # linear function at interior vertices, like the stiffness matrix.
  linear = 0.3 * verts[:, 0] - 1.7 * verts[:, 1] + 2.0
  np.testing.assert_allclose((row @ linear)[interior], 0, atol=1e-10)
  # The icosahedron: five equilateral corners (cot 60 deg) per vertex give
  # a stiffness diagonal of 5 / sqrt(3).
  ico = trimesh.creation.icosphere(subdivisions=0)
  reg = laplacian.cotangent_laplacian_matrix(ico.vertices, ico.faces)
  np.testing.assert_allclose(reg.diagonal(), 5 / np.sqrt(3), rtol=1e-12)


def test_uniform_laplacian_is_x_minus_neighbour_mean():
  verts, faces = _sphere(1)
  adj = graph.adjacency_from_faces(faces, num_vertices=42).toarray()
  nbr_mean = (adj @ verts) / adj.sum(1, keepdims=True)
  op = laplacian.uniform_laplacian_operator(faces, num_vertices=42)
  np.testing.assert_allclose(graph.apply_operator(verts.astype(np.float32),
                                                  op),
                             verts - nbr_mean, atol=1e-5)
