"""Paper 002's joint adversarial train step side by side with PyTorch.

Run: `python -m benchmarks.pointnet_id_vae [--quick] [--out FILE]`.

Ours is `jax.jit(method.train_step, donate_argnums=0)` of the method built
from `configs/pointnet_id_vae.py` (`dataset=synthface,size=full`) with
CoMA's settings: latent 4 / 4, batch 32, PointNet widths 64, 64, 64, 128,
1024, the identity discriminator with its 6 x 6 T-Net, CoMA's loss weights
and KL annealing, and `disc_pretrain_steps = 0` so that every step takes the
joint branch (eq. 6-8). The data are SynthFace meshes; the paper size uses
the "5k" template (4,974 vertices, CoMA has 5,023).

The peer is the same network and step written in PyTorch (CPU) inside this
module, with the same parameter count (asserted):

* VAE: PointNet encoder (Conv1d + BatchNorm1d + ReLU, max-pool), identity
  and expression Gaussian heads, two decoders Linear(d, 256) -> ReLU ->
  Linear(256, 3V) around the normalised mean face;
* L_recon, both KL terms (annealed), L_DID through the discriminator in
  training mode, L_neu (re-encoding of the predicted identity), L_lap with
  the same cotangent Laplacian as a sparse CSR matrix (same nnz), the
  (zero-weighted) ground-truth neutral term, then Adam with L2 weight decay
  and the staircase learning-rate decay on the VAE;
* D_ID update: a 6-channel PointNet with a 6 x 6 T-Net, fc 512 -> 256 -> 2
  with dropout 0.5, on a real (X, X_same) and a fake (X, X_id) pair, BCE
  plus the T-Net orthogonality penalty, Adam;
* the step metrics ours reports (gradient and parameter norms, D_ID
  accuracy).

Cases: the joint step at the paper size (5k template, batch 32) and a
smaller one (1k template, batch 8); `--quick` runs a tiny 1k case only.
Ours and the peer run in alternating rounds; each time is the median over
rounds of the per-round median. Without torch only ours is timed.
"""

import math
import os
import pathlib
import sys
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from benchmarks import common
from disent_jax.methods.pointnet_id_vae import data as data_lib
from disent_jax.methods.pointnet_id_vae import method as method_lib
from disent_jax.ops import laplacian as laplacian_ops
from disent_jax.train import config_utils
from disent_jax.train.method import DataContext

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _config(*, resolution: str, batch: int, widths=(64, 64, 64, 128, 1024),
            disc_widths=(64, 128, 1024), disc_head=(512, 256),
            decoder_hidden=(256,)) -> ml_collections.ConfigDict:
  """The method's config with CoMA's sizes and the joint branch only."""
  path = _ROOT / "configs" / "pointnet_id_vae.py"
  c = config_utils.load_config(path, "dataset=synthface,size=full")
  coma = config_utils.load_config(path, "dataset=coma,size=full")
  c.data.resolution = resolution
  # A few subjects suffice for timing (the step does not depend on them).
  c.data.num_subjects = 3
  c.data.num_test_subjects = 1
  c.data.frames = 2
  c.data.stats_examples = 16
  c.batch_size = batch
  c.model.id_latent = coma.model.id_latent
  c.model.exp_latent = coma.model.exp_latent
  c.model.widths = tuple(widths)
  c.model.decoder_hidden = tuple(decoder_hidden)
  c.model.disc_widths = tuple(disc_widths)
  c.model.disc_head = tuple(disc_head)
  c.model.disc_tnet = True
  c.model.input_transform = False
  c.loss = coma.loss
  c.use_discriminator = True
  c.disc_pretrain_steps = 0
  return c


def _count(tree: Any) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))


# ---------------------------------------------------------------------------
# The PyTorch twin.
# ---------------------------------------------------------------------------


