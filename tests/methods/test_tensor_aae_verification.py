"""Paper 000's verification term E_veri (eq. 8) with SFace as 𝒱.

Needs the `[real]` extra (the SFace weights); skips with the reason
otherwise.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax import methods
from disent_jax.methods.tensor_aae import evaluation
from disent_jax.methods.tensor_aae import objective
from disent_jax.nets import align
from disent_jax.nets import sface
from disent_jax.train import loop

from testutil.harness import load_config

pytest.importorskip("onnx", reason="SFace needs 'onnx' (the [real] extra)")
try:
  sface.find_sface_file()
except FileNotFoundError as e:
  pytest.skip(str(e), allow_module_level=True)


@pytest.fixture(scope="module")
def net():
  return sface.load_sface()


def _faces(b=2, s=32, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.uniform(0.2, 0.8, size=(b, s, s, 3)).astype(np.float32)
  # Five points of a face filling the middle of the image.
  tpl = np.asarray(align.FIVE_POINT_TEMPLATE, np.float32) / 112.0
  five = np.broadcast_to(tpl * (s * 0.8) + s * 0.1, (b, 5, 2)).copy()
  return jnp.asarray(x), jnp.asarray(five)


def test_verification_loss_is_one_minus_cosine_of_aligned_embeddings(net):
  x, five = _faces()
  y = jnp.clip(x + 0.2 * jnp.sin(10 * x), 0, 1)
  loss = objective.verification_loss(net, x, y, five)
  ex = sface.embed(net, align.align_face(x, five))
  ey = sface.embed(net, align.align_face(y, five))
  cos = np.sum(ex * ey, -1) / (np.linalg.norm(ex, axis=-1)
                               * np.linalg.norm(ey, axis=-1))
  np.testing.assert_allclose(loss, np.mean(1 - cos), rtol=1e-4, atol=1e-6)
  assert float(loss) > 1e-3
  np.testing.assert_allclose(objective.verification_loss(net, x, x, five),
                             0.0, atol=1e-5)


def test_verification_gradient_reaches_the_reconstruction_only(net):
  x, five = _faces()
  y = jnp.clip(x + 0.2 * jnp.sin(10 * x), 0, 1)
  g_y, g_x, g_net = jax.grad(
      lambda y, x, n: objective.verification_loss(sface.frozen(n), x, y,
                                                  five),
      argnums=(0, 1, 2))(y, x, net)
  assert float(jnp.abs(g_y).max()) > 0
  # 𝒱(x) is a constant target and a frozen 𝒱 has no gradient.
  assert float(jnp.abs(g_x).max()) == 0
  assert all(float(jnp.abs(g).max()) == 0
             for g in jax.tree_util.tree_leaves(g_net.params))


def test_identity_cosines_are_one_for_the_image_itself(net):
  x, five = _faces(b=3)
  np.testing.assert_allclose(
      evaluation.identity_cosines(net, x, x, five), 1.0, atol=1e-5)
  other = evaluation.identity_cosines(net, x, x[::-1], five)
  assert other[0] < 0.999 and other[1] == pytest.approx(1.0, abs=1e-5)


def test_runlocal_with_verification_trains_it_after_the_warmup(
    tmp_path_factory):
  config = load_config("tensor_aae", "runlocal")
  config.progress_bar = False
  config.async_checkpointing = False
  config.eval.probe_identities = 0
  config.loss.verification = 0.1
  config.eval.sface_identity = "on"
  config.log_every_steps = 1
  config.data.cache_dir = str(tmp_path_factory.mktemp("taae_veri_data"))
  workdir = tmp_path_factory.mktemp("taae_veri")
  method = methods.load("tensor_aae").build(config)
  result = loop.train(config, str(workdir), method)
  rows = [json.loads(r) for r in
          (workdir / "metrics.jsonl").read_text().splitlines()]
  veri = [(r["adversarial_scale"], r["terms/verification"]) for r in rows
          if "terms/verification" in r]
  # Off (and not computed) during the warm-up, then a live term.
  warm = [v for scale, v in veri if scale == 0.0]
  after = [v for scale, v in veri if scale == 1.0]
  assert warm and all(v == 0.0 for v in warm), veri
  assert after and all(0.0 < v < 2.0 for v in after), veri
  # 𝒱's parameters ride in the state unchanged.
  fresh = sface.load_sface()
  for a, b in zip(jax.tree_util.tree_leaves(result.state["verifier"]),
                  jax.tree_util.tree_leaves(fresh.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  m = result.eval_metrics
  for key in ("identity/sface_cosine",
              "baseline_mean_image/identity/sface_cosine"):
    assert -1.0 <= m[key] <= 1.0, key
