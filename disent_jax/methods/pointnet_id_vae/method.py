"""Paper 002 as a harness method: PointNet VAE + identity discriminator.

`build` reads the data once (`_Setup`), makes the networks and optimizers,
and binds them into the pure functions of `steps` with `functools.partial`.
"""

import functools
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from disent_jax.data import pipeline
from disent_jax.methods.pointnet_id_vae import baselines as baselines_lib
from disent_jax.methods.pointnet_id_vae import data as data_lib
from disent_jax.methods.pointnet_id_vae import evaluation
from disent_jax.methods.pointnet_id_vae import model as model_lib
from disent_jax.methods.pointnet_id_vae import objective
from disent_jax.methods.pointnet_id_vae import steps as steps_lib
from disent_jax.ops import graph
from disent_jax.ops import hierarchy
from disent_jax.ops import laplacian
from disent_jax.train.method import DataContext, Method


def optimizer(learning_rate: float, *, weight_decay: float,
              decay_rate: float, decay_every_steps: int
              ) -> optax.GradientTransformation:
  """Adam with L2 weight decay (0: none) and a staircase step decay."""
  schedule = optax.exponential_decay(
      learning_rate, transition_steps=max(1, int(decay_every_steps)),
      decay_rate=decay_rate, staircase=True)
  adam = optax.adam(schedule)
  if weight_decay > 0:
    return optax.chain(optax.add_decayed_weights(weight_decay), adam)
  return adam


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
    self.mean = mean
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
    offsets = None
    if config.loss.get("expression_prior", 0.0) > 0:
      offsets = data_lib.expression_offsets(self.sources.train, mean) / scale
    # L_lap: the Laplace-Beltrami (cotangent) operator of the mean face,
    # row-normalised as the public code normalises its Laplacian.
    lap = graph.graph_operator(laplacian.cotangent_laplacian_matrix(
        mean.astype(np.float64), self.faces, normalization="row"))
    self.frame = steps_lib.Frame(center=center, scale=float(scale),
                             mean_face=(mean - center) / scale,
                             laplacian=lap, expression_offsets=offsets)


def _networks(s: _Setup, m: ml_collections.ConfigDict
              ) -> tuple[model_lib.IdExpVAE, model_lib.IdentityDiscriminator]:
  cheb = {}
  encoder_type = m.get("encoder", "pointnet")
  if encoder_type == "chebconv":
    h = hierarchy.build_hierarchy(s.mean, s.faces,
                                  factors=tuple(m.cheb_factors))
    cheb = {"cheb_operators": hierarchy.hierarchy_operators(h),
            "cheb_down": h.down, "cheb_filters": tuple(m.cheb_filters),
            "cheb_order": m.cheb_order}
  vae = model_lib.IdExpVAE(num_vertices=s.num_vertices,
                           id_latent=m.id_latent, exp_latent=m.exp_latent,
                           widths=tuple(m.widths),
                           decoder_hidden=tuple(m.decoder_hidden),
                           input_transform=m.input_transform,
                           output_scale=s.output_scale,
                           encoder_type=encoder_type, **cheb)
  disc = model_lib.IdentityDiscriminator(widths=tuple(m.disc_widths),
                                         head=tuple(m.disc_head),
                                         dropout_rate=m.dropout,
                                         input_transform=m.disc_tnet,
                                         batch_norm=m.disc_batch_norm)
  return vae, disc


