"""Paper 002's training step as pure functions.

`method.build` binds the collaborators (networks, optimizers, weights, the
coordinate frame) with `functools.partial`; every function here can be
imported, tested and jitted on its own.

One step, as the public code trains (`end_to_end.py`):
  * steps < `pretrain_steps`: D_ID alone learns same/other identity on real
    pairs, (X, X_same) -> 1 and (X, X_other) -> 0 (paper Fig. 3, top);
  * afterwards the VAE minimises eq. (7) (`vae_loss`), then D_ID learns
    (X, X_same) -> 1 and (X, X_id predicted) -> 0 on the prediction of the
    same forward pass (eq. 6/8).
D_ID sees real and fake pairs in one shuffled batch, so batch statistics
(when it has batch norm) cannot tell them apart, and it has its own
optimizer without weight decay.

State: {"params": {"vae", ["disc"]}, "batch_stats": {"vae"?, "disc"?},
"opt_state": {"vae", ["disc"]}, "step"}; a network without batch norm has
no "batch_stats" entry.
"""

from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from disent_jax.losses import adversarial
from disent_jax.losses import geometry
from disent_jax.losses import probabilistic
from disent_jax.losses import reconstruction
from disent_jax.methods.pointnet_id_vae import model as model_lib
from disent_jax.methods.pointnet_id_vae import objective
from disent_jax.ops import graph
from disent_jax.train import step_utils

State = dict[str, Any]
Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]


class Frame(NamedTuple):
  """Network coordinates x = (X - center) / scale and the fixed operators.

  Attributes:
    center: [3] mm, the mean face's centroid.
    scale: mm per normalised unit.
    mean_face: [V, 3] the normalised data mean face the decoders offset.
    laplacian: [V, V] L_lap's operator (row-normalised cotangent Laplacian
      of the mean face).
    expression_offsets: [L, V, 3] normalised per-expression average offsets
      (the public code's no-GT term) or None.
  """
  center: np.ndarray
  scale: float
  mean_face: np.ndarray
  laplacian: graph.GraphOperator
  expression_offsets: np.ndarray | None = None

  def normalize(self, vertices: jax.Array) -> jax.Array:
    """[..., V, 3] mm -> network coordinates."""
    return (vertices - self.center) / self.scale

  def denormalize(self, x: jax.Array) -> jax.Array:
    """[..., V, 3] network coordinates -> mm."""
    return x * self.scale + self.center


def variables(params: Any, stats: Any) -> dict[str, Any]:
  """Flax variables of a network, with 'batch_stats' only if it has any."""
  out = {"params": params}
  if stats:
    out["batch_stats"] = stats
  return out


def _with_stats(stats: dict[str, Any], name: str, value: Any
                ) -> dict[str, Any]:
  out = dict(stats)
  if value:
    out[name] = value
  return out


def init_state(key: jax.Array, batch: Batch, *, vae: model_lib.IdExpVAE,
               disc: model_lib.IdentityDiscriminator | None,
               vae_tx: optax.GradientTransformation,
               disc_tx: optax.GradientTransformation | None,
               frame: Frame) -> State:
  """The initial training state (D_ID's entries only when `disc` is set)."""
  k_vae, k_lat, k_disc, k_drop = jax.random.split(key, 4)
  x = frame.normalize(batch["vertices"])
  vae_vars = vae.init({"params": k_vae, "latent": k_lat}, x, train=False)
  params = {"vae": vae_vars["params"]}
  stats = _with_stats({}, "vae", vae_vars.get("batch_stats"))
  opt = {"vae": vae_tx.init(vae_vars["params"])}
  if disc is not None:
    disc_vars = disc.init({"params": k_disc, "dropout": k_drop}, x, x,
                          train=False)
    params["disc"] = disc_vars["params"]
    stats = _with_stats(stats, "disc", disc_vars.get("batch_stats"))
    opt["disc"] = disc_tx.init(disc_vars["params"])
  return {"params": params, "batch_stats": stats, "opt_state": opt,
          "step": jnp.zeros((), jnp.int32)}


