"""Training: one run from a RunConfig to a run folder (ant.train.run), with Lightning underneath.

    from ant.train import train, load_run
    result = train(RunConfig.from_yaml("run.yaml"))   # RunResult(run_dir, summary)
    cfg, model = load_run(result.run_dir)              # the finished run's config and final weights

Lightning is imported only when a run starts, so `import ant.train` stays cheap for the sweep planner.
"""

from ant.train.run import RunLockedError, RunResult, check_run, prepare, request_checkpoint, train
from ant.train.sample import load_run

__all__ = ["RunLockedError", "RunResult", "check_run", "load_run", "prepare", "request_checkpoint", "train"]
