"""Paper 002's train step against the paper's released PyTorch code.

Run: `python -m benchmarks.pointnet_id_vae_released --peer_repo=PATH
[--quick] [--out FILE]`, where PATH is a checkout of
`rmraaron/FaceExpDisentanglement` (nothing of it is copied here: its
`Model/vae.py`, `Model/discriminator.py` and `Model/laplacian_loss.py` are
imported from PATH).

Two steps, at the paper's CoMA size (latents 4 / 4, batch 32, PointNet
3-64-64-64-128-1024, D_ID 6-64-128-1024 with its 6 x 6 T-Net and fc
512-256-2, no batch norm in D_ID) on SynthFace's "5k" template (4,974
vertices; CoMA has 5,023):

* the VAE step (-id-dis): the reconstruction MSE, both KL terms, L_lap on
  the predicted neutral and L_neu (the predicted neutral re-encoded), then
  Adam with weight decay 1e-4;
* the VAE + D_ID step (+id-dis): additionally D_ID's update on one shuffled
  batch of real and predicted pairs with its own Adam, and the VAE's
  adversarial term.

Ours is `jax.jit(method.train_step, donate_argnums=0)` of the method built
by `benchmarks.pointnet_id_vae` (CoMA's weights, joint branch only). The
peer is the released modules driven as `end_to_end.py` drives them in its
training loop (D_ID first, its backward through the VAE graph with
`retain_graph=True`, then the VAE's loss, a second VAE forward pass on the
predicted neutral, backward, both optimisers); the only change to the
released code is `Model.laplacian_loss.device`, set to the CPU (the module
hard-codes CUDA). Its Laplacian is dense [V, V], as released.

Ours and the peer (with all cores and with one thread) run in alternating
rounds; each time is the median over rounds of per-round medians. The
record also gives the fraction of the machine's float32 matmul peak that
our step reaches (FLOPs from XLA's cost analysis).
"""

import argparse
import importlib
import pathlib
import sys
import time
import types
from typing import Any

import jax
import numpy as np

from benchmarks import common
from benchmarks import pointnet_id_vae as twin_bench
from disent_jax.methods.pointnet_id_vae import data as data_lib
from disent_jax.train import utilisation

_PEER_FILES = ("Model/vae.py", "Model/discriminator.py",
               "Model/laplacian_loss.py")


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog="python -m benchmarks.pointnet_id_vae_released")
  parser.add_argument("--peer_repo", required=True, type=pathlib.Path,
                      help="checkout of rmraaron/FaceExpDisentanglement")
  parser.add_argument("--quick", action="store_true",
                      help="a small case only (smoke run)")
  parser.add_argument(
      "--out", default=str(pathlib.Path(__file__).parent / "results" /
                           "pointnet_id_vae_released.json"))
  return parser.parse_args(argv)


def import_peer(repo: pathlib.Path, torch) -> types.SimpleNamespace:
  """The released modules, imported from `repo` (CPU device patched in)."""
  missing = [f for f in _PEER_FILES if not (repo / f).is_file()]
  if missing:
    raise FileNotFoundError(
        f"--peer_repo={repo}: expected a checkout of "
        f"rmraaron/FaceExpDisentanglement with {', '.join(_PEER_FILES)}; "
        f"missing {', '.join(missing)}")
  sys.path.insert(0, str(repo))
  try:
    vae = importlib.import_module("Model.vae")
    disc = importlib.import_module("Model.discriminator")
    lap = importlib.import_module("Model.laplacian_loss")
  finally:
    sys.path.remove(str(repo))
  lap.device = torch.device("cpu")
  return types.SimpleNamespace(vae=vae, discriminator=disc, laplacian=lap)


