"""The two callbacks of a run on several ranks (ant.train.distributed): SIGTERM as a stop request, and the check
that every rank ends with the same parameters. Apart from distributed.py so that importing it (the sweep planner,
the bench) does not load Lightning."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback

from ant.train.distributed import parameters_sha256


class SigtermAsStopRequest(Callback):
    """With several ranks, SIGTERM only asks for a stop (`request_stop`, ant.train.run.request_checkpoint): the
    ranks agree on the step (RunCheckpoint's any_rank), all save the checkpoint and return. Lightning's own SIGTERM
    handler, replaced here once it is installed, broadcasts from inside the handler and kills the other ranks:
    a collective at an arbitrary point, which can pair with another collective of a rank that is mid-step and
    hang (seen in the SIGTERM test). Lightning restores the handlers from before fit when fit ends."""

    def __init__(self, request_stop) -> None:
        self.request_stop = request_stop

    def on_train_start(self, trainer, pl_module) -> None:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.request_stop())


class ReplicaCheck(Callback):
    """At the end of training, every rank's parameter checksum must equal rank 0's (DDP keeps the replicas equal
    only if every rank applies the same update and projection); a mismatch fails the run. `digest`: the
    checksum, for summary.json."""

    def __init__(self) -> None:
        self.digest: str | None = None

    def on_train_end(self, trainer, pl_module) -> None:
        digest = parameters_sha256(pl_module.model)
        mine = torch.tensor(list(bytes.fromhex(digest)), dtype=torch.int64, device=pl_module.device)
        every = [torch.empty_like(mine) for _ in range(trainer.world_size)]
        torch.distributed.all_gather(every, mine)
        differ = [r for r in range(len(every)) if not torch.equal(every[r], every[0])]
        if differ:
            raise RuntimeError(f"model replicas differ after training: rank(s) {differ} != rank 0")
        self.digest = digest
