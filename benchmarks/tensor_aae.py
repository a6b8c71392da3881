"""Paper 000's train step: throughput and the fraction of the matmul peak.

Run: `python -m benchmarks.tensor_aae [--quick] [--out FILE]`.

Paper 000 has no released code, so there is no peer implementation of the
step. The rows are:

* the whole train step (`steps.train_step`: encoder, the three streams,
  every loss, Adam on the auto-encoder, the BEGAN critic update and k_t)
  jitted with the state donated, at the quick config's sizes (32 px,
  𝒬 3072 x 9 x 6 x 16, batch 32) and at `size=full` (64 px, 𝒬 12288 x 9 x
  15 x 80, batch 64, 2.5k template); with the XLA cost model's FLOPs per
  step, the achieved GFLOP/s and their fraction of the float32 matmul peak
  measured in the same run (`train.utilisation`);
* the same step without 𝒟 (`ablation=no_adv`), a sanity row that shows the
  critic's share;
* stream 3's n-way synthesis x_f = 𝒬_(1)(z_l ⊙ z_exp ⊙ z_id) at both sizes,
  forward, against the same product with tensorly (numpy backend):
  unfold(𝒬) · khatri_rao([z_l, z_exp, z_id]).

The batches are random arrays of the method's shapes (images in [0, 1],
unit pseudo-normals, 0/1 masks), so no data are generated; the step's cost
does not depend on the values.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tensorly as tl
from tensorly import tenalg

from benchmarks import common
from disent_jax.data import onthefly
from disent_jax.methods.tensor_aae import method as method_lib
from disent_jax.methods.tensor_aae import objective
from disent_jax.methods.tensor_aae import steps
from disent_jax.ops import multilinear
from disent_jax.train import config_utils
from disent_jax.train import utilisation


def _batch(config, num_vertices: int, ki: int, ke: int,
           rng: np.random.Generator) -> dict[str, np.ndarray]:
  b, s = int(config.batch_size), int(config.data.size)
  n = rng.normal(size=(b, s, s, 3)) + [0.0, 0.0, 2.0]
  n /= np.linalg.norm(n, axis=-1, keepdims=True)
  return {
      "image": rng.uniform(size=(b, s, s, 3)),
      "fit_rotation": np.broadcast_to(np.eye(3), (b, 3, 3)).copy(),
      "fit_identity": rng.normal(size=(b, ki)),
      "fit_expression": rng.normal(size=(b, ke)),
      "fit_shape": rng.normal(size=(b, 3 * num_vertices)),
      "fit_normals": n,
      "fit_mask": (rng.uniform(size=(b, s, s, 1)) < 0.6),
      "fit_sh": rng.normal(size=(b, 27)) * 0.3,
      "near_frontal": (rng.uniform(size=(b,)) < 0.5),
  }


def _step_case(variant: str) -> tuple[Any, Any, Any, Any]:
  """(jitted step, state, batch, config) of a config variant."""
  config = config_utils.load_config("tensor_aae", variant)
  mm = onthefly.world_morphable(config.data.resolution)
  nv = int(mm.mean.shape[0])
  ki, ke = int(mm.id_basis.shape[1]), int(mm.exp_basis.shape[1])
  rng = np.random.default_rng(0)
  batch = {k: jnp.asarray(v, jnp.float32)
           for k, v in _batch(config, nv, ki, ke, rng).items()}
  targets = objective.Targets.from_arrays(
      {k: np.asarray(batch[k]) for k in ("fit_identity", "fit_expression",
                                         "fit_shape")})
  ae, disc = method_lib.networks(config, num_vertices=nv, fit_identity=ki,
                                 fit_expression=ke)
  o = config.optim
  ae_tx = optax.adam(o.learning_rate, b1=o.b1)
  disc_tx = optax.adam(o.disc_learning_rate, b1=o.b1) if disc else None
  state = steps.init_state(jax.random.PRNGKey(0), batch, ae=ae, disc=disc,
                           ae_tx=ae_tx, disc_tx=disc_tx)
  fn = functools.partial(
      steps.train_step, ae=ae, disc=disc, ae_tx=ae_tx, disc_tx=disc_tx,
      weights=objective.Weights.from_config(config.loss), targets=targets,
      warmup_steps=0, gamma=float(config.began.gamma),
      lambda_k=float(config.began.lambda_k))
  jitted = jax.jit(fn, donate_argnums=0)
  return jitted, state, batch, config


def _time_step(jitted, state, batch, repeats: int) -> tuple[float, float]:
  """(median seconds per step, XLA FLOPs per step)."""
  key = jax.random.PRNGKey(1)
  compiled = jitted.lower(state, batch, key).compile()
  flops = utilisation.step_flops(compiled) or float("nan")
  holder = {"state": state}

  def one():
    holder["state"], metrics = compiled(holder["state"], batch, key)
    return metrics["loss"]

  return common.time_fn(one, warmup=2, repeats=repeats), flops


def _synthesis_case(sizes: tuple[int, int, int, int], batch: int,
                    runner_repeats: int) -> tuple[float, float]:
  """(ours, tensorly) seconds of x_f = Q_(1)(z_l ⊙ z_exp ⊙ z_id)."""
  rng = np.random.default_rng(0)
  d, kl, ke, ki = sizes
  q = rng.normal(size=(d, kl * ke * ki)).astype(np.float32)
  z = [rng.normal(size=(batch, k)).astype(np.float32) for k in (kl, ke, ki)]
  qj, zj = jax.device_put(q), [jax.device_put(a) for a in z]
  ours = jax.jit(lambda q, a, b, c: multilinear.project(q, [a, b, c]))
  tl.set_backend("numpy")
  cols = [a.T for a in z]  # tensorly: factors [k_i, n] column-wise.

  def peer():
    return q @ tenalg.khatri_rao(cols)

  got = np.asarray(ours(qj, *zj))
  np.testing.assert_allclose(got, peer().T, rtol=2e-3, atol=2e-3)
  ours_s = common.time_fn(lambda: ours(qj, *zj), repeats=runner_repeats)
  peer_s = common.time_fn(peer, repeats=runner_repeats, sync=lambda x: x)
  return ours_s, peer_s


def main(argv=None) -> None:
  args = common.parse_args("tensor_aae", argv)
  repeats = 3 if args.quick else 10
  peak = utilisation.measure_matmul_peak()
  records = []
  print(f"float32 matmul peak {peak / 1e9:.1f} GFLOP/s")
  cases = [("quick", "size=quick"), ("quick, no critic",
                                     "size=quick,ablation=no_adv")]
  if not args.quick:
    cases.append(("full", "size=full"))
  for label, variant in cases:
    jitted, state, batch, config = _step_case(variant)
    secs, flops = _time_step(jitted, state, batch, repeats)
    rate = flops / secs
    case = (f"train step {label}: {config.data.size} px, batch "
            f"{config.batch_size}, {flops / 1e9:.2f} GFLOP, "
            f"{rate / 1e9:.1f} GFLOP/s = {100 * rate / peak:.1f}% of the "
            "matmul peak")
    records.append(common.record(case, secs))
    print(f"{case}: {1e3 * secs:.1f} ms, {config.batch_size / secs:.1f} "
          "images/s", flush=True)
  synth = [("quick", (3072, 9, 6, 16), 32)]
  if not args.quick:
    synth.append(("full", (12288, 9, 15, 80), 64))
  for label, sizes, b in synth:
    ours_s, peer_s = _synthesis_case(sizes, b, repeats)
    case = (f"stream 3 synthesis {label}: Q {sizes[0]}x{sizes[1]}x"
            f"{sizes[2]}x{sizes[3]}, n={b}")
    records.append(common.record(case, ours_s, "tensorly-numpy "
                                 "unfold(Q)·khatri_rao", peer_s))
    print(f"{case}: {1e3 * ours_s:.3f} ms (tensorly {1e3 * peer_s:.3f} ms)",
          flush=True)
  records.append(common.matmul_peak_record(peak))
  common.write(records, args.out)


if __name__ == "__main__":
  main()
