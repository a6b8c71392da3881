"""Tests for disent_jax.ops.graph against dense numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from disent_jax.ops import graph

FORMATS = ("dense", "ell", "segment", "bcoo")


def _sphere(subdivisions=1):
  m = trimesh.creation.icosphere(subdivisions=subdivisions)
  return np.asarray(m.vertices), np.asarray(m.faces)


def _dense_adjacency(faces, v):
  a = np.zeros((v, v))
  for f in faces:
    for i in range(3):
      p, q = f[i], f[(i + 1) % 3]
      a[p, q] = a[q, p] = 1.0
  return a


def _chebyshev_matrices(lap, order):
  """Explicit T_k(L) for k < order by the matrix recursion."""
  eye = np.eye(lap.shape[0])
  mats = [eye, lap]
  for _ in range(2, order):
    mats.append(2 * lap @ mats[-1] - mats[-2])
  return mats[:order]


def test_edges_and_adjacency_match_loops_and_trimesh():
  verts, faces = _sphere(1)
  v = verts.shape[0]
  edges = graph.edges_from_faces(faces, num_vertices=v)
  expected = np.unique(np.sort(trimesh.Trimesh(verts, faces).edges_unique,
                               axis=1), axis=0)
  np.testing.assert_array_equal(edges, expected)
  adj = graph.adjacency_from_faces(faces, num_vertices=v).toarray()
  np.testing.assert_array_equal(adj, _dense_adjacency(faces, v))


def test_adjacency_rejects_out_of_range_faces():
  with pytest.raises(ValueError, match="num_vertices=3"):
    graph.adjacency_from_faces(np.array([[0, 1, 5]]), num_vertices=3)


@pytest.mark.parametrize("kind", ["combinatorial", "random_walk", "symmetric"])
def test_laplacians_match_numpy_formulas(kind):
  _, faces = _sphere(1)
  v = 43  # 42 sphere vertices plus one isolated vertex.
  a = _dense_adjacency(faces, v)
  deg = a.sum(1)
  inv = np.where(deg > 0, 1 / np.maximum(deg, 1e-30), 0)
  expected = {
      "combinatorial": np.diag(deg) - a,
      "random_walk": np.eye(v) - inv[:, None] * a,
      "symmetric": np.eye(v) - np.sqrt(inv)[:, None] * a * np.sqrt(inv),
  }[kind]
  got = graph.laplacian(graph.adjacency_from_faces(faces, num_vertices=v),
                        kind=kind).toarray()
  np.testing.assert_allclose(got, expected, atol=1e-12)
  with pytest.raises(ValueError, match="unknown Laplacian"):
    graph.laplacian(a, kind="bogus")


def test_power_iteration_lambda_max_matches_eigvalsh():
  _, faces = _sphere(2)
  adj = graph.adjacency_from_faces(faces, num_vertices=162)
  for kind in ("combinatorial", "symmetric"):
    lap = graph.laplacian(adj, kind=kind)
    exact = np.linalg.eigvalsh(lap.toarray()).max()
    est = graph.lambda_max_power_iteration(lap, num_iterations=5000,
                                           tol=1e-12)
    assert est <= exact + 1e-9
    np.testing.assert_allclose(est, exact, rtol=2e-3)


def test_scaled_laplacian_sym_lambda2_is_negative_normalised_adjacency():
  _, faces = _sphere(1)
  a = _dense_adjacency(faces, 42)
  d = 1 / np.sqrt(a.sum(1))
  lap = graph.laplacian(a, kind="symmetric")
  got = graph.scaled_laplacian(lap, lambda_max=2.0).toarray()
  np.testing.assert_allclose(got, -d[:, None] * a * d, atol=1e-12)
  # Estimated lambda_max: the spectrum of L~ lies in [-1, 1].
  est = graph.scaled_laplacian(lap).toarray()
  eig = np.linalg.eigvalsh(est)
  assert eig.min() >= -1 - 1e-9 and abs(eig.max() - 1) < 1e-3


@pytest.mark.parametrize("fmt", FORMATS)
def test_operator_formats_store_the_matrix(fmt):
  rng = np.random.default_rng(0)
  _, faces = _sphere(1)
  lap = graph.laplacian(graph.adjacency_from_faces(faces, num_vertices=42),
                        kind="random_walk").toarray()
  lap = lap * (1 + 0.1 * rng.random(lap.shape))  # Non-symmetric weights.
  op = graph.graph_operator(lap, format=fmt)
  assert op.format == fmt and not op.symmetric
  np.testing.assert_allclose(op.todense(), lap, rtol=1e-6, atol=1e-6)
  x = rng.standard_normal((2, 3, 42, 5)).astype(np.float32)
  got = jax.jit(graph.apply_operator)(jnp.asarray(x), op)
  np.testing.assert_allclose(got, np.einsum("uv,abvc->abuc", lap, x),
                             rtol=1e-5, atol=1e-5)


def test_auto_format_picks_dense_for_small_graphs():
  _, small = _sphere(1)
  assert graph.chebyshev_operator(small, num_vertices=42).format == "dense"
  _, big = _sphere(4)
  assert graph.chebyshev_operator(big, num_vertices=2562).format == "ell"
  with pytest.raises(ValueError, match="unknown operator format"):
    graph.chebyshev_operator(small, num_vertices=42, format="csr")


@pytest.mark.parametrize("fmt", FORMATS)
def test_chebyshev_basis_matches_explicit_and_spectral_tk(fmt):
  rng = np.random.default_rng(1)
  _, faces = _sphere(1)
  adj = graph.adjacency_from_faces(faces, num_vertices=42)
  lap_t = graph.scaled_laplacian(graph.laplacian(adj, kind="symmetric"),
                                 lambda_max=2.0).toarray()
  op = graph.graph_operator(lap_t, format=fmt)
  x = rng.standard_normal((3, 42, 4)).astype(np.float32)
  got = np.asarray(graph.chebyshev_basis(jnp.asarray(x), op, order=6))
  mats = _chebyshev_matrices(lap_t, 6)
  # Closed form: T_k(L~) = U cos(k arccos(lambda)) U^T.
  lam, u = np.linalg.eigh(lap_t)
  theta = np.arccos(np.clip(lam, -1, 1))
  for k in range(6):
    spectral = (u * np.cos(k * theta)) @ u.T
    np.testing.assert_allclose(mats[k], spectral, atol=1e-9)
    np.testing.assert_allclose(got[k], np.einsum("uv,bvc->buc", mats[k], x),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["symmetric", "random_walk"])
def test_chebyshev_conv_value_and_gradient_match_numpy(fmt, kind):
  rng = np.random.default_rng(2)
  _, faces = _sphere(1)
  adj = graph.adjacency_from_faces(faces, num_vertices=42)
  lap_t = graph.scaled_laplacian(graph.laplacian(adj, kind=kind),
                                 lambda_max=2.0).toarray()
  op = graph.graph_operator(lap_t, format=fmt)
  assert op.symmetric == (kind == "symmetric")
  k, c_in, c_out = 4, 3, 5
  x = rng.standard_normal((2, 42, c_in)).astype(np.float32)
  w = rng.standard_normal((k, c_in, c_out)).astype(np.float32)
  cot = rng.standard_normal((2, 42, c_out)).astype(np.float32)
  mats = _chebyshev_matrices(lap_t, k)
  expected = sum(np.einsum("uv,bvc,cd->bud", mats[i], x, w[i])
                 for i in range(k))
  fn = jax.jit(graph.chebyshev_conv)
  np.testing.assert_allclose(fn(jnp.asarray(x), op, jnp.asarray(w)), expected,
                             rtol=1e-4, atol=1e-4)
  # d/dx sum(cot * y) = sum_k T_k^T cot W_k^T; d/dW_k = (T_k x)^T cot.
  gx, gw = jax.grad(
      lambda x, w: jnp.sum(graph.chebyshev_conv(x, op, w) * cot),
      argnums=(0, 1))(jnp.asarray(x), jnp.asarray(w))
  exp_gx = sum(np.einsum("vu,bvd,cd->buc", mats[i], cot, w[i])
               for i in range(k))
  exp_gw = np.stack([np.einsum("uv,bvc,bud->cd", mats[i], x, cot)
                     for i in range(k)])
  np.testing.assert_allclose(gx, exp_gx, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(gw, exp_gw, rtol=1e-4, atol=2e-4)


def test_chebyshev_conv_is_permutation_equivariant():
  rng = np.random.default_rng(3)
  _, faces = _sphere(2)
  v = 162
  perm = rng.permutation(v)  # new vertex i is old vertex perm[i]
  inverse = np.argsort(perm)
  op = graph.chebyshev_operator(faces, num_vertices=v, format="ell")
  op_perm = graph.chebyshev_operator(inverse[faces], num_vertices=v,
                                     format="ell")
  x = rng.standard_normal((2, v, 3)).astype(np.float32)
  w = rng.standard_normal((6, 3, 4)).astype(np.float32) * 0.3
  y = graph.chebyshev_conv(jnp.asarray(x), op, jnp.asarray(w))
  y_perm = graph.chebyshev_conv(jnp.asarray(x[:, perm]), op_perm,
                                jnp.asarray(w))
  np.testing.assert_allclose(y_perm, np.asarray(y)[:, perm], rtol=1e-5,
                             atol=1e-5)


def test_shape_errors():
  _, faces = _sphere(1)
  op = graph.chebyshev_operator(faces, num_vertices=42)
  with pytest.raises(ValueError, match="V=42"):
    graph.apply_operator(jnp.zeros((41, 3)), op)
  with pytest.raises(ValueError, match="kernel must be"):
    graph.chebyshev_conv(jnp.zeros((42, 3)), op, jnp.zeros((6, 2, 4)))
  with pytest.raises(ValueError, match="K must be >= 1"):
    graph.chebyshev_basis(jnp.zeros((42, 3)), op, order=0)
  with pytest.raises(ValueError, match="lambda_max must be positive"):
    graph.scaled_laplacian(np.eye(3), lambda_max=0.0)
