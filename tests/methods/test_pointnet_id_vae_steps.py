"""Paper 002's pure step functions, tested directly."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.losses import adversarial
from disent_jax.methods.pointnet_id_vae import data as data_lib
from disent_jax.methods.pointnet_id_vae import method as method_lib
from disent_jax.methods.pointnet_id_vae import objective
from disent_jax.methods.pointnet_id_vae import steps
from disent_jax.ops import laplacian
from disent_jax.train import loop

from testutil.harness import load_config


@pytest.fixture(scope="module")
def parts():
  config = load_config("pointnet_id_vae", "runlocal,exp_prior=True")
  # pylint: disable=protected-access
  setup = method_lib._Setup(config)
  vae, disc = method_lib._networks(setup, config.model)
  # pylint: enable=protected-access
  vae_tx = method_lib.optimizer(1e-3, weight_decay=1e-4, decay_rate=1.0,
                                decay_every_steps=1)
  disc_tx = method_lib.optimizer(1e-3, weight_decay=0.0, decay_rate=1.0,
                                 decay_every_steps=1)
  source = data_lib.PairedSource(setup.sources.train, seed=0)
  rows = [source[i] for i in range(config.batch_size)]
  batch = {k: jnp.asarray(np.stack([r[k] for r in rows])) for k in rows[0]}
  state = steps.init_state(jax.random.key(0), batch, vae=vae, disc=disc,
                           vae_tx=vae_tx, disc_tx=disc_tx, frame=setup.frame)
  return dict(config=config, setup=setup, vae=vae, disc=disc, vae_tx=vae_tx,
              disc_tx=disc_tx, batch=batch, state=state)


def _same(a, b) -> bool:
  return all(bool(jnp.array_equal(x, y)) for x, y in
             zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_pretrain_step_updates_only_the_discriminator(parts):
  p = parts
  new, metrics = steps.pretrain_step(
      p["state"], p["batch"], jax.random.key(1), disc=p["disc"],
      disc_tx=p["disc_tx"], frame=p["setup"].frame, tnet_weight=0.0)
  assert _same(new["params"]["vae"], p["state"]["params"]["vae"])
  assert _same(new["opt_state"]["vae"], p["state"]["opt_state"]["vae"])
  assert not _same(new["params"]["disc"], p["state"]["params"]["disc"])
  assert int(new["step"]) == 1
  assert 0.0 <= float(metrics["d_accuracy"]) <= 1.0


def test_disc_loss_on_the_shuffled_batch_equals_the_two_halves(parts):
  """Without batch norm the mixed, shuffled batch gives eq. (6)'s mean BCE
  of the real and fake pairs scored separately."""
  p = parts
  frame = p["setup"].frame
  x = frame.normalize(p["batch"]["vertices"])
  real = frame.normalize(p["batch"]["same_vertices"])
  fake = frame.normalize(p["batch"]["other_vertices"])
  params = p["state"]["params"]["disc"]
  loss, (_, metrics) = steps.disc_loss(params, {}, x, real, fake,
                                       jax.random.key(3), disc=p["disc"],
                                       tnet_weight=0.0)
  key = jax.random.key(0)
  r, _, _ = steps.disc_logits(params, {}, x, real, key, disc=p["disc"])
  f, _, _ = steps.disc_logits(params, {}, x, fake, key, disc=p["disc"])
  want = 0.5 * (np.mean(np.logaddexp(0, -np.asarray(r))) +
                np.mean(np.logaddexp(0, np.asarray(f))))
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  np.testing.assert_allclose(metrics["d_accuracy"],
                             adversarial.discriminator_accuracy(r, f))


def test_discriminator_has_no_weight_decay(parts):
  """Zero gradients leave D_ID's parameters unchanged (no decay), while the
  VAE's optimizer decays its weights."""
  params = parts["state"]["params"]
  zeros = lambda t: jax.tree.map(jnp.zeros_like, t)
  for tx, p, moves in ((parts["disc_tx"], params["disc"], False),
                       (parts["vae_tx"], params["vae"], True)):
    updates, _ = tx.update(zeros(p), tx.init(p), p)
    moved = any(bool(jnp.any(u != 0)) for u in jax.tree.leaves(updates))
    assert moved == moves


def _zero_decoders(params):
  out = jax.tree_util.tree_map_with_path(
      lambda path, v: jnp.zeros_like(v) if any(
          "decoder" in str(k) for k in path) else v, params)
  return out


def test_vae_loss_terms_in_closed_form_with_zero_decoders(parts):
  """With both decoders zeroed, x_id is the mean face and the expression
  offset is 0: L_lap, L_ne-gt and the expression prior have closed forms."""
  p = parts
  frame = p["setup"].frame
  params = _zero_decoders(p["state"]["params"]["vae"])
  weights = objective.Weights.from_config(p["config"].loss)
  _, (_, x_id, terms) = steps.vae_loss(
      params, p["state"], p["batch"], jax.random.key(2), jnp.ones(()),
      vae=p["vae"], disc=p["disc"], weights=weights, frame=frame)
  mean = np.asarray(frame.mean_face, np.float64)
  np.testing.assert_allclose(x_id, np.broadcast_to(mean, x_id.shape),
                             atol=1e-6)
  # Row-normalised cotangent Laplacian of the mean face (mm), built here.
  mean_mm = mean * frame.scale + frame.center
  lap = laplacian.cotangent_laplacian_matrix(
      mean_mm, np.asarray(p["setup"].faces), normalization="row")
  delta = lap @ mean
  np.testing.assert_allclose(terms["lap"],
                             np.mean(np.sum(delta ** 2, -1)), rtol=1e-4)
  neutral = (np.asarray(p["batch"]["neutral"]) - frame.center) / frame.scale
  np.testing.assert_allclose(terms["ne_gt"], np.mean((mean - neutral) ** 2),
                             rtol=1e-4)
  # Expression prior: MSE of 0 to each example's label row of the table of
  # average offsets from the mean face (normalised).
  train = p["setup"].sources.train
  table = data_lib.expression_offsets(train, p["setup"].mean) / frame.scale
  labels = np.asarray(p["batch"]["expression"])
  np.testing.assert_allclose(terms["exp_prior"],
                             np.mean(table[labels].astype(np.float64) ** 2),
                             rtol=1e-4)
  assert float(terms["exp_prior"]) > 0