def disc_logits(params: Any, stats: Any, face: jax.Array,
                candidate: jax.Array, key: jax.Array, *,
                disc: model_lib.IdentityDiscriminator
                ) -> tuple[jax.Array, Any, jax.Array]:
  """D_ID in training mode on normalised pairs [B, V, 3].

  Returns:
    ("same identity" logits [B], updated batch stats, the mean T-Net
    orthogonality penalty).
  """
  (logits, transform), updates = disc.apply(
      variables(params, stats), face, candidate, train=True,
      rngs={"dropout": key}, mutable=["batch_stats"])
  penalty = jnp.mean(geometry.orthogonality_regularizer(transform))
  return logits, updates.get("batch_stats", {}), penalty


def disc_loss(params: Any, stats: Any, face: jax.Array, real: jax.Array,
              fake: jax.Array, key: jax.Array, *,
              disc: model_lib.IdentityDiscriminator, tnet_weight: float
              ) -> tuple[jax.Array, tuple[Any, Metrics]]:
  """D_ID's loss on one shuffled batch of real and fake pairs.

  Args:
    params, stats: D_ID's variables.
    face: [B, V, 3] normalised faces X.
    real: [B, V, 3] candidates of the same identity (label 1).
    fake: [B, V, 3] candidates of another identity or predicted (label 0).
    key: shuffles the 2B pairs and drives dropout.
    disc: the network.
    tnet_weight: weight of the input T-Net's orthogonality penalty.

  Returns:
    (loss, (batch stats, metrics)): the mean cross-entropy over all 2B
    pairs (eq. 6/8) plus the T-Net penalty; accuracy overall, on real and
    on fake pairs.
  """
  k_perm, k_drop = jax.random.split(key)
  b = face.shape[0]
  perm = jax.random.permutation(k_perm, 2 * b)
  faces = jnp.concatenate([face, face])[perm]
  candidates = jnp.concatenate([real, fake])[perm]
  logits, stats, penalty = disc_logits(params, stats, faces, candidates,
                                       k_drop, disc=disc)
  logits = jnp.zeros_like(logits).at[perm].set(logits)  # Unshuffled.
  real_logits, fake_logits = logits[:b], logits[b:]
  loss = (objective.discriminator_loss(real_logits, fake_logits) +
          tnet_weight * penalty)
  metrics = {
      "d_loss": loss,
      "d_accuracy": adversarial.discriminator_accuracy(real_logits,
                                                       fake_logits),
      "d_accuracy_real": jnp.mean((real_logits > 0).astype(jnp.float32)),
      "d_accuracy_fake": jnp.mean((fake_logits < 0).astype(jnp.float32)),
  }
  return loss, (stats, metrics)


def disc_update(state: State, face: jax.Array, real: jax.Array,
                fake: jax.Array, key: jax.Array, *,
                disc: model_lib.IdentityDiscriminator,
                tx: optax.GradientTransformation, tnet_weight: float
                ) -> tuple[Any, Any, Any, Metrics]:
  """One D_ID step; returns its (params, batch stats, opt state, metrics)."""
  params = state["params"]["disc"]
  (_, (stats, metrics)), grads = jax.value_and_grad(disc_loss, has_aux=True)(
      params, state["batch_stats"].get("disc", {}), face, real, fake, key,
      disc=disc, tnet_weight=tnet_weight)
  updates, opt = tx.update(grads, state["opt_state"]["disc"], params)
  params = optax.apply_updates(params, updates)
  metrics.update(step_utils.grad_metrics(grads, params, prefix="disc/"))
  return params, stats, opt, metrics


