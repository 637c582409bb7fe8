"""Sweeps: a grid YAML (sweeps/*.yaml) -> resolved runs -> a local process pool or a SLURM job array.

    grid.py       Grid.from_yaml(path).expand() -> [RunConfig] (resolved, stable run ids; LR/BS rules)
    plan.py       build_plan(cfgs) -> rows with FLOPs, time estimate and state from run folders; plan_table.py
                  prints them (format_plan, plan_json); fmt.py: numbers and durations for people
    executors.py  run_one(cfg_dict) (lock, skip finished, train), run_family, run_packed, run_local (capped pool);
                  slurm.py: submit_slurm (arrays, requeue through a submitit Checkpointable)
    families.py   train_family / train_member: a wsd trunk, then its cool-down branches (ant.train.branches)
    packing.py    which runs may share one packed worker (pack_groups, pack_units, the --dry-run line)
    locks.py      flock run locks + the per-run attempt log under <out_dir>/.locks/
    tune.py       optuna TPE per (arch, size) on a JournalFileBackend journal, median pruning, best.yaml
    cli.py        `ant sweep FILE [--dry-run | --status] [--executor local|slurm] [--wait]`
    tune_cli.py   `ant tune FILE [--trials N] [--workers K] [--executor slurm]`

Modules are imported on use; nothing here imports Lightning until a run starts.
"""