def build(config: ml_collections.ConfigDict) -> Method:
  """The method's pure functions (see configs/pointnet_id_vae.py)."""
  s = _Setup(config)
  vae, disc = _networks(s, config.model)
  use_disc = bool(config.use_discriminator)
  weights = objective.Weights.from_config(config.loss)
  if not use_disc:
    weights = objective.Weights(**{**weights.__dict__, "adversarial": 0.0})
    disc = None
  o = config.optim
  decay_steps = int(round(o.decay_every_epochs * s.steps_per_epoch))
  vae_tx = optimizer(o.learning_rate, weight_decay=o.weight_decay,
                     decay_rate=o.decay_rate, decay_every_steps=decay_steps)
  disc_tx = optimizer(o.disc_learning_rate, weight_decay=o.disc_weight_decay,
                      decay_rate=o.decay_rate, decay_every_steps=decay_steps)
  tnet_weight = float(config.loss.tnet)
  joint = functools.partial(
      steps_lib.joint_step, vae=vae, disc=disc, vae_tx=vae_tx, disc_tx=disc_tx,
      weights=weights, frame=s.frame, steps_per_epoch=s.steps_per_epoch,
      kl_anneal_epochs=config.loss.kl_anneal_epochs, tnet_weight=tnet_weight,
      disc_real=config.model.get("disc_real", "scan"))
  pretrain = None
  if use_disc:
    pretrain = functools.partial(steps_lib.pretrain_step, disc=disc,
                                 disc_tx=disc_tx, frame=s.frame,
                                 tnet_weight=tnet_weight)
  train_step = functools.partial(steps_lib.train_step, joint=joint,
                                 pretrain=pretrain,
                                 pretrain_steps=config.disc_pretrain_steps)
  init = functools.partial(steps_lib.init_state, vae=vae, disc=disc,
                           vae_tx=vae_tx, disc_tx=disc_tx, frame=s.frame)
  eval_step = jax.jit(functools.partial(steps_lib.predict, vae=vae,
                                        frame=s.frame))

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
    return evaluation.evaluate(eval_step, state, dataset, config=config,
                               baselines=baselines())

  @functools.cache
  def baselines():
    # PCA of the model's size: both latents together.
    return baselines_lib.Baselines.fit(
        s.sources.train,
        components=config.model.id_latent + config.model.exp_latent,
        max_examples=config.data.stats_examples)

  def report(state, metrics, workdir) -> dict[str, str]:
    return evaluation.figures(eval_step, state, s.sources.test, s.faces,
                              workdir, config=config, metrics=metrics)

  apps = {
      "transfer_expression": functools.partial(
          _transfer_expression, vae=vae, frame=s.frame),
      "interpolate": functools.partial(_interpolate, vae=vae, frame=s.frame),
      "encode": functools.partial(_encode, vae=vae, frame=s.frame),
  }
  if use_disc:
    apps["identity_scores"] = functools.partial(_identity_scores, disc=disc,
                                                frame=s.frame)
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
  return steps_lib.variables(state["params"]["vae"],
                         state["batch_stats"].get("vae", {}))


def _encode(state, vertices: jax.Array, *, vae, frame) -> tuple[jax.Array,
                                                              jax.Array]:
  """Posterior means (z_id [B, d_id], z_exp [B, d_exp]) of faces [B, V, 3]."""
  enc = vae.apply(_variables(state), frame.normalize(jnp.asarray(vertices)),
                  train=False, method=model_lib.IdExpVAE.encode)
  return enc.identity.mean, enc.expression.mean


def _identity_scores(state, faces: jax.Array, candidates: jax.Array, *,
                     disc, frame) -> jax.Array:
  """D_ID's probability [B] that each pair of faces [B, V, 3] (mm) shares
  an identity (inference mode)."""
  d_vars = steps_lib.variables(state["params"]["disc"],
                               state["batch_stats"].get("disc", {}))
  logits, _ = disc.apply(d_vars, frame.normalize(jnp.asarray(faces)),
                         frame.normalize(jnp.asarray(candidates)),
                         train=False)
  return jax.nn.sigmoid(logits)


def _decode(state, z_id, z_exp, *, vae, frame) -> jax.Array:
  variables = _variables(state)
  id_off = vae.apply(variables, z_id,
                     method=model_lib.IdExpVAE.decode_identity)
  exp_off = vae.apply(variables, z_exp,
                      method=model_lib.IdExpVAE.decode_expression)
  return frame.denormalize(jnp.asarray(frame.mean_face) + id_off + exp_off)


def _transfer_expression(state, identity_faces: jax.Array,
                         expression_faces: jax.Array, *, vae, frame
                         ) -> jax.Array:
  """Faces [B, V, 3] (mm) with the identity of the first and the expression
  of the second input (swap of z_exp, paper §IV-G)."""
  z_id, _ = _encode(state, identity_faces, vae=vae, frame=frame)
  _, z_exp = _encode(state, expression_faces, vae=vae, frame=frame)
  return _decode(state, z_id, z_exp, vae=vae, frame=frame)


def _interpolate(state, face_a: jax.Array, face_b: jax.Array, *,
                 steps: int = 5, factor: str = "identity", vae, frame
                 ) -> jax.Array:
  """Interpolates one factor of two faces [V, 3] -> [steps, V, 3] (mm).

  `factor` is "identity" (z_id from a to b, z_exp of a), "expression"
  (z_exp from a to b, z_id of a) or "both".
  """
  if factor not in ("identity", "expression", "both"):
    raise ValueError(f"factor must be identity, expression or both, got "
                     f"{factor!r}")
  z_id, z_exp = _encode(state, jnp.stack([face_a, face_b]), vae=vae,
                        frame=frame)
  t = jnp.linspace(0.0, 1.0, steps)[:, None]
  lerp = lambda z: z[0] * (1 - t) + z[1] * t
  zi = lerp(z_id) if factor != "expression" else jnp.broadcast_to(
      z_id[0], (steps,) + z_id.shape[1:])
  ze = lerp(z_exp) if factor != "identity" else jnp.broadcast_to(
      z_exp[0], (steps,) + z_exp.shape[1:])
  return _decode(state, zi, ze, vae=vae, frame=frame)