def _torch_twin(torch, *, num_vertices: int, m: ml_collections.ConfigDict):
  """(VAE, discriminator) modules mirroring `model.py`."""
  tnn = torch.nn

  def shared_mlp(c_in, widths):
    layers, prev = [], c_in
    for w in widths:
      layers += [tnn.Conv1d(prev, w, 1), tnn.BatchNorm1d(w), tnn.ReLU()]
      prev = w
    return tnn.Sequential(*layers)

  class TNet(tnn.Module):

    def __init__(self, k):
      super().__init__()
      self.k = k
      self.mlp = shared_mlp(k, (64, 128, 1024))
      self.head = tnn.Sequential(
          tnn.Linear(1024, 512), tnn.BatchNorm1d(512), tnn.ReLU(),
          tnn.Linear(512, 256), tnn.BatchNorm1d(256), tnn.ReLU())
      self.out = tnn.Linear(256, k * k)
      tnn.init.zeros_(self.out.weight)
      tnn.init.zeros_(self.out.bias)
      self.register_buffer("eye", torch.eye(k))

    def forward(self, x):  # [B, k, N] -> [B, k, k]
      h = self.head(self.mlp(x).amax(dim=2))
      return self.out(h).view(-1, self.k, self.k) + self.eye

  class PointNet(tnn.Module):

    def __init__(self, c_in, widths, tnet):
      super().__init__()
      self.tnet = TNet(c_in) if tnet else None
      self.mlp = shared_mlp(c_in, widths)

    def forward(self, x):  # [B, N, C] -> ([B, W], [B, C, C] or None)
      h = x.transpose(1, 2)
      transform = None
      if self.tnet is not None:
        transform = self.tnet(h)
        h = torch.bmm(transform.transpose(1, 2), h)  # (x @ T)^T
      return self.mlp(h).amax(dim=2), transform

  class Vae(tnn.Module):

    def __init__(self):
      super().__init__()
      width = m.widths[-1]
      self.encoder = PointNet(3, tuple(m.widths), m.input_transform)
      self.id_heads = tnn.ModuleList(
          [tnn.Linear(width, m.id_latent) for _ in range(2)])
      self.exp_heads = tnn.ModuleList(
          [tnn.Linear(width, m.exp_latent) for _ in range(2)])

      def decoder(d):
        layers, prev = [], d
        for h in m.decoder_hidden:
          layers += [tnn.Linear(prev, h), tnn.ReLU()]
          prev = h
        return tnn.Sequential(*layers, tnn.Linear(prev, 3 * num_vertices))

      self.id_decoder = decoder(m.id_latent)
      self.exp_decoder = decoder(m.exp_latent)

    @staticmethod
    def _gaussian(heads, feat):
      mean, log_var = heads[0](feat), heads[1](feat)
      sample = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
      return mean, log_var, sample

    def encode(self, x):
      feat, _ = self.encoder(x)
      return self._gaussian(self.id_heads, feat), self._gaussian(
          self.exp_heads, feat)

  class Disc(tnn.Module):

    def __init__(self):
      super().__init__()
      self.pointnet = PointNet(6, tuple(m.disc_widths), m.disc_tnet)
      layers, prev = [], m.disc_widths[-1]
      for i, w in enumerate(m.disc_head):
        layers.append(tnn.Linear(prev, w))
        if i == len(m.disc_head) - 1:
          layers.append(tnn.Dropout(m.dropout))
        layers += [tnn.BatchNorm1d(w), tnn.ReLU()]
        prev = w
      self.head = tnn.Sequential(*layers, tnn.Linear(prev, 2))

    def forward(self, face, candidate):  # [B, V, 3] x 2 -> [B], transform
      feat, transform = self.pointnet(torch.cat([face, candidate], dim=2))
      logits = self.head(feat)
      return logits[:, 1] - logits[:, 0], transform

  return Vae(), Disc()


