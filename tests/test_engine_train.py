"""Trainer loop: exact resume after an interruption, non-finite loss, gradient accumulation, writers."""

import json

import pytest
import torch
from fvcore.common.param_scheduler import PolynomialDecayParamScheduler
from softlabelseg.engine import (
    Checkpointer,
    HookBase,
    JSONWriter,
    LRMultiplier,
    SimpleTrainer,
    WarmupParamScheduler,
    get_default_optimizer_params,
    seed_all_rng,
)
from softlabelseg.engine.hooks import IterationTimer, LRScheduler, PeriodicCheckpointer, PeriodicWriter

from tests.helpers.standins import ToyLoader, ToySegModel


class Interrupt(HookBase):
    """Simulates a kill: raises before iteration ``at`` runs (after the previous step's checkpoint)."""

    def __init__(self, at):
        self.at = at

    def before_step(self):
        if self.trainer.iter == self.at:
            raise KeyboardInterrupt("simulated kill")


def build(out, max_iter=8, seed=0, stateful=True, nan_at=None, period=2, extra_hooks=()):
    seed_all_rng(seed)
    model = ToySegModel(nan_at_call=nan_at)
    params = get_default_optimizer_params(model, weight_decay_norm=0.0)
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-4)
    trainer = SimpleTrainer(model, ToyLoader(stateful=stateful), opt)
    ckpt = Checkpointer(model, str(out), trainer=trainer)
    poly = PolynomialDecayParamScheduler(1.0, 0.9)
    sched = LRMultiplier(opt, WarmupParamScheduler(poly, 0.1, 0.25), max_iter)
    writer = PeriodicWriter([JSONWriter(str(out / "metrics.json"))], period=1)
    trainer.register_hooks(
        [IterationTimer(), LRScheduler(opt, sched), PeriodicCheckpointer(ckpt, period, max_iter), writer]
        + list(extra_hooks)
    )
    return trainer, ckpt


def state_of(trainer):
    model = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    momentum = [trainer.optimizer.state[p]["momentum_buffer"].clone() for p in trainer.model.parameters()]
    return model, momentum


@pytest.mark.parametrize("stateful", [True, False], ids=["loader-state", "fast-forward"])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, stateful):
    ref, _ = build(tmp_path / "ref", stateful=stateful)
    ref.train(0, 8)
    expected = state_of(ref)

    run, _ = build(tmp_path / "run", stateful=stateful, extra_hooks=[Interrupt(5)])
    with pytest.raises(KeyboardInterrupt):
        run.train(0, 8)
    assert (tmp_path / "run" / "last_checkpoint").read_text() == "model_0000003.pth"

    # a fresh "process": different seed, new objects; everything must come from the checkpoint
    resumed, ckpt = build(tmp_path / "run", seed=999, stateful=stateful)
    start = ckpt.resume_or_load(None, resume=True)["iteration"]
    assert start == 4
    resumed.train(start, 8)
    got = state_of(resumed)
    for k in expected[0]:
        torch.testing.assert_close(got[0][k], expected[0][k], rtol=0, atol=0, msg=k)
    for a, b in zip(got[1], expected[1]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.optimizer.param_groups[0]["lr"] == ref.optimizer.param_groups[0]["lr"]
    assert (tmp_path / "run" / "model_final.pth").exists()


def test_checkpoint_is_weights_only_loadable(tmp_path):
    trainer, _ = build(tmp_path, max_iter=2)
    trainer.train(0, 2)
    data = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert data["iteration"] == 2 and set(data) == {"model", "trainer", "iteration"}
    assert {"optimizer", "rng", "data", "hooks"} <= set(data["trainer"])
    lines = [json.loads(x) for x in (tmp_path / "metrics.json").read_text().splitlines()]
    assert [x["iteration"] for x in lines] == [0, 1] and "loss_sem_seg" in lines[0] and "lr" in lines[0]


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer, ckpt = build(tmp_path, nan_at=4)  # 4th forward -> NaN loss, at iteration index 3
    before = tmp_path / "last_checkpoint"
    with pytest.raises(FloatingPointError, match="iteration 3"):
        trainer.train(0, 8)
    assert before.read_text() == "model_0000001.pth"
    assert not (tmp_path / "model_final.pth").exists()
    good = torch.load(tmp_path / "model_0000001.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in good["model"].values() if v.is_floating_point())
    assert good["iteration"] == 2


def test_grad_accumulation_matches_larger_batch():
    class Pairs:
        """Batches of 4 made of two consecutive batches of 2 (same samples, same order)."""

        def __iter__(self):
            it = iter(ToyLoader(batch_size=2))
            while True:
                yield next(it) + next(it)

    results = []
    for loader, accum in [(ToyLoader(batch_size=2), 2), (Pairs(), 1)]:
        seed_all_rng(0)
        model = ToySegModel(plain=True)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = SimpleTrainer(model, loader, opt, grad_accum_steps=accum, clip_grad_norm=10.0)
        trainer.train(0, 3)
        results.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_the_divergence_guard_tells_an_explosion_from_a_late_spike():
    from softlabelseg.engine.train_loop import TrainStep

    model = torch.nn.Linear(2, 2)
    step = TrainStep(model, [], torch.optim.SGD(model.parameters(), lr=0.1), max_loss=1e3, max_loss_ratio=20)
    for loss in (2.5, 2.4, 2.4, 2.3, 2.2):  # the start of a run
        assert step._divergence(loss) is None
    for _ in range(60):  # it memorises its data
        assert step._divergence(0.05) is None
    assert step._divergence(1.5) is None  # 30 times the median, yet below the starting loss: a spike
    assert "times its median" in step._divergence(40.0)  # above both: an explosion
    assert "max_loss" in step._divergence(2e3) and "not finite" in step._divergence(float("nan"))
    restored = TrainStep(model, [], torch.optim.SGD(model.parameters(), lr=0.1), max_loss_ratio=20)
    restored.load_state_dict({"optimizer": step.optimizer.state_dict(), "start_loss": step._start_loss})
    assert restored._start_loss == pytest.approx(2.4)
