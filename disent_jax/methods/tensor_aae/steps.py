"""Pure train/eval steps of paper 000 (bound with `functools.partial`).

One step updates the auto-encoder (E, D, 𝒬, ℬ, heads) on the objective of
`objective.py` and the BEGAN critic 𝒟 on L(x) - k_t L(x_hat), both from the
same forward pass (BEGAN's simultaneous update), then moves k_t with the
equilibrium controller. The state is

    {"params": {"ae", "disc"}, "opt_state": {"ae", "disc"},
     "began": BeganState(k), "step": int32, ["verifier": SFace params]}

The verification network's parameters ride in the state (replicated,
checkpointed, never updated) when E_veri is on; its static program is bound
with `functools.partial` (`verifier`).
"""

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from disent_jax.losses import adversarial
from disent_jax.methods.tensor_aae import objective
from disent_jax.nets import sface
from disent_jax.train import step_utils

State = dict[str, Any]


def init_state(key: jax.Array, batch: Mapping[str, jax.Array], *,
               ae: nn.Module, disc: nn.Module | None,
               ae_tx: optax.GradientTransformation,
               disc_tx: optax.GradientTransformation | None,
               verifier: sface.SFace | None = None) -> State:
  """Parameters, optimizer states, k_0 = 0, the step counter and (with a
  verifier) its frozen parameters."""
  k_ae, k_d = jax.random.split(key)
  x = jnp.asarray(batch["image"])[:1]
  params = {"ae": ae.init(k_ae, x)["params"]}
  opt = {"ae": ae_tx.init(params["ae"])}
  if disc is not None:
    params["disc"] = disc.init(k_d, x)["params"]
    opt["disc"] = disc_tx.init(params["disc"])
  state = {"params": params, "opt_state": opt,
           "began": adversarial.began_init(),
           "step": jnp.zeros((), jnp.int32)}
  if verifier is not None:
    state["verifier"] = verifier.params
  return state


def _verifier(state: State, verifier: sface.SFace | None
              ) -> sface.SFace | None:
  """The frozen verification network with the state's parameters."""
  if verifier is None:
    return None
  return sface.frozen(verifier.replace(params=state["verifier"]))


def autoencoder_loss(ae_params: Any, disc_params: Any | None,
                     batch: Mapping[str, jax.Array],
                     adversarial_scale: jax.Array, *, ae: nn.Module,
                     disc: nn.Module | None, weights: objective.Weights,
                     targets: objective.Targets,
                     verifier: sface.SFace | None = None
                     ) -> tuple[jax.Array, tuple[objective.Terms,
                                                 dict[str, jax.Array]]]:
  """The weighted objective of the auto-encoder, with 𝒟 and 𝒱 held fixed.

  Returns:
    (loss, (unweighted terms, decoder outputs)).
  """
  outputs, latents = ae.apply({"params": ae_params}, batch["image"])
  fake_error = None
  if disc is not None:
    recon = disc.apply({"params": jax.lax.stop_gradient(disc_params)},
                       outputs["image"])
    fake_error = adversarial.began_autoencoder_error(outputs["image"], recon)
  terms = objective.generator_terms(outputs, latents, batch, targets=targets,
                                    fake_error=fake_error, verifier=verifier,
                                    verification_active=adversarial_scale > 0)
  loss = objective.weighted_total(terms, weights,
                                  adversarial_scale=adversarial_scale)
  return loss, (terms, outputs)


def critic_loss(disc_params: Any, real: jax.Array, fake: jax.Array,
                k: adversarial.BeganState, *, disc: nn.Module
                ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
  """BEGAN's L(x) - k_t L(x_hat) for 𝒟; returns (loss, (L(x), L(x_hat)))."""
  both = disc.apply({"params": disc_params}, jnp.concatenate([real, fake]))
  errors = adversarial.began_autoencoder_error(
      jnp.concatenate([real, fake]), both)
  real_error, fake_error = jnp.split(errors, 2)
  loss = adversarial.began_discriminator_loss(real_error, fake_error, k)
  return loss, (real_error, fake_error)


def train_step(state: State, batch: Mapping[str, jax.Array], key: jax.Array,
               *, ae: nn.Module, disc: nn.Module | None,
               ae_tx: optax.GradientTransformation,
               disc_tx: optax.GradientTransformation | None,
               weights: objective.Weights, targets: objective.Targets,
               warmup_steps: int, gamma: float, lambda_k: float,
               verifier: sface.SFace | None = None
               ) -> tuple[State, dict[str, jax.Array]]:
  """One simultaneous update of the auto-encoder and 𝒟, then k_t.

  E_adv and E_veri are off (scale 0) for the first `warmup_steps` steps
  (A22); 𝒟 and k_t train throughout.
  """
  del key  # Deterministic networks.
  params = state["params"]
  step = state["step"]
  adv_scale = (step >= warmup_steps).astype(jnp.float32)
  (loss, (terms, outputs)), ae_grads = jax.value_and_grad(
      autoencoder_loss, has_aux=True)(
          params["ae"], params.get("disc"), batch, adv_scale, ae=ae,
          disc=disc, weights=weights, targets=targets,
          verifier=_verifier(state, verifier))
  updates, ae_opt = ae_tx.update(ae_grads, state["opt_state"]["ae"],
                                 params["ae"])
  new_params = {"ae": optax.apply_updates(params["ae"], updates)}
  new_opt = {"ae": ae_opt}
  metrics = {"loss": loss, **{f"terms/{k}": v for k, v in terms.items()},
             **step_utils.grad_metrics(ae_grads, params["ae"]),
             "adversarial_scale": adv_scale}
  began = state["began"]
  if disc is not None:
    fake = jax.lax.stop_gradient(outputs["image"])
    (d_loss, (real_err, fake_err)), d_grads = jax.value_and_grad(
        critic_loss, has_aux=True)(params["disc"], batch["image"], fake,
                                   began, disc=disc)
    d_updates, d_opt = disc_tx.update(d_grads, state["opt_state"]["disc"],
                                      params["disc"])
    new_params["disc"] = optax.apply_updates(params["disc"], d_updates)
    new_opt["disc"] = d_opt
    began, m_global = adversarial.began_update(
        began, real_err, fake_err, gamma=gamma, lambda_k=lambda_k)
    metrics.update({
        "disc/loss": d_loss, "disc/real_error": jnp.mean(real_err),
        "disc/fake_error": jnp.mean(fake_err), "disc/k": began.k,
        "disc/m_global": m_global,
        **step_utils.grad_metrics(d_grads, params["disc"], prefix="disc/")})
  new_state = {"params": new_params, "opt_state": new_opt, "began": began,
               "step": step + 1}
  if verifier is not None:
    new_state["verifier"] = state["verifier"]
  return new_state, metrics


def predict(state: State, images: jax.Array, *, ae: nn.Module
            ) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
  """(decoder outputs, latents) of images [B, S, S, 3]."""
  return ae.apply({"params": state["params"]["ae"]}, images)
