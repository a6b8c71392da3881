"""Pure train steps of paper 003 (bound with `functools.partial`).

One step (spec §2.11): the reconstructor's forward pass and the generator
objective (`objective.generator_terms`) with the shape critic held fixed,
an Adam update of the encoder, decoders and identity classifier; then a
WGAN-div update of the critic on the step's (stopped) shapes against
samples of the linear 3DMM, with RMSprop (§4); then the center loss's class
centres move (Wen et al.'s rule). The state is

    {"params": {"model", "classifier", "disc"},
     "opt_state": {"model", "disc"}, "centers": [K, 128], "step": int32}
"""

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from disent_jax.losses import adversarial
from disent_jax.losses import identity
from disent_jax.methods.gcn_recon import model as model_lib
from disent_jax.methods.gcn_recon import objective
from disent_jax.nn import mesh_autoencoder
from disent_jax.ops import graph
from disent_jax.synthface import morphable as mm_lib
from disent_jax.train import step_utils

State = dict[str, Any]


class IdentityClassifier(nn.Module):
  """L_soft's classifier W c_id + β over the training identities."""
  num_classes: int

  @nn.compact
  def __call__(self, c_id: jax.Array) -> jax.Array:
    return nn.Dense(self.num_classes)(c_id)


class ShapeCritic(nn.Module):
  """The GCN shape discriminator D (spec §1.6): the decoder's mirror on the
  same hierarchy, LeakyReLU(0.2), no normalisation, one score per shape.

  Attributes:
    mesh: the `model.MeshSetup`.
    filters: widths, fine to coarse.
    K: Chebyshev terms.
    scale: mm per unit of the input (ŝ − s̃) / scale.
  """
  mesh: model_lib.MeshSetup
  filters: tuple = (16, 32, 64, 128, 256)
  K: int = 6  # pylint: disable=invalid-name
  scale: float = 10.0

  @nn.compact
  def __call__(self, shapes: jax.Array) -> jax.Array:
    """Shapes [B, V, 3] (mm) -> scores [B]."""
    n = len(self.filters)
    x = (shapes - self.mesh.template) / self.scale
    enc = mesh_autoencoder.MeshEncoder(
        operators=self.mesh.operators[:n], down=self.mesh.down[:n],
        filters=self.filters, K=self.K, latent=1,
        activation=lambda v: nn.leaky_relu(v, 0.2))
    return enc(x)[..., 0]


@dataclasses.dataclass(frozen=True)
class Context:
  """Everything a step needs besides the state and the batch.

  Attributes:
    net: the `GcnReconstructor`; classifier: the `IdentityClassifier`;
    critic: the `ShapeCritic`.
    tx: Adam for {"model", "classifier"}; disc_tx: RMSprop for the critic.
    weights: `objective.Weights`.
    morphable: the linear 3DMM of the pseudo ground truth and of the
      critic's real samples.
    smooth_operator: the template's uniform Laplacian; mirror: [V].
    size: the image size; center_alpha: the centres' rate.
    real_truncation: |α| bound of the 3DMM samples (sd units).
    wgan_k, wgan_p: WGAN-div's k and p.
  """
  net: nn.Module
  classifier: nn.Module
  critic: nn.Module
  tx: optax.GradientTransformation
  disc_tx: optax.GradientTransformation
  weights: objective.Weights
  morphable: mm_lib.Morphable
  smooth_operator: graph.GraphOperator
  mirror: np.ndarray
  size: int
  center_alpha: float = 0.5
  real_truncation: float = 3.0
  wgan_k: float = 2.0
  wgan_p: float = 6.0


def init_state(key: jax.Array, batch: Mapping[str, jax.Array], *,
               ctx: Context, num_classes: int) -> State:
  """Parameters, optimizer states, zero centres and the step counter."""
  k_net, k_cls, k_d = jax.random.split(key, 3)
  x = jnp.asarray(batch["image"])[:1]
  model = ctx.net.init(k_net, x)["params"]
  classifier = ctx.classifier.init(
      k_cls, jnp.zeros((1, model_lib.CODE_SIZES["identity"])))["params"]
  disc = ctx.critic.init(k_d, jnp.asarray(ctx.morphable.mean)[None])["params"]
  params = {"model": model, "classifier": classifier, "disc": disc}
  trainable = {"model": model, "classifier": classifier}
  return {"params": params,
          "opt_state": {"model": ctx.tx.init(trainable),
                        "disc": ctx.disc_tx.init(disc)},
          "centers": jnp.zeros((num_classes,
                                model_lib.CODE_SIZES["identity"])),
          "step": jnp.zeros((), jnp.int32)}


