"""The SLURM side of ant.sweep.executors: one job array per submission and devices layout (submitit's `map_array`,
`slurm_array_parallelism` from the grid file), each array task running the same `run_one` (or `run_family`) as a
local worker. A data-parallel run (train.devices x num_nodes > 1) is one job of devices tasks per node on num_nodes
nodes; every task runs the same call and Lightning's SLURMEnvironment makes them the ranks of one DDP run (rank 0
alone takes the run's lock, writes the run folder and requeues; ant.train.distributed).

Requeue has a single owner, submitit: `RunJob` is a `Checkpointable`, so a job that reaches its time limit (or is
preempted) gets USR2, is requeued with the same arguments and resumes from the run's last checkpoint. Lightning's
own SLURM auto-requeue must stay off (ant.train passes SLURMEnvironment(auto_requeue=False)). A refused
submission (sbatch's error) is one FaultError line, and nothing of it stays in the submission folder.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:  # only the slurm executor needs submitit; local sweeps and dry runs work without it
    import submitit

    _Checkpointable = submitit.helpers.Checkpointable
except ImportError:  # pragma: no cover - exercised on machines without submitit (gpu_check.sh)
    submitit = None
    _Checkpointable = object

from ant.config import RunConfig
from ant.errors import ConfigError, FaultError
from ant.status import FINISHED
from ant.sweep.executors import EXECUTORS, ExecutorSettings, run_family, run_one


class RunJob(_Checkpointable):
    """The SLURM job: one run. A failed run raises, so SLURM and sacct show the job FAILED.

    Requeue: submitit installs a USR2 handler before calling us; SLURM sends USR2 `signal_delay_s` before the
    time limit (or on preemption). We swap in a handler that asks train() to checkpoint at the next step and
    return (ant.train.run.request_checkpoint), then hand the signal to submitit's handler, which calls
    `checkpoint()` (inherited: resubmit the same call), `scontrol requeue`s the job and exits. The requeued job
    resumes from that checkpoint, so no step is lost."""

    def __call__(self, cfg_dict: dict[str, Any] | list[dict[str, Any]], threads: int = 0) -> Any:
        """One run (a dict), or a wsd family (a list of dicts, trunk first; returns a list of results)."""
        from ant.train.run import request_checkpoint  # late: runs in the SLURM job, which trains anyway

        submitit_handler = signal.getsignal(signal.SIGUSR2)
        caught: list[int] = []

        def on_signal(signum: int, frame: Any) -> None:
            caught.append(signum)
            request_checkpoint()

        signal.signal(signal.SIGUSR2, on_signal)
        try:
            if isinstance(cfg_dict, list):
                result = run_family(cfg_dict, threads=threads, raise_errors=True)
            else:
                result = run_one(cfg_dict, threads=threads, raise_errors=True)
        finally:
            signal.signal(signal.SIGUSR2, submitit_handler)
        results = result if isinstance(result, list) else [result]
        done = len(results) == (len(cfg_dict) if isinstance(cfg_dict, list) else 1)
        if done and all(r["status"] in FINISHED + ("skipped",) for r in results):
            # done: a USR2 arriving now (near the time limit) must not requeue a finished run
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        elif caught and callable(submitit_handler):
            submitit_handler(caught[0], None)  # checkpoint() -> requeue -> sys.exit
        return result


def slurm_executor(settings: ExecutorSettings, folder: Path, name: str, layout: tuple[int, int] = (1, 1)) -> Any:
    """`layout`: (train.devices, train.num_nodes) of the runs: one task per device, which Lightning's
    SLURMEnvironment turns into the ranks of a data-parallel run (ant.train.distributed)."""
    devices, nodes = layout
    if submitit is None:
        raise ConfigError("executor.name", "the slurm executor needs submitit (pip install submitit)", EXECUTORS)
    ex = submitit.AutoExecutor(
        folder=str(folder / "%j"), cluster="slurm", slurm_max_num_timeout=settings.max_num_timeout
    )
    params: dict[str, Any] = {
        "name": f"ant-{name}",
        "timeout_min": settings.timeout_min,
        "cpus_per_task": settings.cpus_per_task,
        "mem_gb": settings.mem_gb,
        "tasks_per_node": devices,
        "nodes": nodes,
        "slurm_array_parallelism": settings.array_parallelism,
        "slurm_signal_delay_s": settings.signal_delay_s,
    }
    if settings.gpus_per_node:  # per device process: one task per device, each with its GPU(s)
        params["gpus_per_node"] = settings.gpus_per_node * devices
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(settings, key):
            params[f"slurm_{key}"] = getattr(settings, key)
    if settings.setup:
        params["slurm_setup"] = list(settings.setup)
    if settings.additional:
        params["slurm_additional_parameters"] = dict(settings.additional)
    ex.update_parameters(**params)
    return ex


def submit_slurm(cfgs: list[Any], settings: ExecutorSettings, folder: Path, name: str) -> list[Any]:
    """Submit one job array; returns the submitit jobs at once (nothing waits here). Each item is a RunConfig
    or a work unit (a list of RunConfigs: a wsd family, trunk first, trained by one array task)."""
    if not cfgs:
        return []
    created = _missing_parents(folder)  # before submitit creates anything there
    before = set(folder.rglob("*")) if folder.is_dir() else set()
    threads = settings.threads_per_run or settings.cpus_per_task
    # Absolute paths: the jobs must find the same folders whatever their working directory.
    dicts: list[Any] = []
    for c in cfgs:
        unit = c if isinstance(c, list) else [c]
        ds = [_absolute(m).to_dict() for m in unit]
        dicts.append(ds if len(ds) > 1 else ds[0])
    # one array per (devices, num_nodes): its tasks_per_node and nodes are the array's (the paper's grid runs
    # 0.5B/1B on 4 GPUs, the smaller sizes on one)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, c in enumerate(cfgs):
        groups.setdefault(_layout([c]), []).append(i)
    jobs: list[Any] = [None] * len(cfgs)
    for layout, idx in sorted(groups.items()):
        said_by_submitit = io.StringIO()  # submitit echoes sbatch's stderr before raising it: said once, below
        try:
            with contextlib.redirect_stderr(said_by_submitit):
                ex = slurm_executor(settings, folder, name, layout)
                for i, job in zip(idx, ex.map_array(RunJob(), [dicts[i] for i in idx], [threads] * len(idx))):
                    jobs[i] = job
            sys.stderr.write(said_by_submitit.getvalue())
            before = set(folder.rglob("*"))  # queued: a later layout's failure must not remove its files
        except (submitit.core.utils.FailedJobError, subprocess.SubprocessError, OSError) as e:
            # sbatch refused (no controller, bad partition...): submitit has already pickled the calls and
            # written the submission script. Nothing was queued, so nothing of this attempt may stay behind.
            _remove_new(folder, before, created if not any(jobs) else [])
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            said = next((ln for ln in reversed(lines) if "sbatch" in ln.lower() or "error" in ln.lower()), None)
            said = said or (lines[-1] if lines else str(e))
            queued = sum(j is not None for j in jobs)
            what = f"{queued} run(s) of another layout were queued, not these" if queued else "nothing was queued"
            raise FaultError(f"SLURM submission failed, {what}: {said}") from None
    return jobs


def _layout(cfgs: list[Any]) -> tuple[int, int]:
    """The one (train.devices, train.num_nodes) of a work unit's runs (a wsd family trains in one job)."""
    runs = [m for c in cfgs for m in (c if isinstance(c, list) else [c])]
    layouts = sorted({(r.train.devices, r.train.num_nodes) for r in runs})
    if len(layouts) > 1:
        raise ConfigError("train.devices", f"one SLURM job asks for one layout; these runs differ: {layouts} "
                          "(devices, num_nodes); give a wsd family's runs one layout")  # fmt: skip
    if len(runs) > 1 and layouts[0] != (1, 1):  # ant.train.branches seeds a branch's folder from one process
        raise ConfigError("train.devices", "a wsd family (budgets:) trains on one device for now", ["1"])
    return layouts[0]