def _torch_step(torch, config, batch, *, mean, center, scale, laplacian,
                steps_per_epoch):
  """A zero-argument closure doing one joint step of the PyTorch twin."""
  tnn = torch.nn
  functional = tnn.functional
  v = mean.shape[0]
  vae, disc = _torch_twin(torch, num_vertices=v, m=config.model)
  vae.train()
  disc.train()
  o = config.optim

  def adam(params):
    opt = torch.optim.Adam(params, lr=o.learning_rate,
                           weight_decay=o.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(
        opt, step_size=max(1, int(round(o.decay_every_epochs *
                                        steps_per_epoch))),
        gamma=o.decay_rate)
    return opt, sched

  vae_params = list(vae.parameters())
  disc_params = list(disc.parameters())
  vae_opt, vae_sched = adam(vae_params)
  disc_opt, disc_sched = adam(disc_params)
  lap = laplacian.tocsr().astype(np.float32)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    lap_t = torch.sparse_csr_tensor(
        torch.from_numpy(lap.indptr.astype(np.int64)),
        torch.from_numpy(lap.indices.astype(np.int64)),
        torch.from_numpy(lap.data), size=lap.shape)
  mean_n = torch.from_numpy((mean - center) / scale)
  center_t = torch.from_numpy(center)
  w = config.loss
  weights = dict(recon=w.recon, kl_id=w.kl_id, kl_exp=w.kl_exp,
                 adv=w.adversarial, neu=w.neutral_code, lap=w.laplacian,
                 ne_gt=w.neutral_gt)
  raw = {k: torch.from_numpy(np.asarray(batch[k]))
         for k in ("vertices", "same_vertices", "neutral")}
  state = {"step": 0}

  def kl(mean_, log_var):
    return (0.5 * (log_var.exp() + mean_ * mean_ - 1.0 - log_var).sum(-1)
            ).mean()

  def bce(logits, label):
    return functional.binary_cross_entropy_with_logits(
        logits, torch.full_like(logits, label))

  def ortho(t):
    eye = torch.eye(t.shape[-1])
    return ((eye - t @ t.transpose(1, 2)) ** 2).sum((1, 2)).mean()

  def l2(tensors):
    return torch.sqrt(sum((t.detach() ** 2).sum() for t in tensors))

  def step():
    b = raw["vertices"].shape[0]
    x = (raw["vertices"] - center_t) / scale
    same = (raw["same_vertices"] - center_t) / scale
    neutral = (raw["neutral"] - center_t) / scale
    epoch = state["step"] / steps_per_epoch
    anneal = w.kl_anneal_epochs
    kl_factor = (min(max((anneal - epoch) / anneal, 0.0), 1.0)
                 if anneal > 0 else 1.0)
    # The VAE: eq. (7).
    (mu_i, lv_i, z_i), (mu_e, lv_e, z_e) = vae.encode(x)
    x_id = mean_n + vae.id_decoder(z_i).view(b, v, 3)
    exp_off = vae.exp_decoder(z_e).view(b, v, 3)
    recon = ((x_id + exp_off - x) ** 2).mean()
    (_, _, z_i2), _ = vae.encode(x_id)
    neu = (z_i - z_i2).abs().mean()
    delta = (lap_t @ x_id.permute(1, 0, 2).reshape(v, b * 3))
    lap_term = (delta ** 2).sum() / (b * v)
    ne_gt = ((x_id - neutral) ** 2).mean()
    fake_logit, _ = disc(x, x_id)
    adv = bce(fake_logit, 1.0)
    total = (weights["recon"] * recon +
             kl_factor * (weights["kl_id"] * kl(mu_i, lv_i) +
                          weights["kl_exp"] * kl(mu_e, lv_e)) +
             weights["adv"] * adv + weights["neu"] * neu +
             weights["lap"] * lap_term + weights["ne_gt"] * ne_gt)
    vae_opt.zero_grad(set_to_none=True)
    total.backward(inputs=vae_params)
    vae_opt.step()
    vae_sched.step()
    vae_norms = (l2([p.grad for p in vae_params]), l2(vae_params))
    # D_ID: (X, X_same) -> 1, (X, X_id) -> 0.
    fake = x_id.detach()
    real_logit, t1 = disc(x, same)
    fake_logit, t2 = disc(x, fake)
    d_loss = (0.5 * (bce(real_logit, 1.0) + bce(fake_logit, 0.0)) +
              w.tnet * 0.5 * (ortho(t1) + ortho(t2)))
    disc_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    disc_opt.step()
    disc_sched.step()
    accuracy = 0.5 * ((real_logit > 0).float().mean() +
                      (fake_logit <= 0).float().mean())
    state["step"] += 1
    return torch.stack([total.detach(), d_loss.detach(), accuracy,
                        *vae_norms, l2([p.grad for p in disc_params]),
                        l2(disc_params)])

  step.num_params = sum(p.numel() for p in vae_params + disc_params)
  return step


# ---------------------------------------------------------------------------
# One case.
# ---------------------------------------------------------------------------


def build_ours(config: ml_collections.ConfigDict):
  """(method, numpy batch, device batch, initial state) for `config`."""
  method = method_lib.build(config)
  it = method.data(DataContext(config=config, split="train",
                               process_index=0, process_count=1,
                               local_batch_size=config.batch_size))
  np_batch = next(it)
  batch_j = {k: jnp.asarray(v) for k, v in np_batch.items()}
  state = jax.jit(method.init)(jax.random.key(0), batch_j)
  return method, np_batch, batch_j, state


def bench_case(*, resolution: str, batch: int, rounds: int, repeats: int,
               torch, records: list[dict[str, Any]], **model) -> None:
  config = _config(resolution=resolution, batch=batch, **model)
  start = time.perf_counter()
  method, np_batch, batch_j, state = build_ours(config)
  step = jax.jit(method.train_step, donate_argnums=0)
  key = jax.random.key(1)
  holder = {"state": state}
  v = int(np_batch["vertices"].shape[1])
  ours_params = _count(state["params"])
  print(f"[{resolution} B={batch}] built ours in "
        f"{time.perf_counter() - start:.1f} s: V={v}, "
        f"{ours_params:,} parameters", file=sys.stderr)

  def ours():
    holder["state"], metrics = step(holder["state"], batch_j, key)
    return holder["state"], metrics

  peer = None
  if torch is not None:
    # The same mean face, normalisation and Laplacian as the method's.
    sources = data_lib.make_sources(config)
    mean, center, scale = data_lib.normalization(
        sources.train, max_examples=config.data.stats_examples)
    laplacian = laplacian_ops.cotangent_laplacian_matrix(
        mean.astype(np.float64), sources.faces)
    torch.manual_seed(0)
    peer = _torch_step(torch, config, np_batch, mean=mean, center=center,
                       scale=scale, laplacian=laplacian,
                       steps_per_epoch=len(sources.train) / batch)
    if peer.num_params != ours_params:
      raise AssertionError(f"parameter counts differ: ours {ours_params:,},"
                           f" PyTorch {peer.num_params:,}")

  contestants = [(ours, common.block, lambda: None)]
  threads = []
  if peer is not None:
    # PyTorch's OpenMP pool degrades badly when the cores are shared with
    # other processes, so it is timed with all cores and with one thread.
    threads = sorted({os.cpu_count() or 1, 1}, reverse=True)
    contestants += [(peer, lambda x: x,
                     lambda n=n: torch.set_num_threads(n)) for n in threads]
  times = common.alternating(contestants, rounds=rounds, repeats=repeats)
  m = config.model
  widths = "-".join(str(x) for x in (3,) + tuple(m.widths))
  disc = "-".join(str(x) for x in (6,) + tuple(m.disc_widths))
  case = (f"joint_step V={v} B={batch} z={m.id_latent}/{m.exp_latent} "
          f"enc {widths} D_ID {disc}+T-Net6 params={ours_params}")
  if not threads:
    records.append(common.record(case, times[0]))
  for n, peer_s in zip(threads, times[1:]):
    records.append(common.record(
        case, times[0], f"PyTorch twin, {n} thread{'s' if n > 1 else ''}",
        peer_s))
  print(common.markdown_table(records[-max(1, len(threads)):]),
        file=sys.stderr)


def main(argv=None) -> None:
  args = common.parse_args("pointnet_id_vae", argv)
  torch = common.import_torch()
  if torch is None:
    print("torch not installed: timing ours only (pip install -e .[parity])",
          file=sys.stderr)
  records: list[dict[str, Any]] = []
  if args.quick:
    bench_case(resolution="1k", batch=4, rounds=1, repeats=2, torch=torch,
               records=records, widths=(32, 64), disc_widths=(32, 64),
               disc_head=(32, 16), decoder_hidden=(64,))
  else:
    bench_case(resolution="1k", batch=8, rounds=5, repeats=2, torch=torch,
               records=records)
    bench_case(resolution="5k", batch=32, rounds=3, repeats=1, torch=torch,
               records=records)
  assert all(math.isfinite(r["ours_s"]) for r in records)
  common.write(records, args.out)


if __name__ == "__main__":
  main()
