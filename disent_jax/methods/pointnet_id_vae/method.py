"""Paper 002 as a harness method: PointNet VAE + identity discriminator.

Training (one `train_step`, jitted once by the harness):
  * steps < `disc_pretrain_steps`: D_ID alone learns same/other identity on
    real pairs (X, X_same) -> 1 and (X, X_other) -> 0 (paper Fig. 3, top);
  * afterwards, jointly: the VAE minimises eq. (7); D_ID then learns
    (X, X_same) -> 1 and (X, X_id predicted) -> 0 (eq. 6/8).
Without the discriminator (`-id-dis`), only the VAE is trained.
"""

import functools
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from disent_jax.data import pipeline
from disent_jax.methods.pointnet_id_vae import data as data_lib
from disent_jax.methods.pointnet_id_vae import evaluation
from disent_jax.methods.pointnet_id_vae import model as model_lib
from disent_jax.losses import adversarial
from disent_jax.losses import geometry
from disent_jax.losses import probabilistic
from disent_jax.losses import reconstruction
from disent_jax.methods.pointnet_id_vae import objective
from disent_jax.ops import graph
from disent_jax.ops import laplacian
from disent_jax.train import step_utils
from disent_jax.train.method import DataContext, Method


def _optimizer(o: ml_collections.ConfigDict, steps_per_epoch: float
               ) -> optax.GradientTransformation:
  """Adam with L2 weight decay and a 0.7 step decay every 50 epochs."""
  schedule = optax.exponential_decay(
      o.learning_rate,
      transition_steps=max(1, int(round(o.decay_every_epochs *
                                        steps_per_epoch))),
      decay_rate=o.decay_rate, staircase=True)
  return optax.chain(optax.add_decayed_weights(o.weight_decay),
                     optax.adam(schedule))


