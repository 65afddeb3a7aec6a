"""The timed loop and the transformers runner, in process: what is inside the timer, and what is not."""

from __future__ import annotations

import time

import pytest

from hubtool.bench.phases import measure_phase, measure_phases
from hubtool.bench.timing import CpuClock, gc_paused, time_calls


class SleepyRunner:
    """Prefill costs 30 ms, a decode step 2 ms: decode samples must not contain the prefill."""

    new_tokens = 5

    def __init__(self, fail_decode_every: int = 0) -> None:
        self.steps = 0
        self.fail_decode_every = fail_decode_every

    def prefill(self) -> int:
        time.sleep(0.03)
        return 8

    def begin_decode(self) -> None:
        time.sleep(0.03)

    def decode_step(self) -> int:
        self.steps += 1
        if self.fail_decode_every and self.steps % self.fail_decode_every == 0:
            raise RuntimeError("step exploded")
        time.sleep(0.002)
        return 1

    def generate(self) -> int:
        time.sleep(0.03 + 5 * 0.002)
        return 5


def test_decode_excludes_prefill_and_times_each_step():
    runner = SleepyRunner()
    results = measure_phases(runner, warmup=1, repeats=3, clock=CpuClock())
    decode = results["decode"]
    assert len(decode["samples"]) == 3 and all(2.0 <= s < 15.0 for s in decode["samples"])
    assert [len(steps) for steps in decode["step_samples"]] == [5, 5, 5]
    assert decode["tokens"] == [5, 5, 5]
    assert all(s >= 30.0 for s in results["prefill"]["samples"])
    assert all(s >= 40.0 for s in results["e2e"]["samples"])
    # Warmup passes run the full token count and are not samples.
    assert runner.steps == (1 + 3) * 5
    assert results["prefill"]["first_call_ms"] >= 30.0


def test_a_failing_attempt_is_counted_and_the_loop_goes_on():
    runner = SleepyRunner(fail_decode_every=12)  # steps 12 and 24 fail: timed attempts 2 and 5
    record = measure_phase(runner, "decode", warmup=1, repeats=5, clock=CpuClock())
    assert record["attempts"] == 5 and record["failures"] == 2
    assert len(record["samples"]) == 3
    assert record["errors"] == ["RuntimeError: step exploded"] * 2


def test_failing_warmup_fails_every_attempt():
    runner = SleepyRunner(fail_decode_every=1)
    record = measure_phase(runner, "decode", warmup=2, repeats=4, clock=CpuClock())
    assert (record["attempts"], record["failures"], record["samples"]) == (4, 4, [])


def test_gc_is_off_while_timing():
    import gc

    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    assert time_calls(gc.isenabled, calls=1, clock=CpuClock())[1] == [False]


@pytest.fixture(scope="module")
def small_model(gpt2_25m_dir):
    from hubtool.backends import eager

    return eager.load(gpt2_25m_dir).model


@pytest.mark.slow
def test_static_cache_decodes_like_the_dynamic_cache(small_model):
    """The StaticCache path (what CUDA graphs need) gives the same greedy tokens as the default."""
    import torch

    from hubtool.bench.torch_runner import TorchRunner

    tokens = {}
    for static in (False, True):
        runner = TorchRunner(small_model, prompt_len=8, new_tokens=6, batch_size=2, seed=0, static_cache=static)
        for _ in range(2):  # the second pass reuses (resets) the preallocated cache
            runner.begin_decode()
            seq = [runner._token.clone()]
            for _ in range(6):
                assert runner.decode_step() == 2
                seq.append(runner._token.clone())
        tokens[static] = torch.cat(seq, 1)
        assert runner.prefill() == 16
        assert runner.generate() == 12
    assert torch.equal(tokens[False], tokens[True])


def test_cuda_clock_and_reduce_overhead_cell():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU: CUDA events and reduce-overhead (CUDA graphs) run only there")
    from hubtool.bench.timing import CudaClock

    x = torch.randn(2048, 2048, device="cuda")
    samples, _ = time_calls(lambda: x @ x, calls=5, clock=CudaClock())
    assert all(s > 0 for s in samples)


def test_one_collection_before_the_repeats_none_between_them():
    """A gc.collect() right before a timed call slowed gpt2-25m's first decode step (found by
    benchmarks/bench_vs_timer.py); the repeats share a single collection made before them."""
    import gc

    collections = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        for phase in ("prefill", "decode", "e2e"):
            collections.clear()
            record = measure_phase(SleepyRunner(), phase, warmup=0, repeats=4, clock=CpuClock())
            assert len(record["samples"]) == 4
            assert len(collections) == 1, (phase, collections)
    finally:
        gc.callbacks.remove(count)
