"""Metric writers (JSON lines, TensorBoard events) and config helpers."""

import json
import struct

import ml_collections
import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from disent_jax import methods
from disent_jax.train import config_utils
from disent_jax.train import step_utils
from disent_jax.train import writers


def _read_events(path):
  """Parses a TFRecord-framed event file (no TensorFlow needed)."""
  data = path.read_bytes()
  out, pos = [], 0
  while pos < len(data):
    (length,) = struct.unpack("<Q", data[pos:pos + 8])
    payload = data[pos + 12:pos + 12 + length]
    pos += 12 + length + 4
    event = event_pb2.Event()
    event.ParseFromString(payload)
    for v in event.summary.value:
      out.append((event.step, v.tag, v.simple_value))
  return out


def test_metric_writer_writes_jsonl_and_tensorboard(tmp_path):
  w = writers.MetricWriter(str(tmp_path))
  w.write_scalars(5, {"loss": np.float32(0.5), "l2": 2.0})
  w.write_scalars(10, {"loss": np.float32(np.nan)})
  w.close()
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text()
          .splitlines()]
  assert rows[0]["step"] == 5 and rows[0]["loss"] == 0.5
  assert rows[1]["loss"] == "nan"  # Valid JSON even for non-finite values.
  (event_file,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
  scalars = _read_events(event_file)
  assert (5, "loss", 0.5) in scalars and (5, "l2", 2.0) in scalars


def test_progress_shows_loss_first_or_the_chosen_keys():
  scalars = {"adv": 1.0, "d_loss": 2.0, "loss": 3.0, "recon": 4.0}
  bar = writers.Progress(total=3, initial=0, enabled=False)
  assert list(bar.postfix(scalars)) == ["loss", "adv", "d_loss"]
  bar = writers.Progress(total=3, initial=0, enabled=False,
                         keys=("recon", "missing", "loss"))
  assert bar.postfix(scalars) == {"recon": "4", "loss": "3"}


def test_parse_variant_types_and_errors():
  v = config_utils.parse_variant("runlocal,size=3,name=x", runlocal=False,
                                 size=1, name="a", rate=0.5)
  assert v.runlocal is True and v.size == 3 and v.name == "x"
  assert v.rate == 0.5
  with pytest.raises(ValueError, match="'sise'"):
    config_utils.parse_variant("sise=2", size=1)
  with pytest.raises(ValueError, match="size='big'"):
    config_utils.parse_variant("size=big", size=1)
  with pytest.raises(ValueError, match="expected a bool"):
    config_utils.parse_variant("runlocal=maybe", runlocal=False)


def test_check_keys_names_missing_keys():
  config = ml_collections.ConfigDict({"method": "demo", "seed": 0})
  with pytest.raises(ValueError, match="total_steps"):
    config_utils.check_keys(config)


def test_unknown_method_is_named():
  with pytest.raises(ValueError, match="'nope'"):
    methods.load("nope")


def test_tree_l2_and_all_finite_against_numpy():
  tree = {"a": np.arange(3.0), "b": [np.ones((2, 2)), np.float32(-2.0)]}
  expected = np.sqrt(np.sum(np.arange(3.0) ** 2) + 4 + 4)
  np.testing.assert_allclose(step_utils.tree_l2(tree), expected, rtol=1e-6)
  assert bool(step_utils.all_finite({"x": 1.0, "n": np.int32(3)}))
  assert not bool(step_utils.all_finite({"x": np.array([1.0, np.inf])}))


def test_load_config_by_name_and_path(tmp_path, monkeypatch):
  from testutil.harness import ROOT  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(ROOT / "disent_jax")  # Found from a subfolder too.
  by_name = config_utils.load_config("demo", "runlocal")
  by_path = config_utils.load_config(ROOT / "configs" / "demo.py", "runlocal")
  assert by_name.to_dict() == by_path.to_dict()
  assert by_name.total_steps == 40
  with pytest.raises(FileNotFoundError, match="nope"):
    config_utils.load_config("nope")
  monkeypatch.chdir(tmp_path)
  with pytest.raises(FileNotFoundError, match="configs/"):
    config_utils.find_configs_dir()


def test_train_and_eval_commands_import_into_one_process():
  from disent_jax.cli import eval as eval_cli  # pylint: disable=g-import-not-at-top
  from disent_jax.cli import train as train_cli  # pylint: disable=g-import-not-at-top
  assert callable(train_cli.run) and callable(eval_cli.run)