class _Setup:
  """Everything `build` derives from the config and the data once."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.sources = data_lib.make_sources(config)
    mean, center, scale = data_lib.normalization(
        self.sources.train, max_examples=config.data.stats_examples)
    unit = float(config.data.get("unit_mm", 0.0))
    if unit < 0:
      raise ValueError(f"config data.unit_mm={unit}: expected 0 (the mean "
                       "face's RMS radius) or a positive unit in mm")
    if unit > 0:
      # The public code's units (e.g. CoMA: 1 = 260 mm): the loss weights
      # keep the balance they were chosen for.
      scale = unit
    self.center, self.scale = center, scale
    self.mean_n = (mean - center) / scale  # Normalised mean face.
    self.faces = self.sources.faces
    self.num_vertices = int(mean.shape[0])
    self.steps_per_epoch = len(self.sources.train) / config.batch_size
    # Decoder outputs in the data's units: times the training faces' RMS
    # offset from the mean face (normalised); 1 is the paper's output.
    self.output_scale = 1.0
    if config.model.get("scale_outputs", False):
      self.output_scale = offset_rms(
          self.sources.train, mean,
          max_examples=config.data.stats_examples) / scale
    # The public code's no-GT expression target: per-expression average
    # offsets from the mean face (normalised), read only when weighted.
    self.expression_offsets = None
    if config.loss.get("expression_prior", 0.0) > 0:
      self.expression_offsets = data_lib.expression_offsets(
          self.sources.train, mean) / scale
    # L_lap: Laplace-Beltrami (cotangent) operator of the mean face.
    self.laplacian = graph.graph_operator(
        laplacian.cotangent_laplacian_matrix(mean.astype(np.float64),
                                            self.faces))

  def normalize(self, vertices: jax.Array) -> jax.Array:
    return (vertices - self.center) / self.scale

  def denormalize(self, x: jax.Array) -> jax.Array:
    return x * self.scale + self.center


def build(config: ml_collections.ConfigDict) -> Method:
  """The method's pure functions (see configs/pointnet_id_vae.py)."""
  s = _Setup(config)
  m = config.model
  vae = model_lib.IdExpVAE(num_vertices=s.num_vertices,
                           id_latent=m.id_latent, exp_latent=m.exp_latent,
                           widths=tuple(m.widths),
                           decoder_hidden=tuple(m.decoder_hidden),
                           input_transform=m.input_transform,
                           output_scale=s.output_scale)
  disc = model_lib.IdentityDiscriminator(widths=tuple(m.disc_widths),
                                         head=tuple(m.disc_head),
                                         dropout_rate=m.dropout,
                                         input_transform=m.disc_tnet)
  use_disc = bool(config.use_discriminator)
  weights = objective.Weights.from_config(config.loss)
  if not use_disc:
    weights = objective.Weights(**{**weights.__dict__, "adversarial": 0.0})
  tx = _optimizer(config.optim, s.steps_per_epoch)
  mean_n = jnp.asarray(s.mean_n)

  def init(key: jax.Array, batch: Mapping[str, jax.Array]) -> dict[str, Any]:
    k_vae, k_lat, k_disc, k_drop = jax.random.split(key, 4)
    x = s.normalize(batch["vertices"])
    vae_vars = vae.init({"params": k_vae, "latent": k_lat}, x, train=False)
    params = {"vae": vae_vars["params"]}
    stats = {"vae": vae_vars["batch_stats"]}
    opt = {"vae": tx.init(vae_vars["params"])}
    if use_disc:
      disc_vars = disc.init({"params": k_disc, "dropout": k_drop}, x, x,
                            train=False)
      params["disc"] = disc_vars["params"]
      stats["disc"] = disc_vars["batch_stats"]
      opt["disc"] = tx.init(disc_vars["params"])
    return {"params": params, "batch_stats": stats, "opt_state": opt,
            "step": jnp.zeros((), jnp.int32)}

  def disc_apply(params, stats, face, candidate, key):
    """"Same identity" logits [B], updated batch stats, T-Net penalty."""
    (logits, transform), updates = disc.apply(
        {"params": params, "batch_stats": stats}, face, candidate,
        train=True, rngs={"dropout": key}, mutable=["batch_stats"])
    penalty = jnp.mean(geometry.orthogonality_regularizer(transform))
    return logits, updates["batch_stats"], penalty

  def disc_update(state, face, real, fake, key):
    """One D_ID step on (face, real) -> 1 and (face, fake) -> 0."""
    k1, k2 = jax.random.split(key)

    def loss_fn(p):
      real_logits, st, pen1 = disc_apply(p, state["batch_stats"]["disc"],
                                         face, real, k1)
      fake_logits, st, pen2 = disc_apply(p, st, face, fake, k2)
      loss = (objective.discriminator_loss(real_logits, fake_logits) +
              config.loss.tnet * 0.5 * (pen1 + pen2))
      return loss, (st, adversarial.discriminator_accuracy(real_logits,
                                                           fake_logits))

    (loss, (st, acc)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state["params"]["disc"])
    updates, opt = tx.update(grads, state["opt_state"]["disc"],
                             state["params"]["disc"])
    params = optax.apply_updates(state["params"]["disc"], updates)
    metrics = {"d_loss": loss, "d_accuracy": acc,
               **step_utils.grad_metrics(grads, params, prefix="disc/")}
    return params, st, opt, metrics

  def vae_loss(params, state, batch, key, kl_factor):
    k_lat, k_lat2, k_drop = jax.random.split(key, 3)
    x = s.normalize(batch["vertices"])
    (enc, id_off, exp_off), upd = vae.apply(
        {"params": params, "batch_stats": state["batch_stats"]["vae"]}, x,
        train=True, rngs={"latent": k_lat}, mutable=["batch_stats"])
    x_id = mean_n + id_off
    recon = reconstruction.mse(x_id + exp_off, x)
    kl_id = jnp.mean(probabilistic.gaussian_kl(enc.identity.mean,
                                               enc.identity.log_variance))
    kl_exp = jnp.mean(probabilistic.gaussian_kl(enc.expression.mean,
                                                enc.expression.log_variance))
    enc2, upd = vae.apply(
        {"params": params, "batch_stats": upd["batch_stats"]}, x_id,
        train=True, rngs={"latent": k_lat2}, mutable=["batch_stats"],
        method=model_lib.IdExpVAE.encode)
    neu = reconstruction.l1(enc.identity.sample, enc2.identity.sample)
    lap = jnp.mean(geometry.laplacian_smoothness(x_id, s.laplacian))
    ne_gt = reconstruction.mse(x_id, s.normalize(batch["neutral"]))
    exp_prior = jnp.zeros(())
    if s.expression_offsets is not None:
      exp_prior = objective.expression_prior(
          exp_off, jnp.asarray(s.expression_offsets), batch["expression"])
    adv = jnp.zeros(())
    if use_disc:
      fake_logits, _, _ = disc_apply(state["params"]["disc"],
                                     state["batch_stats"]["disc"], x, x_id,
                                     k_drop)
      adv = adversarial.nonsaturating_generator_loss(fake_logits)
    total = (weights.recon * recon +
             kl_factor * (weights.kl_id * kl_id + weights.kl_exp * kl_exp)
             + weights.adversarial * adv + weights.neutral_code * neu
             + weights.laplacian * lap + weights.neutral_gt * ne_gt
             + weights.expression_prior * exp_prior)
    terms = {"recon": recon, "kl_id": kl_id, "kl_exp": kl_exp, "adv": adv,
             "neu": neu, "lap": lap, "ne_gt": ne_gt, "exp_prior": exp_prior,
             "kl_factor": kl_factor}
    return total, (upd["batch_stats"], x_id, terms)

  def joint_step(state, batch, key):
    k_vae, k_disc = jax.random.split(key)
    epoch = state["step"].astype(jnp.float32) / s.steps_per_epoch
    kl_factor = probabilistic.linear_decay(
        epoch, duration=config.loss.kl_anneal_epochs)
    (loss, (vae_stats, x_id, terms)), grads = jax.value_and_grad(
        vae_loss, has_aux=True)(state["params"]["vae"], state, batch, k_vae,
                                kl_factor)
    updates, vae_opt = tx.update(grads, state["opt_state"]["vae"],
                                 state["params"]["vae"])
    vae_params = optax.apply_updates(state["params"]["vae"], updates)
    metrics = {"loss": loss, **terms,
               **step_utils.grad_metrics(grads, vae_params)}
    new = {"params": {**state["params"], "vae": vae_params},
           "batch_stats": {**state["batch_stats"], "vae": vae_stats},
           "opt_state": {**state["opt_state"], "vae": vae_opt},
           "step": state["step"] + 1}
    if use_disc:
      x = s.normalize(batch["vertices"])
      d_params, d_stats, d_opt, d_metrics = disc_update(
          state, x, s.normalize(batch["same_vertices"]),
          jax.lax.stop_gradient(x_id), k_disc)
      new["params"]["disc"] = d_params
      new["batch_stats"]["disc"] = d_stats
      new["opt_state"]["disc"] = d_opt
      metrics.update(d_metrics)
    return new, metrics

  def pretrain_step(state, batch, key):
    x = s.normalize(batch["vertices"])
    d_params, d_stats, d_opt, d_metrics = disc_update(
        state, x, s.normalize(batch["same_vertices"]),
        s.normalize(batch["other_vertices"]), key)
    new = {"params": {**state["params"], "disc": d_params},
           "batch_stats": {**state["batch_stats"], "disc": d_stats},
           "opt_state": {**state["opt_state"], "disc": d_opt},
           "step": state["step"] + 1}
    return new, d_metrics

  def train_step(state, batch, key):
    if not use_disc or config.disc_pretrain_steps <= 0:
      return joint_step(state, batch, key)
    joint_state, joint_metrics = jax.eval_shape(joint_step, state, batch, key)
    del joint_state

    def pretrain_padded(st, b, k):
      new, metrics = pretrain_step(st, b, k)
      full = {k2: jnp.zeros(v.shape, v.dtype)
              for k2, v in joint_metrics.items()}
      full.update(metrics)
      full["loss"] = metrics["d_loss"]
      return new, full

    return jax.lax.cond(state["step"] < config.disc_pretrain_steps,
                        pretrain_padded, joint_step, state, batch, key)

  @jax.jit
  def eval_step(state, batch):
    """Predictions in mm: full face, identity (neutral), expression, codes."""
    x = s.normalize(batch["vertices"])
    enc, id_off, exp_off = vae.apply(
        {"params": state["params"]["vae"],
         "batch_stats": state["batch_stats"]["vae"]}, x, train=False)
    x_id = mean_n + id_off
    return {"face": s.denormalize(x_id + exp_off),
            "identity": s.denormalize(x_id),
            "expression": exp_off * s.scale,
            "z_id": enc.identity.mean, "z_exp": enc.expression.mean}

  def data(ctx: DataContext):
    if ctx.split == "train":
      source = data_lib.PairedSource(s.sources.train, seed=config.seed)
      return pipeline.batched_iterator(
          source, batch_size=ctx.config.batch_size, seed=config.seed,
          process_index=ctx.process_index, process_count=ctx.process_count)
    return pipeline.batched_iterator(
        s.sources.test, batch_size=ctx.config.batch_size, seed=0,
        shuffle=False, num_epochs=1, drop_remainder=ctx.process_count > 1,
        process_index=ctx.process_index, process_count=ctx.process_count)

  def evaluate(state, dataset: Iterable[Mapping[str, jax.Array]]
               ) -> dict[str, float]:
    return evaluation.evaluate(eval_step, state, dataset,
                               config=config)

  def report(state, metrics, workdir) -> dict[str, str]:
    return evaluation.figures(eval_step, state, s.sources.test, s.faces,
                              workdir, config=config)

  apps = {
      "transfer_expression": functools.partial(
          _transfer_expression, vae=vae, setup=s),
      "interpolate": functools.partial(_interpolate, vae=vae, setup=s),
      "encode": functools.partial(_encode, vae=vae, setup=s),
  }
  return Method(name="pointnet_id_vae", init=init, train_step=train_step,
                eval_step=eval_step, evaluate=evaluate, data=data,
                report=report, applications=apps)