def vae_loss(params: Any, state: State, batch: Batch, key: jax.Array,
             kl_factor: jax.Array, *, vae: model_lib.IdExpVAE,
             disc: model_lib.IdentityDiscriminator | None,
             weights: objective.Weights, frame: Frame
             ) -> tuple[jax.Array, tuple[Any, jax.Array, Metrics]]:
  """Eq. (7) on one batch (normalised coordinates).

  Args:
    params: the VAE's parameters (differentiated).
    state: the training state (VAE batch stats, D_ID's variables).
    batch: "vertices" [B, V, 3] mm, "neutral" [B, V, 3] mm, "expression"
      [B] labels.
    key: latent samples and dropout.
    kl_factor: the KL annealing factor in [0, 1].
    vae, disc: the networks (`disc` None: -id-dis).
    weights: the loss weights.
    frame: coordinates and operators.

  Returns:
    (total, (VAE batch stats, predicted identity x_id [B, V, 3], each
    term)).
  """
  k_lat, k_lat2, k_drop = jax.random.split(key, 3)
  x = frame.normalize(batch["vertices"])
  stats = state["batch_stats"].get("vae", {})
  (enc, id_off, exp_off), upd = vae.apply(
      variables(params, stats), x, train=True, rngs={"latent": k_lat},
      mutable=["batch_stats"])
  x_id = jnp.asarray(frame.mean_face) + id_off
  recon = reconstruction.mse(x_id + exp_off, x)
  kl_id = jnp.mean(probabilistic.gaussian_kl(enc.identity.mean,
                                             enc.identity.log_variance))
  kl_exp = jnp.mean(probabilistic.gaussian_kl(enc.expression.mean,
                                              enc.expression.log_variance))
  # L_neu: the predicted neutral, re-encoded, keeps its identity code.
  enc2, upd = vae.apply(
      variables(params, upd.get("batch_stats", {})), x_id, train=True,
      rngs={"latent": k_lat2}, mutable=["batch_stats"],
      method=model_lib.IdExpVAE.encode)
  neu = reconstruction.l1(enc.identity.sample, enc2.identity.sample)
  lap = jnp.mean(geometry.laplacian_smoothness(x_id, frame.laplacian))
  ne_gt = reconstruction.mse(x_id, frame.normalize(batch["neutral"]))
  exp_prior = jnp.zeros(())
  if frame.expression_offsets is not None:
    exp_prior = objective.expression_prior(
        exp_off, jnp.asarray(frame.expression_offsets), batch["expression"])
  adv = jnp.zeros(())
  if disc is not None:
    fake_logits, _, _ = disc_logits(
        state["params"]["disc"], state["batch_stats"].get("disc", {}), x,
        x_id, k_drop, disc=disc)
    adv = adversarial.nonsaturating_generator_loss(fake_logits)
  total = (weights.recon * recon +
           kl_factor * (weights.kl_id * kl_id + weights.kl_exp * kl_exp) +
           weights.adversarial * adv + weights.neutral_code * neu +
           weights.laplacian * lap + weights.neutral_gt * ne_gt +
           weights.expression_prior * exp_prior)
  terms = {"recon": recon, "kl_id": kl_id, "kl_exp": kl_exp, "adv": adv,
           "neu": neu, "lap": lap, "ne_gt": ne_gt, "exp_prior": exp_prior,
           "kl_factor": kl_factor}
  return total, (upd.get("batch_stats", {}), x_id, terms)


def _infer(state: State, x: jax.Array, *, vae: model_lib.IdExpVAE,
           frame: Frame) -> tuple[Any, jax.Array, jax.Array]:
  """The VAE in inference mode (running statistics, posterior means) on
  normalised faces x [B, V, 3]: (posteriors, identity x_id, expression
  offset), both [B, V, 3] normalised."""
  enc, id_off, exp_off = vae.apply(
      variables(state["params"]["vae"], state["batch_stats"].get("vae", {})),
      x, train=False)
  return enc, jnp.asarray(frame.mean_face) + id_off, exp_off


def reconstruct(state: State, x: jax.Array, *, vae: model_lib.IdExpVAE,
                frame: Frame) -> jax.Array:
  """The VAE's reconstruction [B, V, 3] of normalised faces x (inference
  mode; no gradient)."""
  _, x_id, exp_off = _infer(state, x, vae=vae, frame=frame)
  return jax.lax.stop_gradient(x_id + exp_off)


