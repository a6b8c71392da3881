"""Tests for disent_jax.nn.chebconv (numpy reference, PyG parity)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from disent_jax.nn import chebconv
from disent_jax.ops import graph
from disent_jax.ops import hierarchy


def _sphere(subdivisions=2):
  m = trimesh.creation.icosphere(subdivisions=subdivisions)
  return np.asarray(m.vertices), np.asarray(m.faces)


def _scaled_sym_laplacian(faces, v):
  adj = np.zeros((v, v))
  for f in faces:
    for i in range(3):
      adj[f[i], f[(i + 1) % 3]] = adj[f[(i + 1) % 3], f[i]] = 1
  d = 1 / np.sqrt(adj.sum(1))
  return -d[:, None] * adj * d  # 2 L_sym / 2 - I


def _numpy_chebconv(x, lap, kernel, bias):
  terms = [x, np.einsum("uv,bvc->buc", lap, x)]
  for _ in range(2, kernel.shape[0]):
    terms.append(2 * np.einsum("uv,bvc->buc", lap, terms[-1]) - terms[-2])
  out = sum(np.einsum("bvc,cd->bvd", t, kernel[k])
            for k, t in enumerate(terms[:kernel.shape[0]]))
  return out + bias


@pytest.mark.parametrize("fmt", ["auto", "dense", "ell"])
def test_chebconv_matches_numpy_reference(fmt):
  _, faces = _sphere(2)
  v = 162
  op = graph.chebyshev_operator(faces, num_vertices=v, format=fmt)
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, v, 3)).astype(np.float32)
  layer = chebconv.ChebConv(features=5, K=6)
  params = layer.init(jax.random.key(0), x, op)
  assert params["params"]["kernel"].shape == (6, 3, 5)
  assert params["params"]["bias"].shape == (5,)
  params = jax.tree_util.tree_map(
      lambda p: p + 0.1 * jnp.ones_like(p), params)  # a non-zero bias
  got = jax.jit(layer.apply)(params, x, op)
  expected = _numpy_chebconv(x, _scaled_sym_laplacian(faces, v),
                             np.asarray(params["params"]["kernel"]),
                             np.asarray(params["params"]["bias"]))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_chebconv_is_permutation_equivariant():
  _, faces = _sphere(2)
  v = 162
  rng = np.random.default_rng(1)
  perm = rng.permutation(v)
  inverse = np.argsort(perm)
  op = graph.chebyshev_operator(faces, num_vertices=v)
  op_perm = graph.chebyshev_operator(inverse[faces], num_vertices=v)
  x = rng.standard_normal((3, v, 4)).astype(np.float32)
  layer = chebconv.ChebConv(features=6, K=4)
  params = layer.init(jax.random.key(1), x, op)
  y = layer.apply(params, x, op)
  y_perm = layer.apply(params, x[:, perm], op_perm)
  np.testing.assert_allclose(y_perm, np.asarray(y)[:, perm], rtol=1e-5,
                             atol=1e-5)


def test_chebconv_matches_pytorch_geometric():
  torch = pytest.importorskip("torch")
  pyg_nn = pytest.importorskip("torch_geometric.nn")
  verts, faces = _sphere(2)
  v = verts.shape[0]
  op = graph.chebyshev_operator(faces, num_vertices=v)
  rng = np.random.default_rng(2)
  x = rng.standard_normal((2, v, 3)).astype(np.float32)
  layer = chebconv.ChebConv(features=4, K=6)
  params = layer.init(jax.random.key(2), x, op)
  kernel = np.asarray(params["params"]["kernel"])
  bias = rng.standard_normal(4).astype(np.float32)
  params = {"params": {"kernel": kernel, "bias": bias}}
  ours = np.asarray(layer.apply(params, x, op))
  peer = pyg_nn.ChebConv(3, 4, K=6, normalization="sym")
  with torch.no_grad():
    for k, lin in enumerate(peer.lins):
      lin.weight.copy_(torch.from_numpy(kernel[k].T.copy()))
    peer.bias.copy_(torch.from_numpy(bias))
  edges = graph.edges_from_faces(faces)
  edge_index = torch.from_numpy(
      np.concatenate([edges, edges[:, ::-1]]).T.copy()).long()
  for b in range(2):
    with torch.no_grad():
      theirs = peer(torch.from_numpy(x[b]), edge_index,
                    lambda_max=torch.tensor(2.0)).numpy()
    np.testing.assert_allclose(ours[b], theirs, rtol=1e-4, atol=1e-4)


def test_pool_and_unpool_apply_the_sampling_matrices():
  verts, faces = _sphere(2)
  hier = hierarchy.build_hierarchy(verts, faces, factors=(4,))
  rng = np.random.default_rng(3)
  fine = rng.standard_normal((2, 162, 3)).astype(np.float32)
  down = chebconv.Pool(hier.down[0]).apply({}, fine)
  mat = hierarchy.sampling_matrix(hier.down[0], num_in=162).toarray()
  np.testing.assert_allclose(down, np.einsum("oi,bic->boc", mat, fine),
                             atol=1e-6)
  up = chebconv.Unpool(hier.up[0]).apply({}, np.asarray(down))
  mat = hierarchy.sampling_matrix(hier.up[0], num_in=41).toarray()
  np.testing.assert_allclose(up, np.einsum("oi,bic->boc", mat, down),
                             rtol=1e-5, atol=1e-6)