def offset_rms(source: Any, mean: np.ndarray, *, max_examples: int
               ) -> float:
  """RMS per-coordinate offset (mm) of faces [V, 3] from the mean face.

  Args:
    source: examples with "vertices" [V, 3] (mm).
    mean: [V, 3] the mean face (mm).
    max_examples: use at most this many, evenly spaced.
  """
  n = min(len(source), max_examples)
  idx = np.linspace(0, len(source) - 1, n).round().astype(int)
  sq = [np.mean(np.square(np.asarray(source[int(i)]["vertices"],
                                     np.float64) - mean)) for i in idx]
  return max(float(np.sqrt(np.mean(sq))), 1e-6)


def _variables(state):
  return {"params": state["params"]["vae"],
          "batch_stats": state["batch_stats"]["vae"]}


def _encode(state, vertices: jax.Array, *, vae, setup) -> tuple[jax.Array,
                                                              jax.Array]:
  """Posterior means (z_id [B, d_id], z_exp [B, d_exp]) of faces [B, V, 3]."""
  enc = vae.apply(_variables(state), setup.normalize(jnp.asarray(vertices)),
                  train=False, method=model_lib.IdExpVAE.encode)
  return enc.identity.mean, enc.expression.mean


def _decode(state, z_id, z_exp, *, vae, setup) -> jax.Array:
  variables = _variables(state)
  id_off = vae.apply(variables, z_id,
                     method=model_lib.IdExpVAE.decode_identity)
  exp_off = vae.apply(variables, z_exp,
                      method=model_lib.IdExpVAE.decode_expression)
  return setup.denormalize(jnp.asarray(setup.mean_n) + id_off + exp_off)