def joint_step(state: State, batch: Batch, key: jax.Array, *,
               vae: model_lib.IdExpVAE,
               disc: model_lib.IdentityDiscriminator | None,
               vae_tx: optax.GradientTransformation,
               disc_tx: optax.GradientTransformation | None,
               weights: objective.Weights, frame: Frame,
               steps_per_epoch: float, kl_anneal_epochs: float,
               tnet_weight: float, disc_real: str = "scan"
               ) -> tuple[State, Metrics]:
  """A VAE step (eq. 7), then a D_ID step on its prediction (eq. 6/8).

  `disc_real` is D_ID's real candidate: "scan" (the paper: another face of
  the subject) or "decoded" (the VAE's reconstruction of that face, with
  the parameters before this step, so that real and fake candidates are
  both decoded meshes).
  """
  if disc_real not in ("scan", "decoded"):
    raise ValueError(f"disc_real={disc_real!r}: expected 'scan' or "
                     "'decoded'")
  k_vae, k_disc = jax.random.split(key)
  epoch = state["step"].astype(jnp.float32) / steps_per_epoch
  kl_factor = probabilistic.linear_decay(epoch, duration=kl_anneal_epochs)
  (loss, (vae_stats, x_id, terms)), grads = jax.value_and_grad(
      vae_loss, has_aux=True)(state["params"]["vae"], state, batch, k_vae,
                              kl_factor, vae=vae, disc=disc,
                              weights=weights, frame=frame)
  updates, vae_opt = vae_tx.update(grads, state["opt_state"]["vae"],
                                   state["params"]["vae"])
  vae_params = optax.apply_updates(state["params"]["vae"], updates)
  metrics = {"loss": loss, **terms,
             **step_utils.grad_metrics(grads, vae_params)}
  params = {**state["params"], "vae": vae_params}
  stats = _with_stats(state["batch_stats"], "vae", vae_stats)
  opt = {**state["opt_state"], "vae": vae_opt}
  if disc is not None:
    x = frame.normalize(batch["vertices"])
    real = frame.normalize(batch["same_vertices"])
    if disc_real == "decoded":
      real = reconstruct(state, real, vae=vae, frame=frame)
    d_params, d_stats, d_opt, d_metrics = disc_update(
        state, x, real, jax.lax.stop_gradient(x_id), k_disc, disc=disc,
        tx=disc_tx, tnet_weight=tnet_weight)
    params["disc"] = d_params
    stats = _with_stats(stats, "disc", d_stats)
    opt["disc"] = d_opt
    metrics.update(d_metrics)
  return {"params": params, "batch_stats": stats, "opt_state": opt,
          "step": state["step"] + 1}, metrics


def pretrain_step(state: State, batch: Batch, key: jax.Array, *,
                  disc: model_lib.IdentityDiscriminator,
                  disc_tx: optax.GradientTransformation, frame: Frame,
                  tnet_weight: float) -> tuple[State, Metrics]:
  """A D_ID step on real pairs: same subject -> 1, other subject -> 0."""
  x = frame.normalize(batch["vertices"])
  d_params, d_stats, d_opt, metrics = disc_update(
      state, x, frame.normalize(batch["same_vertices"]),
      frame.normalize(batch["other_vertices"]), key, disc=disc, tx=disc_tx,
      tnet_weight=tnet_weight)
  return {"params": {**state["params"], "disc": d_params},
          "batch_stats": _with_stats(state["batch_stats"], "disc", d_stats),
          "opt_state": {**state["opt_state"], "disc": d_opt},
          "step": state["step"] + 1}, metrics


def train_step(state: State, batch: Batch, key: jax.Array, *,
               joint: Callable[..., tuple[State, Metrics]],
               pretrain: Callable[..., tuple[State, Metrics]] | None,
               pretrain_steps: int) -> tuple[State, Metrics]:
  """D_ID pre-training for `pretrain_steps` steps, then joint training.

  Both phases are one jitted function (`lax.cond` on the step counter);
  during pre-training the VAE's metrics are reported as zeros.

  Args:
    state, batch, key: as the harness passes them.
    joint: `joint_step` with its collaborators bound.
    pretrain: `pretrain_step` with its collaborators bound (None: no
      pre-training).
    pretrain_steps: how many steps pre-train D_ID.
  """
  if pretrain is None or pretrain_steps <= 0:
    return joint(state, batch, key)
  _, joint_metrics = jax.eval_shape(joint, state, batch, key)

  def pretrain_padded(st, b, k):
    new, metrics = pretrain(st, b, k)
    full = {name: jnp.zeros(v.shape, v.dtype)
            for name, v in joint_metrics.items()}
    full.update(metrics)
    full["loss"] = metrics["d_loss"]
    return new, full

  return jax.lax.cond(state["step"] < pretrain_steps, pretrain_padded, joint,
                      state, batch, key)


def predict(state: State, batch: Batch, *, vae: model_lib.IdExpVAE,
            frame: Frame) -> dict[str, jax.Array]:
  """Predictions in mm: full face, identity (neutral), expression offset
  (each [B, V, 3]) and posterior means z_id [B, d_id], z_exp [B, d_exp]."""
  enc, x_id, exp_off = _infer(state, frame.normalize(batch["vertices"]),
                              vae=vae, frame=frame)
  return {"face": frame.denormalize(x_id + exp_off),
          "identity": frame.denormalize(x_id),
          "expression": exp_off * frame.scale,
          "z_id": enc.identity.mean, "z_exp": enc.expression.mean}