def predict(params: Any, images: jax.Array, *, ctx: Context
            ) -> tuple[dict[str, Any], dict[str, jax.Array]]:
  """(reconstructor outputs, renders composited on the images)."""
  out = ctx.net.apply({"params": params}, images)
  codes = out["codes"]
  render = jax.vmap(lambda s, a, p, l, bg: model_lib.render(
      s, a, p, l, bg, mesh=ctx.net.mesh, size=ctx.size))
  rendered = render(out["shape"], out["albedo"], codes["pose"],
                    codes["light"], images)
  return out, rendered


def generator_loss(trainable: Any, disc_params: Any, centers: jax.Array,
                   batch: Mapping[str, jax.Array], *, ctx: Context
                   ) -> tuple[jax.Array, tuple[objective.Terms, jax.Array]]:
  """L_G with the critic and the centres fixed; aux (terms, ŝ)."""
  out, rendered = predict(trainable["model"], batch["image"], ctx=ctx)
  codes = out["codes"]
  mm = ctx.morphable
  pair_shape = ctx.net.apply(
      {"params": trainable["model"]}, codes["identity"],
      objective.paired(codes["expression"]),
      method=model_lib.GcnReconstructor.decode_shape)
  logits = ctx.classifier.apply({"params": trainable["classifier"]},
                                codes["identity"])
  fake = None
  if ctx.weights.adversarial > 0:
    fake = ctx.critic.apply({"params": jax.lax.stop_gradient(disc_params)},
                            out["shape"])
  terms = objective.generator_terms(
      out, rendered, batch,
      pseudo_shape=mm_lib.reconstruct(mm, batch["mm_identity"],
                                      batch["mm_expression"]),
      pair_shape=pair_shape,
      pair_target=mm_lib.reconstruct(
          mm, batch["mm_identity"], objective.paired(batch["mm_expression"])),
      logits=logits, centers=centers, fake_scores=fake,
      template=ctx.net.mesh.template, smooth_operator=ctx.smooth_operator,
      mirror=ctx.mirror)
  return objective.weighted_total(terms, ctx.weights), (
      terms, (out["shape"], codes["identity"]))


def sample_3dmm(key: jax.Array, n: int, mm: mm_lib.Morphable, *,
                truncation: float) -> jax.Array:
  """[n, V, 3] shapes of the linear 3DMM, α ~ N(0, I) truncated."""
  k_id, k_exp = jax.random.split(key)
  a = jax.random.truncated_normal(k_id, -truncation, truncation,
                                  (n, mm.num_identity))
  b = jax.random.truncated_normal(k_exp, -truncation, truncation,
                                  (n, mm.num_expression))
  return mm_lib.reconstruct(mm, a, b)


def critic_loss(disc_params: Any, real: jax.Array, fake: jax.Array,
                key: jax.Array, *, ctx: Context) -> jax.Array:
  """WGAN-div: mean D(ŝ) − mean D(s) + k mean ||∇D(ṡ)||^p (eq. 12)."""
  def d(x):
    return ctx.critic.apply({"params": disc_params}, x)
  return (adversarial.wasserstein_discriminator_loss(d(real), d(fake))
          + adversarial.wgan_div_penalty(d, real, fake, key=key,
                                         k=ctx.wgan_k, p=ctx.wgan_p))


def train_step(state: State, batch: Mapping[str, jax.Array], key: jax.Array,
               *, ctx: Context) -> tuple[State, dict[str, jax.Array]]:
  """One generator update, one critic update, one centre update."""
  params = state["params"]
  trainable = {"model": params["model"], "classifier": params["classifier"]}
  (loss, (terms, (shapes, c_id))), grads = jax.value_and_grad(
      generator_loss, has_aux=True)(trainable, params["disc"],
                                    state["centers"], batch, ctx=ctx)
  updates, opt = ctx.tx.update(grads, state["opt_state"]["model"], trainable)
  trainable = optax.apply_updates(trainable, updates)
  k_real, k_pen = jax.random.split(key)
  real = sample_3dmm(k_real, shapes.shape[0], ctx.morphable,
                     truncation=ctx.real_truncation)
  d_loss, d_grads = jax.value_and_grad(critic_loss)(
      params["disc"], real, jax.lax.stop_gradient(shapes), k_pen, ctx=ctx)
  d_updates, d_opt = ctx.disc_tx.update(d_grads, state["opt_state"]["disc"],
                                        params["disc"])
  centers = identity.center_update(c_id, batch["subject"], state["centers"],
                                   alpha=ctx.center_alpha)
  new_state = {
      "params": {**trainable,
                 "disc": optax.apply_updates(params["disc"], d_updates)},
      "opt_state": {"model": opt, "disc": d_opt}, "centers": centers,
      "step": state["step"] + 1}
  metrics = {"loss": loss, **{f"terms/{k}": v for k, v in terms.items()},
             "disc/loss": d_loss,
             **step_utils.grad_metrics(grads, trainable),
             **step_utils.grad_metrics(d_grads, params["disc"],
                                       prefix="disc/")}
  return new_state, metrics
