"""Harness demo method: an MLP autoencoder on procedural low-rank data.

Each example is x = tanh(W z) + noise with a fixed random W (from the data
seed) and z ~ N(0, I) drawn from (seed, index), so the data is deterministic,
unbounded in size and has a known low-dimensional structure the autoencoder
can learn. Not one of the four product methods.
"""

import json
import pathlib
from typing import Any, Iterable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np
import optax

from disent_jax.data import pipeline
from disent_jax.train import partitioning
from disent_jax.train import step_utils
from disent_jax.train.method import DataContext, Method

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


class LowRankSource:
  """Random-access procedural data: x = tanh(W z) + sigma * eps."""

  def __init__(self, *, num_examples: int, dim: int, rank: int, noise: float,
               seed: int, offset: int = 0):
    rng = np.random.default_rng([seed, 0])
    self._w = rng.normal(size=(dim, rank)).astype(np.float32) / np.sqrt(rank)
    self._n, self._dim, self._rank = num_examples, dim, rank
    self._noise, self._seed, self._offset = noise, seed, offset

  def __len__(self) -> int:
    return self._n

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    if not 0 <= index < self._n:
      raise IndexError(index)
    rng = np.random.default_rng([self._seed, 1, self._offset + int(index)])
    z = rng.normal(size=(self._rank,)).astype(np.float32)
    eps = rng.normal(size=(self._dim,)).astype(np.float32)
    x = np.tanh(self._w @ z) + self._noise * eps
    return {"x": x.astype(np.float32), "z": z}


class Autoencoder(nn.Module):
  """MLP encoder to `latent` dims and a mirrored decoder."""
  hidden: tuple[int, ...]
  latent: int
  dim: int

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = x
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
    code = nn.Dense(self.latent)(h)
    h = code
    for width in reversed(self.hidden):
      h = nn.relu(nn.Dense(width)(h))
    return nn.Dense(self.dim)(h), code


def build(config: ml_collections.ConfigDict) -> Method:
  """The demo method's pure functions for `config` (see configs/demo.py)."""
  model = Autoencoder(hidden=tuple(config.model.hidden),
                      latent=config.model.latent, dim=config.data.dim)
  tx = optax.adamw(config.optim.learning_rate,
                   weight_decay=config.optim.weight_decay)

  def init(key: jax.Array, batch: Mapping[str, jax.Array]) -> dict[str, Any]:
    params = model.init(key, batch["x"][:1])["params"]
    return {"params": params, "opt_state": tx.init(params)}

  def loss_fn(params, x):
    recon, _ = model.apply({"params": params}, x)
    return jnp.mean(jnp.square(recon - x))

  def train_step(state, batch, key):
    del key  # Deterministic model; the harness still provides one.
    loss, grads = jax.value_and_grad(loss_fn)(state["params"], batch["x"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {"loss": loss, **step_utils.grad_metrics(grads, params)}
    return {"params": params, "opt_state": opt_state}, metrics

  def eval_step(state, batch):
    recon, code = model.apply({"params": state["params"]}, batch["x"])
    return {"sq_err": jnp.sum(jnp.square(recon - batch["x"]), axis=-1),
            "sq_norm": jnp.sum(jnp.square(batch["x"] - jnp.mean(batch["x"])),
                               axis=-1),
            "code": code}

  eval_step_jit = jax.jit(eval_step)

  def evaluate(state, dataset: Iterable[Mapping[str, jax.Array]]
               ) -> dict[str, float]:
    sq_err, sq_norm = [], []
    for batch in dataset:
      out = partitioning.to_host(eval_step_jit(state, batch))
      sq_err.append(out["sq_err"])
      sq_norm.append(out["sq_norm"])
    sq_err, sq_norm = np.concatenate(sq_err), np.concatenate(sq_norm)
    mse = float(sq_err.mean() / config.data.dim)
    return {"eval_mse": mse,
            "eval_explained_variance": float(1 - sq_err.sum() /
                                             sq_norm.sum()),
            "eval_examples": float(len(sq_err))}

  def data(ctx: DataContext):
    d = ctx.config.data
    if ctx.split == "train":
      source = LowRankSource(num_examples=d.num_train, dim=d.dim,
                             rank=d.rank, noise=d.noise, seed=d.seed)
      return pipeline.batched_iterator(
          source, batch_size=ctx.config.batch_size, seed=ctx.config.seed,
          process_index=ctx.process_index, process_count=ctx.process_count)
    source = LowRankSource(num_examples=d.num_eval, dim=d.dim, rank=d.rank,
                           noise=d.noise, seed=d.seed, offset=d.num_train)
    return pipeline.batched_iterator(
        source, batch_size=ctx.config.batch_size, seed=0, shuffle=False,
        num_epochs=1, process_index=ctx.process_index,
        process_count=ctx.process_count)

  def report(state, metrics, workdir) -> dict[str, str]:
    del state, metrics
    path = pathlib.Path(workdir) / "metrics.jsonl"
    if not path.exists():
      return {}
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows = [r for r in rows if isinstance(r.get("loss"), float)]
    if not rows:
      return {}
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("train MSE")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = pathlib.Path(workdir) / "loss.png"
    fig.savefig(out)
    plt.close(fig)
    return {"Training loss": str(out)}

  def encode(state, x: jax.Array) -> jax.Array:
    """Latent codes [B, latent] of inputs [B, dim]."""
    return model.apply({"params": state["params"]}, x)[1]

  return Method(
      name="demo", init=init, train_step=train_step, eval_step=eval_step,
      evaluate=evaluate, data=data, report=report,
      sharding_rules=((r"Dense_\d+/kernel$", (None, "model")),),
      applications={"encode": encode})
