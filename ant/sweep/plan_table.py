"""The plan as text and JSON: `ant sweep --dry-run` / `--status` print format_plan's table and totals, `--json`
prints plan_json's document. The rows come from ant.sweep.plan.build_plan."""

from __future__ import annotations

from typing import Any

from ant.sweep.fmt import fmt_num, fmt_time
from ant.sweep.plan import PlanRow
from ant.sweep.throughput import Throughput


def format_plan(rows: list[PlanRow], tp: Throughput, concurrency: int = 1, show_jobs: bool = False) -> str:
    head = ["run_id", "arch", "size", "N", "tokens", "batch", "lr", "seed", "FLOPs", "est.time", "status", "val_loss"]
    families = any(r.family for r in rows)
    if families:
        head.insert(-2, "family")
    live = any(r.step is not None or r.commit is not None for r in rows)  # --status
    if live:
        head += ["step", "tok/s", "age", "commit"]
    if show_jobs:
        head.append("slurm_job")
    table = [head]
    for r in rows:
        loss = f"{r.final_val_loss:.4f}" if isinstance(r.final_val_loss, (int, float)) else "-"
        line = [r.run_id, r.arch, r.size, fmt_num(r.num_params), fmt_num(r.tokens), str(r.batch_size),
                f"{r.lr:.3g}", str(r.seed), fmt_num(r.flops), fmt_time(r.est_s), r.state, loss]  # fmt: skip
        if live:
            line += ["-" if r.step is None else str(r.step), "-" if not r.tokens_per_s else fmt_num(r.tokens_per_s),
                     "-" if r.age_s is None else fmt_time(max(0.0, r.age_s)), r.commit or "-"]  # fmt: skip
        if families:
            line.insert(10, r.family or "-")  # before status and val_loss, as in head
        if show_jobs:
            line.append(r.job or "-")
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    todo = [r for r in rows if r.state not in ("done", "diverged")]
    total_s = sum(r.est_s for r in rows)
    todo_s = sum(r.est_s for r in todo)
    out.append("")
    out.append(
        f"{len(rows)} runs: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + f" | total {fmt_num(sum(r.flops for r in rows))}FLOPs"
        + f" | est. {fmt_time(total_s)} of run time, {fmt_time(todo_s)} still to do,"
        + f" ~{fmt_time(todo_s / max(1, concurrency))} wall at {concurrency} in parallel"
    )  # fmt: skip
    if families:
        out.append(_families_line(rows))
    if any(r.gpu for r in rows):
        per_arch = gpu_hours(rows)
        out.append("GPU-hours (est. time x devices): " + ", ".join(f"{a} {fmt_num(h)}" for a, h in per_arch.items())
                   + f" | all {fmt_num(sum(per_arch.values()))}")  # fmt: skip
    out.append("time estimate from: " + "; ".join(sorted(tp.sources)))
    return "\n".join(out)


def gpu_hours(rows: list[PlanRow]) -> dict[str, float]:
    """GPU-hours of the GPU runs per architecture: each run's estimated wall time x its devices."""
    out: dict[str, float] = {}
    for r in rows:
        if r.gpu:
            out[r.arch] = out.get(r.arch, 0.0) + r.est_s * r.devices / 3600
    return out


def _families_line(rows: list[PlanRow]) -> str:
    members = [r for r in rows if r.family]
    n = len({r.family.split()[0] for r in members})
    budgets = sum(r.flops for r in members)
    trained = sum(r.train_flops if r.train_flops is not None else r.flops for r in members)
    return (
        f"wsd families: {n}, {len(members)} runs; each trunk keeps a checkpoint where each branch's decay "
        f"starts, branches train only their decay: {fmt_num(trained)}FLOPs to train vs {fmt_num(budgets)}FLOPs "
        f"as separate runs ({trained / budgets:.2f}x)"
    )


def plan_json(rows: list[PlanRow], tp: Throughput, concurrency: int = 1) -> dict[str, Any]:
    """The plan for scripts (`ant sweep FILE --status --json`): every row's fields and the table's totals."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    todo_s = sum(r.est_s for r in rows if r.state not in ("done", "diverged"))
    return {
        "runs": [dict(vars(r)) for r in rows],  # PlanRow holds scalars only: no asdict recursion for 10k rows
        "counts": dict(sorted(counts.items())),
        "total_flops": sum(r.flops for r in rows),
        "est_run_s": sum(r.est_s for r in rows),
        "est_todo_s": todo_s,
        "est_wall_s": todo_s / max(1, concurrency),
        "concurrency": concurrency,
        "gpu_hours": gpu_hours(rows),
        "time_estimate_from": sorted(tp.sources),
    }