def test_train_step_switches_phase_at_the_pretrain_count(parts):
  p = parts
  joint = functools.partial(
      steps.joint_step, vae=p["vae"], disc=p["disc"], vae_tx=p["vae_tx"],
      disc_tx=p["disc_tx"],
      weights=objective.Weights.from_config(p["config"].loss),
      frame=p["setup"].frame, steps_per_epoch=10.0, kl_anneal_epochs=0.0,
      tnet_weight=0.0)
  pretrain = functools.partial(steps.pretrain_step, disc=p["disc"],
                               disc_tx=p["disc_tx"], frame=p["setup"].frame,
                               tnet_weight=0.0)
  step = jax.jit(functools.partial(steps.train_step, joint=joint,
                                   pretrain=pretrain, pretrain_steps=1))
  first, m1 = step(p["state"], p["batch"], jax.random.key(0))
  assert _same(first["params"]["vae"], p["state"]["params"]["vae"])
  second, m2 = step(first, p["batch"], jax.random.key(1))
  assert not _same(second["params"]["vae"], first["params"]["vae"])
  assert float(m1["recon"]) == 0.0 and float(m2["recon"]) > 0


def test_decoded_real_pairs_are_reconstructions_of_the_partner(parts):
  """disc_real="decoded": D_ID's update equals one on (X, VAE(X')) vs
  (X, X_id), with the VAE before the step; "scan" uses X' itself."""
  p = parts
  frame = p["setup"].frame
  weights = objective.Weights.from_config(p["config"].loss)
  key = jax.random.key(3)
  common = dict(vae=p["vae"], disc=p["disc"], vae_tx=p["vae_tx"],
                disc_tx=p["disc_tx"], weights=weights, frame=frame,
                steps_per_epoch=10.0, kl_anneal_epochs=0.0, tnet_weight=0.0)
  decoded, _ = steps.joint_step(p["state"], p["batch"], key,
                                disc_real="decoded", **common)
  scan, _ = steps.joint_step(p["state"], p["batch"], key, **common)
  assert _same(decoded["params"]["vae"], scan["params"]["vae"])
  assert not _same(decoded["params"]["disc"], scan["params"]["disc"])
  # The same D update by hand.
  k_vae, k_disc = jax.random.split(key)
  epoch_kl = jnp.float32(1.0)
  _, (_, x_id, _) = steps.vae_loss(
      p["state"]["params"]["vae"], p["state"], p["batch"], k_vae, epoch_kl,
      vae=p["vae"], disc=p["disc"], weights=weights, frame=frame)
  partner = frame.normalize(p["batch"]["same_vertices"])
  recon = steps.reconstruct(p["state"], partner, vae=p["vae"], frame=frame)
  want, _, _, _ = steps.disc_update(
      p["state"], frame.normalize(p["batch"]["vertices"]), recon, x_id,
      k_disc, disc=p["disc"], tx=p["disc_tx"], tnet_weight=0.0)
  for a, b in zip(jax.tree.leaves(decoded["params"]["disc"]),
                  jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # The reconstruction is the model's output, not the partner itself.
  assert float(jnp.max(jnp.abs(recon - partner))) > 1e-3
  with pytest.raises(ValueError, match="disc_real"):
    steps.joint_step(p["state"], p["batch"], key, disc_real="both", **common)


@pytest.mark.parametrize("encoder", ["pointnet", "chebconv"])
def test_a_small_config_learns(tmp_path, encoder):
  """After 400 VAE steps on 36 SynthFace subjects, unseen-subject E_rec is
  well below the mean-face baseline (what a model that learnt nothing
  gets): measured 0.61x (PointNet) and 0.47x (Chebyshev)."""
  config = load_config("pointnet_id_vae", "runlocal")
  config.data.num_subjects = 40
  config.data.num_test_subjects = 4
  config.data.frames = 2
  config.model.encoder = encoder
  config.model.cheb_factors = (4, 4)
  config.model.cheb_filters = (8, 16)
  config.model.scale_outputs = True
  config.model.decoder_hidden = (256,)  # runlocal's 32 cannot fit faces.
  config.batch_size = 16
  config.optim.learning_rate = 1e-3
  config.optim.disc_learning_rate = 1e-3
  config.total_steps = 400
  config.use_discriminator = False  # D_ID's own tests are above.
  config.log_every_steps = 100
  config.checkpoint_every_steps = 400
  config.progress_bar = False
  config.async_checkpointing = False
  method = method_lib.build(config)
  result = loop.train(config, str(tmp_path), method)
  m = result.eval_metrics
  assert m["E_rec/mean"] < 0.7 * m["baseline_mean_face/E_rec/mean"], m
