"""Tests for disent_jax.nn.mesh_autoencoder against a numpy forward pass."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from disent_jax.nn import mesh_autoencoder
from disent_jax.ops import graph
from disent_jax.ops import hierarchy


@functools.lru_cache(maxsize=None)
def _hierarchy(factors, subdivisions=3):
  m = trimesh.creation.icosphere(subdivisions=subdivisions)  # 642 vertices
  return hierarchy.build_hierarchy(np.asarray(m.vertices), np.asarray(m.faces),
                              factors=factors)


def _dense_ops(hier):
  out = []
  for v, f in zip(hier.vertices, hier.faces):
    adj = graph.adjacency_from_faces(f, num_vertices=v.shape[0]).toarray()
    d = 1 / np.sqrt(adj.sum(1))
    out.append(-d[:, None] * adj * d)
  return out


def _np_cheb(x, lap, kernel, bias):
  terms = [x, np.einsum("uv,bvc->buc", lap, x)]
  for _ in range(2, kernel.shape[0]):
    terms.append(2 * np.einsum("uv,bvc->buc", lap, terms[-1]) - terms[-2])
  return sum(np.einsum("bvc,cd->bvd", terms[k], kernel[k])
             for k in range(kernel.shape[0])) + bias


def test_coma_encoder_matches_numpy_forward():
  hier = _hierarchy((4, 4, 4, 4))
  assert hier.num_vertices == (642, 161, 41, 11, 3)
  ops = hierarchy.hierarchy_operators(hier)
  enc = mesh_autoencoder.MeshEncoder(ops, hier.down)
  x = np.random.default_rng(0).standard_normal((2, 642, 3)).astype(
      np.float32)
  params = jax.jit(enc.init)(jax.random.key(0), x)
  p = jax.tree_util.tree_map(np.asarray, params["params"])
  widths = [p[f"conv_{i}"]["kernel"].shape for i in range(4)]
  assert widths == [(6, 3, 16), (6, 16, 16), (6, 16, 16), (6, 16, 32)]
  assert p["to_latent"]["kernel"].shape == (3 * 32, 8)
  p = jax.tree_util.tree_map(lambda a: a + 0.05, p)  # non-zero biases
  got = jax.jit(enc.apply)({"params": p}, x)
  h = x
  for i, lap in enumerate(_dense_ops(hier)[:4]):
    h = np.maximum(_np_cheb(h, lap, p[f"conv_{i}"]["kernel"],
                            p[f"conv_{i}"]["bias"]), 0)
    down = hierarchy.sampling_matrix(hier.down[i], num_in=h.shape[1]).toarray()
    h = np.einsum("oi,bic->boc", down, h)
  expected = h.reshape(2, -1) @ p["to_latent"]["kernel"] + p["to_latent"][
      "bias"]
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_coma_decoder_matches_numpy_forward():
  hier = _hierarchy((4, 4, 4, 4))
  ops = hierarchy.hierarchy_operators(hier)
  dec = mesh_autoencoder.MeshDecoder(ops, hier.up)
  z = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
  params = jax.jit(dec.init)(jax.random.key(1), z)
  p = jax.tree_util.tree_map(lambda a: np.asarray(a) + 0.05,
                             params["params"])
  assert p["from_latent"]["kernel"].shape == (8, 3 * 32)
  got = jax.jit(dec.apply)({"params": p}, z)
  assert got.shape == (2, 642, 3)
  laps = _dense_ops(hier)
  h = (z @ p["from_latent"]["kernel"] + p["from_latent"]["bias"]).reshape(
      2, 3, 32)
  for step in range(4):
    level = 3 - step
    up = hierarchy.sampling_matrix(hier.up[level],
                              num_in=h.shape[1]).toarray()
    h = np.einsum("oi,bic->boc", up, h)
    h = np.maximum(_np_cheb(h, laps[level], p[f"conv_{step}"]["kernel"],
                            p[f"conv_{step}"]["bias"]), 0)
  expected = _np_cheb(h, laps[0], p["conv_out"]["kernel"],
                      p["conv_out"]["bias"])
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_gcn_recon_decoder_layout_of_paper_003():
  hier = _hierarchy((4, 4, 4, 4, 2), subdivisions=4)
  assert hier.num_vertices == (2562, 641, 161, 41, 11, 6)
  ops = hierarchy.hierarchy_operators(hier)
  dec = mesh_autoencoder.MeshDecoder(
      ops, hier.up, filters=mesh_autoencoder.GCN_RECON_DECODER_FILTERS)
  z = jnp.ones((1, 192))
  params = jax.eval_shape(dec.init, jax.random.key(2), z)["params"]
  # FC(l * 256) with l = 6 vertices after the last down-sampling.
  assert params["from_latent"]["kernel"].shape == (192, 6 * 256)
  shapes = [params[f"conv_{i}"]["kernel"].shape for i in range(5)]
  assert shapes == [(6, 256, 256), (6, 256, 128), (6, 128, 64),
                    (6, 64, 32), (6, 32, 16)]
  assert params["conv_out"]["kernel"].shape == (6, 16, 3)
  out = jax.eval_shape(dec.apply, {"params": params}, z)
  assert out.shape == (1, 2562, 3)


def test_autoencoder_step_is_finite():
  hier = _hierarchy((4, 4, 4, 4))
  ops = hierarchy.hierarchy_operators(hier)
  model = mesh_autoencoder.MeshAutoencoder(ops, hier.down, hier.up)
  x = np.random.default_rng(3).standard_normal((3, 642, 3)).astype(
      np.float32)

  @jax.jit
  def step(key, x):
    params = model.init(key, x)

    def loss(params):
      return jnp.mean(jnp.abs(model.apply(params, x) - x))

    value, grads = jax.value_and_grad(loss)(params)
    return value, grads, model.apply(params, x, method=model.encode)

  value, grads, z = step(jax.random.key(3), x)
  assert np.isfinite(value) and z.shape == (3, 8)
  leaves = jax.tree_util.tree_leaves(grads)
  assert all(np.isfinite(g).all() for g in leaves)
  assert all(np.abs(g).max() > 0 for g in leaves)


def test_encoder_checks_the_hierarchy_length():
  hier = _hierarchy((4, 4, 4, 4))
  enc = mesh_autoencoder.MeshEncoder(hierarchy.hierarchy_operators(hier)[:2],
                                     hier.down[:2])
  with pytest.raises(ValueError, match="need 4 operators"):
    enc.init(jax.random.key(0), jnp.zeros((1, 642, 3)))