def _missing_parents(folder: Path) -> list[Path]:
    """folder and those of its parents that do not exist yet, deepest first."""
    out, p = [], Path(folder)
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def _remove_new(folder: Path, before: set[Path], created: list[Path]) -> None:
    """Undo a failed submission: files it added to an existing folder, then the folders it created."""
    if folder.is_dir():
        for p in sorted(set(folder.rglob("*")) - before, key=lambda q: len(q.parts), reverse=True):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    for d in created:  # deepest first; only if nothing else was put there meanwhile
        with contextlib.suppress(OSError):
            d.rmdir()


def _absolute(cfg: RunConfig) -> RunConfig:
    c = RunConfig.from_dict(cfg.to_dict())
    c.out_dir = str(Path(c.out_dir).resolve())  # out_dir and cache_dir are not part of the run id
    if c.data.cache_dir:  # an explicit relative cache (None: $ANT_CACHE or the user cache, ant.data.cache_dir_of)
        c.data.cache_dir = str(Path(c.data.cache_dir).resolve())
    return c


# The states in which squeue still holds a job that will run (again). submitit's own `done()` reads sacct and
# counts a job done in any state outside its short list; during a requeue (`scontrol requeue` from the job's USR2
# handler) sacct can briefly report the old instance as ended, so a waiter would read "failed: srun: task 0:
# Terminated" from a job that is about to resume. squeue is authoritative for live jobs.
LIVE_STATES = frozenset({
    "PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "COMPLETING", "CONFIGURING", "RESIZING",
    "SUSPENDED", "SIGNALING", "STAGE_OUT", "PREEMPTED", "STOPPED", "RESV_DEL_HOLD",
})  # fmt: skip