def peer_step(torch, peer, *, batch: dict[str, np.ndarray],
              mean_face: np.ndarray, faces: np.ndarray, loss, optim,
              latent: tuple[int, int], id_dis: bool):
  """A zero-argument closure running one training step of the released code.

  Args:
    torch: the module.
    peer: `import_peer`'s modules.
    batch: "vertices" and "same_vertices" [B, V, 3] (normalised).
    mean_face: [V, 3] normalised mean face.
    faces: [F, 3] triangles (the Laplacian's).
    loss: our config's loss weights (lambda_1 ...), given to the peer's
      `args` under its own names.
    optim: our config's optimiser settings.
    latent: (identity, expression) latent sizes.
    id_dis: train D_ID as well (+id-dis).
  """
  functional = torch.nn.functional
  v = mean_face.shape[0]
  args = types.SimpleNamespace(dataset="SynthFace", info_bn=False,
                               use_bn=False, with_neutral_gt=False)
  vae = peer.vae.VariationalAE(args, v, *latent)
  disc = peer.discriminator.Discriminator(args, v, p=0.5, global_feat=True)
  opt_vae = torch.optim.Adam(vae.parameters(), lr=optim.learning_rate,
                             weight_decay=optim.weight_decay)
  opt_disc = torch.optim.Adam(disc.parameters(),
                              lr=optim.disc_learning_rate)
  laplacian = peer.laplacian.LaplacianLoss(vertices_number=v, faces=faces,
                                           average=True)
  mean = torch.from_numpy(mean_face.astype(np.float32)).unsqueeze(0)
  true = torch.from_numpy(np.asarray(batch["vertices"], np.float32))
  same = torch.from_numpy(np.asarray(batch["same_vertices"], np.float32))
  ones = torch.ones(true.shape[0], dtype=torch.long)

  def step():
    pred, pred_neu, _, kl_id, kl_exp, z_id, _ = vae(true)
    pred_pair = torch.cat([true, pred_neu + mean], dim=2)
    d_loss = torch.zeros(())
    if id_dis:
      disc.train()
      pairs = torch.cat([torch.cat([true, same], dim=2), pred_pair])
      labels = torch.cat([ones, torch.zeros_like(ones)])
      order = torch.randperm(labels.shape[0])
      opt_disc.zero_grad()
      d_loss = functional.cross_entropy(disc(pairs[order]), labels[order])
      d_loss.backward(retain_graph=True)
      opt_disc.step()
    vae.train()
    opt_vae.zero_grad()
    total = (loss.recon * functional.mse_loss(pred, true - mean) +
             loss.kl_id * kl_id + loss.kl_exp * kl_exp +
             loss.laplacian * laplacian(pred_neu + mean))
    if id_dis:
      total = total + loss.adversarial * functional.cross_entropy(
          disc(pred_pair), ones)
    _, _, _, _, _, z_neu, _ = vae(pred_neu + mean)
    total = total + loss.neutral_code * functional.l1_loss(z_neu, z_id)
    total.backward()
    opt_vae.step()
    return torch.stack([total.detach(), d_loss.detach()])

  step.num_params = sum(p.numel() for p in vae.parameters()) + (
      sum(p.numel() for p in disc.parameters()) if id_dis else 0)
  return step


def bench_case(*, resolution: str, batch: int, rounds: int, repeats: int,
               id_dis: bool, torch, peer, peak: float | None,
               records: list[dict[str, Any]]) -> None:
  """Times ours and the released step for one size and setting."""
  config = twin_bench._config(resolution=resolution, batch=batch)  # pylint: disable=protected-access
  config.use_discriminator = id_dis
  start = time.perf_counter()
  method, np_batch, batch_j, state = twin_bench.build_ours(config)
  key = jax.random.key(1)
  compiled = jax.jit(method.train_step, donate_argnums=0).lower(
      state, batch_j, key).compile()
  flops = utilisation.step_flops(compiled)
  holder = {"state": state}

  def ours():
    holder["state"], metrics = compiled(holder["state"], batch_j, key)
    return holder["state"], metrics

  sources = data_lib.make_sources(config)
  mean, center, scale = data_lib.normalization(
      sources.train, max_examples=config.data.stats_examples)
  normal = {k: (np.asarray(np_batch[k]) - center) / scale
            for k in ("vertices", "same_vertices")}
  torch.manual_seed(0)
  theirs = peer_step(
      torch, peer, batch=normal, mean_face=(mean - center) / scale,
      faces=np.asarray(sources.faces), loss=config.loss, optim=config.optim,
      latent=(config.model.id_latent, config.model.exp_latent),
      id_dis=id_dis)
  v = int(np_batch["vertices"].shape[1])
  print(f"[{resolution} B={batch} id_dis={id_dis}] built in "
        f"{time.perf_counter() - start:.1f} s: V={v}, ours "
        f"{twin_bench._count(state['params']):,} parameters, released "  # pylint: disable=protected-access
        f"{theirs.num_params:,}", file=sys.stderr)
  threads = sorted({torch.get_num_threads(), 1}, reverse=True)
  all_threads = threads[0]
  contestants = [(ours, common.block, lambda: None)] + [
      (theirs, lambda x: x, lambda n=n: torch.set_num_threads(n))
      for n in threads]
  times = common.alternating(contestants, rounds=rounds, repeats=repeats)
  torch.set_num_threads(all_threads)
  name = "VAE + D_ID step" if id_dis else "VAE step"
  case = f"{name} V={v} B={batch} z=4/4"
  if flops and peak:
    case += (f" ({flops / 1e9:.0f} GFLOP, ours at "
             f"{100 * flops / times[0] / peak:.1f}% of matmul peak)")
  for n, peer_s in zip(threads, times[1:]):
    records.append(common.record(
        case, times[0],
        f"released code, {n} thread{'s' if n > 1 else ''}", peer_s))
  print(common.markdown_table(records[-len(threads):]), file=sys.stderr)


def main(argv=None) -> None:
  args = parse_args(argv)
  torch = common.import_torch()
  if torch is None:
    sys.exit("torch is not installed: pip install -e .[parity]")
  peer = import_peer(args.peer_repo.expanduser().resolve(), torch)
  peak = utilisation.matmul_peak()
  records: list[dict[str, Any]] = []
  if args.quick:
    for id_dis in (False, True):
      bench_case(resolution="1k", batch=4, rounds=1, repeats=1,
                 id_dis=id_dis, torch=torch, peer=peer, peak=peak,
                 records=records)
  else:
    for id_dis in (False, True):
      bench_case(resolution="5k", batch=32, rounds=3, repeats=1,
                 id_dis=id_dis, torch=torch, peer=peer, peak=peak,
                 records=records)
  common.write(records, args.out)


if __name__ == "__main__":
  main()
