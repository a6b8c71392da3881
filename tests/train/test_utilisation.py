"""FLOPs, throughput and matmul-peak share in the metrics; profiler traces."""

import json

import jax
import jax.numpy as jnp
import pytest

from disent_jax import methods
from disent_jax.train import loop
from disent_jax.train import utilisation

from testutil.harness import demo_config


def test_step_flops_of_a_matmul_is_2mnk():
  f = jax.jit(lambda a, b: a @ b)
  compiled = f.lower(jnp.ones((64, 32)), jnp.ones((32, 16))).compile()
  assert utilisation.step_flops(compiled) == 2 * 64 * 32 * 16


def test_matmul_peak_is_measured_once_and_cached(tmp_path, monkeypatch):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  calls = []
  monkeypatch.setattr(utilisation, "measure_matmul_peak",
                      lambda: calls.append(1) or 2.5e10)
  assert utilisation.matmul_peak(measure=False) is None
  assert utilisation.matmul_peak() == 2.5e10
  assert utilisation.matmul_peak() == 2.5e10
  assert len(calls) == 1
  table = json.loads((tmp_path / "disent_jax" / "matmul_peak.json")
                     .read_text())
  assert list(table.values()) == [2.5e10]


def test_measured_peak_is_positive_and_finite():
  peak = utilisation.measure_matmul_peak(size=256, repeats=2)
  assert 1e6 < peak < 1e16


def test_meter_arithmetic(monkeypatch):
  clock = iter([100.0, 102.0])
  monkeypatch.setattr(utilisation.time, "perf_counter", lambda: next(clock))
  meter = utilisation.Meter(flops=3e9, peak=1e10, step=10)
  out = meter.update(20)  # 10 steps in 2 s.
  assert out["steps_per_s"] == 5.0
  assert out["step_gflop"] == 3.0
  assert out["gflop_per_s"] == 15.0
  assert out["matmul_peak_fraction"] == 1.5


def test_loop_logs_utilisation_and_writes_a_profile(tmp_path):
  config = demo_config(total_steps=6, log_every_steps=3,
                       profile_steps="2:3")
  loop.train(config, str(tmp_path), methods.load("demo").build(config))
  records = [json.loads(line) for line in
             (tmp_path / "metrics.jsonl").read_text().splitlines()]
  for r in records:
    assert r["steps_per_s"] > 0 and r["gflop_per_s"] > 0
    assert 0 < r["matmul_peak_fraction"] < 10
    assert r["step_gflop"] > 0
  traces = list((tmp_path / "profile").rglob("*.xplane.pb"))
  assert traces, "no profiler trace written"
  report = (tmp_path / "report.md").read_text()
  assert "Training speed:" in report and "matmul peak" in report


def test_bad_profile_steps_is_a_config_error(tmp_path):
  config = demo_config(total_steps=3, profile_steps="5:2")
  with pytest.raises(ValueError, match="profile_steps"):
    loop.train(config, str(tmp_path), methods.load("demo").build(config))