def slurm_output(cmd: list[str]) -> str | None:
    """A SLURM command's stdout; None when it could not run or failed (a controller down is not "no jobs")."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # squeue refuses the id of a job it has forgotten ("Invalid job id"): an answer, that the job is not live
    return p.stdout if p.returncode == 0 or "invalid job id" in p.stderr.lower() else None


def squeue_states(job_ids: Iterable[str]) -> dict[str, str] | None:
    """squeue's state of every live job among `job_ids` ("123" or "123_4"; an array's tasks one by one), keyed by
    the id squeue prints; a job it does not list is not live. None when squeue could not answer."""
    ids = sorted({str(i) for i in job_ids})
    out = slurm_output(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(ids)]) if ids else ""
    if out is None:
        return None
    rows = (line.split("|", 1) for line in out.splitlines() if "|" in line)
    return {jid.strip(): state.strip() for jid, state in rows}


def queue_state(job_id: str) -> str:
    """The job's state in squeue; "" when squeue no longer lists it, "UNKNOWN" when squeue could not answer."""
    states = squeue_states([job_id])
    if states is None:
        return "UNKNOWN"
    # a multi-task or array parent id: squeue lists its tasks as <id>_<k>; any live task keeps it live
    tasks = [s for jid, s in states.items() if jid == job_id or jid.startswith(f"{job_id}_")]
    return tasks[0] if tasks else ""


def finished(job: Any) -> bool:
    """submitit's `job.done()`, made safe against a requeue in flight: a job without a result is finished only
    once squeue no longer holds it in a live state."""
    if not job.done():
        return False
    subs = getattr(job, "_sub_jobs", None) or [job]  # a multi-task (data-parallel) job: every task's result
    if all(s.paths.result_pickle.exists() for s in subs):
        return True
    state = queue_state(job.job_id)
    return state not in LIVE_STATES and state != "UNKNOWN"
