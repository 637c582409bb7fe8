"""Sweeps: a grid YAML (sweeps/*.yaml) -> resolved runs -> a local process pool or a SLURM job array.

    grid.py       Grid.from_yaml(path).expand() -> [RunConfig] (resolved, stable run ids; LR/BS rules)
    plan.py       build_plan(cfgs) -> rows with FLOPs, time estimate and state from run folders; format_plan
    executors.py  run_one(cfg_dict) (lock, skip finished, train), run_local (capped pool), submit_slurm (arrays,
                  requeue through a submitit Checkpointable)
    locks.py      flock run locks + the per-run attempt log under <out_dir>/.locks/
    tune.py       optuna TPE per (arch, size) on a JournalFileBackend journal, median pruning, best.yaml
    cli.py        `ant sweep FILE [--dry-run | --status] [--executor local|slurm] [--wait]`
    tune_cli.py   `ant tune FILE [--trials N] [--workers K] [--executor slurm]`

Modules are imported on use; nothing here imports Lightning until a run starts.
"""
