"""Paper 003's networks and image formation (disent_jax.methods.gcn_recon)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.data import onthefly
from disent_jax.methods.gcn_recon import model as model_lib
from disent_jax.synthface import render as rnd
from disent_jax.synthface import world as world_lib


@pytest.fixture(scope="module")
def mesh():
  mm = onthefly.world_morphable("1k")
  return model_lib.MeshSetup.build(mm.mean, mm.faces, mm.landmarks,
                                   factors=(2, 2, 2, 2, 2))


@pytest.fixture(scope="module")
def tiny(mesh):
  enc = model_lib.ResNetEncoder(stage_widths=(8, 16), stage_blocks=(1, 1),
                                bottleneck=False, stem_width=8,
                                branch_hidden=16)
  net = model_lib.GcnReconstructor(mesh=mesh, encoder=enc,
                                   decoder_filters=(16, 16, 8, 8, 8), K=3)
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 32, 32, 3)),
                  jnp.float32)
  params = net.init(jax.random.PRNGKey(0), x)
  return net, params, x


def test_hierarchy_matches_the_spec_scaling(mesh):
  # Spec §6.2: 1k with factors (2, 2, 2, 2, 2) ends near 31 vertices.
  assert len(mesh.num_vertices) == 6
  assert 25 <= mesh.num_vertices[-1] <= 80
  assert mesh.num_vertices[0] == mesh.template.shape[0]


def test_codes_and_meshes_have_the_paper_sizes(tiny, mesh):
  net, params, x = tiny
  out = net.apply(params, x)
  sizes = {k: v.shape for k, v in out["codes"].items()}
  assert sizes == {"identity": (2, 128), "expression": (2, 64),
                   "pose": (2, 6), "light": (2, 27)}
  # Pose and light start at the prior: frontal, SynthFace framing, ambient.
  np.testing.assert_array_equal(out["codes"]["pose"], 0.0)
  np.testing.assert_array_equal(out["codes"]["light"], 0.0)
  v = mesh.template.shape[0]
  assert out["shape"].shape == (2, v, 3) and out["albedo"].shape == (2, v, 3)
  assert np.all((out["albedo"] > 0) & (out["albedo"] < 1))
  assert [s.shape[1] for s in out["skips"]] == [32, 16]
  # The decoders start at the template and a uniform mid-grey albedo.
  np.testing.assert_allclose(out["shape"], np.broadcast_to(
      mesh.template, out["shape"].shape), atol=1e-5)
  np.testing.assert_allclose(out["albedo"], 0.5, atol=1e-6)


def test_albedo_depends_on_identity_only(tiny):
  net, params, _ = tiny
  rng = np.random.default_rng(1)
  # Move the decoders off their zero-initialised last layers.
  params = jax.tree_util.tree_map(
      lambda p: p + 0.1 * rng.normal(size=p.shape).astype(p.dtype), params)
  c_id = jnp.asarray(rng.normal(size=(1, 128)), jnp.float32)
  e1, e2 = (jnp.asarray(rng.normal(size=(1, 64)), jnp.float32)
            for _ in range(2))
  a = net.apply(params, c_id, method=net.decode_albedo)
  s1 = net.apply(params, c_id, e1, method=net.decode_shape)
  s2 = net.apply(params, c_id, e2, method=net.decode_shape)
  assert not np.allclose(s1, s2)
  np.testing.assert_array_equal(
      a, net.apply(params, c_id, method=net.decode_albedo))


def test_render_reproduces_a_synthface_image_from_its_factors(mesh):
  """The c_pose / c_lgt parameterisation is SynthFace's image formation:
  the world's own shape, albedo, pose, light and camera jitter, written as
  codes, give back the world's image."""
  w = world_lib.world("1k")
  f = w.example_factors(0, 5, occluder_prob=0.0)
  params = w.identity(0, 2)
  size = 64
  bg = jnp.zeros((size, size, 3))
  ex = w.render_factors(params, f["expression"], f["pose"], f["sh"], bg,
                        jnp.int32(0), f["occluder_params"], f["scale"],
                        f["shift"], size=size)
  verts = ex["vertices"]
  # Our renderer rotates about the template's framing, the world about the
  # subject's: move the shape by the difference.
  shape = verts + (rnd.framing(jnp.asarray(mesh.template))
                   - rnd.framing(ex["neutral"]))
  albedo = w.albedo(params)
  pose = jnp.concatenate([f["pose"], jnp.log(f["scale"])[None], f["shift"]])
  light = (f["sh"].at[:, 0].add(-model_lib.AMBIENT_PRIOR)).reshape(27)
  out = model_lib.render(shape, albedo, pose, light, bg, mesh=mesh,
                         size=size)
  face = np.asarray(ex["face_mask"])
  assert face.mean() > 0.1
  np.testing.assert_allclose(np.asarray(out["image"])[face],
                             np.asarray(ex["image"])[face], atol=2e-3)
  np.testing.assert_allclose(out["landmarks_2d"], ex["landmarks_2d"],
                             atol=1e-3)


def test_render_is_differentiable_in_shape_pose_and_light(mesh):
  rng = np.random.default_rng(2)
  shape = jnp.asarray(mesh.template)
  albedo = jnp.full(shape.shape, 0.6)
  bg = jnp.asarray(rng.uniform(size=(32, 32, 3)), jnp.float32)
  target = jnp.asarray(rng.uniform(size=(32, 32, 3)), jnp.float32)

  def loss(s, pose, light):
    out = model_lib.render(s, albedo, pose, light, bg, mesh=mesh, size=32)
    return jnp.mean((out["image"] - target) ** 2) + jnp.mean(
        out["landmarks_2d"] ** 2) * 1e-4

  grads = jax.grad(loss, argnums=(0, 1, 2))(
      shape, jnp.zeros(6), jnp.zeros(27))
  for g in grads:
    assert np.all(np.isfinite(g)) and float(jnp.abs(g).max()) > 0