def _transfer_expression(state, identity_faces: jax.Array,
                         expression_faces: jax.Array, *, vae, setup
                         ) -> jax.Array:
  """Faces [B, V, 3] (mm) with the identity of the first and the expression
  of the second input (swap of z_exp, paper §IV-G)."""
  z_id, _ = _encode(state, identity_faces, vae=vae, setup=setup)
  _, z_exp = _encode(state, expression_faces, vae=vae, setup=setup)
  return _decode(state, z_id, z_exp, vae=vae, setup=setup)


def _interpolate(state, face_a: jax.Array, face_b: jax.Array, *,
                 steps: int = 5, factor: str = "identity", vae, setup
                 ) -> jax.Array:
  """Interpolates one factor of two faces [V, 3] -> [steps, V, 3] (mm).

  `factor` is "identity" (z_id from a to b, z_exp of a), "expression"
  (z_exp from a to b, z_id of a) or "both".
  """
  if factor not in ("identity", "expression", "both"):
    raise ValueError(f"factor must be identity, expression or both, got "
                     f"{factor!r}")
  z_id, z_exp = _encode(state, jnp.stack([face_a, face_b]), vae=vae,
                        setup=setup)
  t = jnp.linspace(0.0, 1.0, steps)[:, None]
  lerp = lambda z: z[0] * (1 - t) + z[1] * t
  zi = lerp(z_id) if factor != "expression" else jnp.broadcast_to(
      z_id[0], (steps,) + z_id.shape[1:])
  ze = lerp(z_exp) if factor != "identity" else jnp.broadcast_to(
      z_exp[0], (steps,) + z_exp.shape[1:])
  return _decode(state, zi, ze, vae=vae, setup=setup)
