"""Paper 003 as a harness method (stage 1): GCN shape/albedo decoders.

`build` generates the SynthFace splits once (`data.generate`), builds the
mesh hierarchy and the networks, and binds them into `steps.train_step`.
Training batches are P subjects × K images (`config.data_k`), flattened to
`config.batch_size` = P × K images.
"""

import functools
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from disent_jax.data import onthefly
from disent_jax.data import pipeline
from disent_jax.methods.gcn_recon import data as data_lib
from disent_jax.methods.gcn_recon import evaluation
from disent_jax.methods.gcn_recon import micc
from disent_jax.methods.gcn_recon import model as model_lib
from disent_jax.methods.gcn_recon import objective
from disent_jax.methods.gcn_recon import steps as steps_lib
from disent_jax.ops import laplacian
from disent_jax.synthface import template as tpl
from disent_jax.train.method import DataContext, Method


class _Flattened:
  """A checkpointable batch iterator with [P, K, ...] groups flattened."""

  def __init__(self, it):
    self._it = it

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    return data_lib.flatten_groups(next(self._it))

  def get_state(self):
    return self._it.get_state()

  def set_state(self, state) -> None:
    self._it.set_state(state)


def context(config: ml_collections.ConfigDict, *, num_classes: int
            ) -> steps_lib.Context:
  """The networks, optimizers and constants of a config."""
  d, m = config.data, config.model
  mm = onthefly.world_morphable(d.resolution)
  mesh = model_lib.MeshSetup.build(mm.mean, mm.faces, mm.landmarks,
                                   factors=tuple(m.factors))
  enc = model_lib.ResNetEncoder(
      stage_widths=tuple(m.stage_widths), stage_blocks=tuple(m.stage_blocks),
      bottleneck=bool(m.bottleneck), stem_width=int(m.stem_width),
      branch_hidden=int(m.branch_hidden))
  net = model_lib.GcnReconstructor(
      mesh=mesh, encoder=enc, decoder_filters=tuple(m.decoder_filters),
      K=int(m.cheb_order), shape_scale=float(m.shape_scale))
  o = config.optim
  return steps_lib.Context(
      net=net, classifier=steps_lib.IdentityClassifier(num_classes),
      critic=steps_lib.ShapeCritic(mesh, filters=tuple(m.disc_filters),
                                   K=int(m.cheb_order),
                                   scale=float(m.shape_scale)),
      tx=optax.adam(o.learning_rate),
      disc_tx=optax.rmsprop(o.disc_learning_rate),
      weights=objective.Weights.from_config(config.loss), morphable=mm,
      smooth_operator=laplacian.uniform_laplacian_operator(
          mm.faces, num_vertices=mm.mean.shape[0]),
      mirror=np.asarray(tpl.template(d.resolution).mirror),
      size=int(d.size), center_alpha=float(o.center_alpha),
      wgan_k=float(config.wgan.k), wgan_p=float(config.wgan.p))


def build(config: ml_collections.ConfigDict) -> Method:
  """The method's pure functions (see configs/gcn_recon.py)."""
  dcfg = data_lib.DataConfig.from_config(config.data)
  k = int(config.data_k)
  if k < 2 or config.batch_size % k:
    raise ValueError(f"config data_k={k}: expected >= 2 and dividing "
                     f"batch_size={config.batch_size}")
  train, test = data_lib.generate(dcfg)
  ctx = context(config, num_classes=dcfg.num_subjects)
  init = functools.partial(steps_lib.init_state, ctx=ctx,
                           num_classes=dcfg.num_subjects)
  train_step = functools.partial(steps_lib.train_step, ctx=ctx)
  predict = jax.jit(functools.partial(_predict, ctx=ctx))

  def eval_step(state, batch):
    return predict(state, batch["image"])

  def data(dctx: DataContext):
    if dctx.split == "train":
      source = data_lib.GroupedSource(train, k=k, seed=config.seed)
      return _Flattened(pipeline.batched_iterator(
          source, batch_size=config.batch_size // k, seed=config.seed,
          process_index=dctx.process_index,
          process_count=dctx.process_count))
    return pipeline.batched_iterator(
        pipeline.ArraySource(test), batch_size=config.batch_size, seed=0,
        shuffle=False, num_epochs=1, drop_remainder=dctx.process_count > 1,
        process_index=dctx.process_index, process_count=dctx.process_count)

  baselines = evaluation.Baselines.fit(train, ctx.morphable)
  # Generated at the first evaluation (the end of training), not at start.
  micc_data = functools.cache(lambda: micc_protocol_data(config, dcfg))

  def evaluate(state, dataset: Iterable[Mapping[str, jax.Array]]
               ) -> dict[str, float]:
    out = evaluation.evaluate(predict, state, dataset, baselines=baselines,
                              morphable=ctx.morphable)
    if micc_data() is not None:
      out.update(evaluation.micc_metrics(
          predict, state, micc_data(), baselines=baselines,
          morphable=ctx.morphable,
          single_view=bool(config.micc.single_view)))
    return out

  return Method(name="gcn_recon", init=init, train_step=train_step,
                eval_step=eval_step, evaluate=evaluate, data=data)


def micc_protocol_data(config: ml_collections.ConfigDict,
                       dcfg: data_lib.DataConfig
                       ) -> dict[str, np.ndarray] | None:
  """`micc.generate` for `config.micc` (None with no subjects): subjects
  numbered after both image splits, at the images' size and mesh."""
  n = int(config.micc.num_subjects)
  if n <= 0:
    return None
  return micc.generate(micc.Protocol(
      first_subject=dcfg.num_subjects + dcfg.num_test_subjects,
      num_subjects=n, seed=dcfg.seed, size=dcfg.size,
      resolution=dcfg.resolution,
      scan_resolution=str(config.micc.scan_resolution)))


def _predict(state: Any, images: jax.Array, *, ctx: steps_lib.Context
             ) -> dict[str, jax.Array]:
  out, rendered = steps_lib.predict(state["params"]["model"],
                                    jnp.asarray(images), ctx=ctx)
  return {"shape": out["shape"], "albedo": out["albedo"],
          "image": rendered["image"], "coverage": rendered["mask"],
          "landmarks_2d": rendered["landmarks_2d"],
          **{f"code_{k}": v for k, v in out["codes"].items()}}
