"""Two-process DDP on CPU (gloo) through ``launch``: synchronized weights, per-rank RNG in checkpoints,
confusion matrices summed across ranks, a non-finite loss stopping every rank, no DDP model outliving
the process group."""

import gc

import torch
import torch.distributed as dist

from tests.helpers.standins import ToyLoader, ToySegModel, toy_test_set


def _worker(out_dir):
    from softlabelseg.engine import Checkpointer, SimpleTrainer, comm, create_ddp_model, seed_all_rng
    from softlabelseg.engine.hooks import PeriodicCheckpointer
    from softlabelseg.evaluation import SemSegEvaluator, inference_on_dataset

    rank = comm.get_rank()
    assert comm.get_world_size() == 2
    seed_all_rng(rank)  # different initialisations: DDP must broadcast rank 0's
    model = ToySegModel()
    ddp = create_ddp_model(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    trainer = SimpleTrainer(ddp, ToyLoader(batch_size=2), opt, grad_accum_steps=2)
    ckpt = Checkpointer(ddp, out_dir, trainer=trainer)
    trainer.register_hooks([PeriodicCheckpointer(ckpt, period=2, max_iter=3)])
    trainer.train(0, 3)

    ev = SemSegEvaluator(num_classes=3)
    res = inference_on_dataset(model, toy_test_set(4)[rank::2], ev)
    local = ev._conf.clone()
    total = ev.confusion()

    nan_model = create_ddp_model(ToySegModel(nan_at_call=2 if rank == 1 else None))  # NaN on rank 1 only
    bad = SimpleTrainer(nan_model, ToyLoader(), torch.optim.SGD(nan_model.parameters(), lr=0.1))
    try:
        bad.train(0, 5)
        stopped_at = None
    except FloatingPointError:
        stopped_at = bad.iter
    torch.save(
        {
            "params": [p.detach().clone() for p in model.parameters()],
            "local": local,
            "total": total,
            "miou": res["sem_seg"]["mIoU"],
            "stopped_at": stopped_at,
        },
        f"{out_dir}/rank{rank}.pt",
    )
    gc.disable()  # only launch's own clean-up may free the models' reference cycles before the check
    destroy = dist.destroy_process_group

    def destroy_and_count_live_ddp_models(*args, **kwargs):
        live = sum(isinstance(o, torch.nn.parallel.DistributedDataParallel) for o in gc.get_objects())
        with open(f"{out_dir}/rank{rank}_ddp_alive_at_destroy.txt", "w") as f:
            f.write(str(live))
        gc.enable()
        return destroy(*args, **kwargs)

    dist.destroy_process_group = destroy_and_count_live_ddp_models


def test_two_process_gloo(tmp_path):
    from softlabelseg.engine import launch

    # a file rendezvous: no TCP port to race for on a shared machine
    launch(_worker, 2, dist_url=f"file://{tmp_path}/rendezvous", args=(str(tmp_path),))
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    for a, b in zip(r0["params"], r1["params"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert torch.equal(r0["total"], r0["local"] + r1["local"]) and torch.equal(r0["total"], r1["total"])
    assert r0["miou"] == r1["miou"]
    assert r0["stopped_at"] == r1["stopped_at"] == 1  # both ranks stop at the same iteration
    final = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert final["iteration"] == 3 and len(final["trainer"]["rng"]) == 2
    assert final["trainer"]["data"]["batches_consumed"] == 6
    assert not any(k.startswith("module.") for k in final["model"])
    # a DDP model still alive when the group is destroyed lives on into interpreter shutdown, where gloo's
    # teardown can abort the worker (SIGABRT)
    assert [(tmp_path / f"rank{r}_ddp_alive_at_destroy.txt").read_text() for r in range(2)] == ["0", "0"]
