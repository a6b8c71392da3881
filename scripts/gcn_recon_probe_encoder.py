r"""How well gcn_recon's encoder alone generalises a supervised target.

    python scripts/gcn_recon_probe_encoder.py \
        --config=configs/gcn_recon.py --config.data.num_subjects=40 \
        --config.data.size=32 --config.batch_size=16 \
        --target=pose --steps=400 --out=/tmp/enc_pose.json

Trains the config's `ResNetEncoder` (its c_pose head for --target=pose,
a 136-wide landmark head for --target=landmarks) by plain regression on
the ground truth of the training images, with Adam at the config's
learning rate, and reports the error on training and on unseen subjects
beside the trivial answer (zero pose, the mean landmarks). It bounds what
the self-supervised model can reach: if the encoder cannot learn the head
pose from N images with the answer given, the landmark and photometric
terms cannot teach it either.
"""

import json
import pathlib
import time
from typing import Sequence

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from disent_jax.cli import common
from disent_jax.methods.gcn_recon import data as data_lib
from disent_jax.methods.gcn_recon import model as model_lib

_TARGET = flags.DEFINE_enum("target", "pose", ["pose", "landmarks"],
                            "What the encoder regresses.")
_STEPS = flags.DEFINE_integer("steps", 400, "Training steps.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 100, "Evaluate every.")
_AUGMENT = flags.DEFINE_bool(
    "augment", False, "Random colour gain and +-2 px shifts (shifting the "
    "landmark targets with the image).")
_OUT = flags.DEFINE_string("out", None, "Write the rows here (JSON).")


class Regressor(nn.Module):
  """The encoder's trunk and one linear head of `width` outputs."""
  encoder: model_lib.ResNetEncoder
  width: int

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    codes, skips = self.encoder(images)
    if self.width == 3:
      return codes["pose"][:, :3]
    feature = jnp.mean(skips[-1], axis=(1, 2))
    return nn.Dense(self.width)(feature)


def targets(arrays, target: str) -> np.ndarray:
  """[N, D] regression targets: (pitch, yaw, roll) in degrees, or the
  landmarks in image-size units."""
  if target == "pose":
    return np.asarray(arrays["pose"], np.float32) * (180.0 / np.pi)
  size = arrays["image"].shape[1]
  return (np.asarray(arrays["landmarks_2d"], np.float32) / size).reshape(
      len(arrays["image"]), -1)


def augment(rng: np.random.Generator, images: np.ndarray, y: np.ndarray,
            target: str) -> tuple[np.ndarray, np.ndarray]:
  """Colour gain in [0.8, 1.2] per channel and an integer shift of <= 2 px
  (edge padded); landmark targets move with the image."""
  n, s = images.shape[:2]
  out = np.empty_like(images)
  y = y.copy()
  for i in range(n):
    dx, dy = rng.integers(-2, 3, 2)
    padded = np.pad(images[i], ((2, 2), (2, 2), (0, 0)), mode="edge")
    out[i] = padded[2 - dy:2 - dy + s, 2 - dx:2 - dx + s]
    out[i] *= rng.uniform(0.8, 1.2, 3)
    if target == "landmarks":
      y[i] = (y[i].reshape(-1, 2) + np.array([dx, dy]) / s).reshape(-1)
  return np.clip(out, 0.0, 1.0), y


def error(pred: np.ndarray, y: np.ndarray, target: str) -> list[float]:
  """Mean |error| per pose angle (deg), or the mean landmark distance
  (image-size units)."""
  if target == "pose":
    return [round(float(v), 3) for v in np.abs(pred - y).mean(0)]
  d = np.linalg.norm((pred - y).reshape(len(y), -1, 2), axis=-1)
  return [round(float(d.mean()), 5)]


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = common.CONFIG.value
  m = config.model
  target = _TARGET.value
  train, test = data_lib.generate(data_lib.DataConfig.from_config(
      config.data))
  y_train, y_test = targets(train, target), targets(test, target)
  enc = model_lib.ResNetEncoder(
      stage_widths=tuple(m.stage_widths), stage_blocks=tuple(m.stage_blocks),
      bottleneck=bool(m.bottleneck), stem_width=int(m.stem_width),
      branch_hidden=int(m.branch_hidden))
  net = Regressor(enc, 3 if target == "pose" else y_train.shape[1])
  params = net.init(jax.random.PRNGKey(config.seed), train["image"][:2])
  tx = optax.adam(config.optim.learning_rate)
  opt = tx.init(params)
  mean = y_train.mean(0)

  @jax.jit
  def step(params, opt, x, y):
    def loss(p):
      pred = net.apply(p, x)
      if target == "landmarks":
        pred = pred + mean
      return jnp.mean((pred - y) ** 2)
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), opt, value

  @jax.jit
  def predict(params, x):
    pred = net.apply(params, x)
    return pred + mean if target == "landmarks" else pred

  def evaluate(s: int) -> dict:
    row = {"step": s}
    for name, x, y in (("train", train["image"], y_train),
                       ("test", test["image"], y_test)):
      pred = np.concatenate([np.asarray(predict(params, x[i:i + 64]))
                             for i in range(0, len(x), 64)])
      trivial = np.zeros_like(y) if target == "pose" else np.broadcast_to(
          mean, y.shape)
      row[name] = {"error": error(pred, y, target),
                   "trivial": error(trivial, y, target)}
    print(row, flush=True)
    return row

  rng = np.random.default_rng(config.seed)
  rows, start = [evaluate(0)], time.time()
  for s in range(1, _STEPS.value + 1):
    idx = rng.integers(0, len(y_train), config.batch_size)
    x, y = train["image"][idx], y_train[idx]
    if _AUGMENT.value:
      x, y = augment(rng, x, y, target)
    params, opt, value = step(params, opt, x, y)
    if s % _EVAL_EVERY.value == 0 or s == _STEPS.value:
      print(f"step {s} {time.time() - start:.0f}s loss {float(value):.4g}")
      rows.append(evaluate(s))
  if _OUT.value:
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": config.to_dict(), "target": target,
                               "augment": _AUGMENT.value, "rows": rows},
                              indent=1, default=str))


if __name__ == "__main__":
  common.quiet_library_logs()
  app.run(main, flags_parser=common.parse_flags)
