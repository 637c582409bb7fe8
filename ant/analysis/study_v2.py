"""Study v2 (issue 24): the IsoFLOP grid's design and the preregistered extrapolation to tiny3.

    python -m ant.analysis.study_v2 isoflop-grid      # (re)write sweeps/study2/isoflop.yaml from the design helper
    python -m ant.analysis.study_v2 isoflop-fallback  # sweeps/study2/isoflop_fallback.yaml: diverged design points
    python -m ant.analysis.study_v2 isoflop-budget    # sweeps/study2/isoflop_budget.yaml: the batch chosen per budget
    python -m ant.analysis.study_v2 predict           # results/study/v2/prediction.json + predicted_hps.yaml

The prediction uses only the sizes below the held-out one (tiny0, d24L2, tiny1, d40L3, tiny2, d56L3 at 20
tokens/param: parts v2-hp, v2-hp2, v2-hp3; 16.5k-180k parameters, 10.9x): per architecture, the best measured loss
per size (lowest mean over seeds among its grid cells) is fitted as L = c N^-g (least squares in log-log; the
committed tables extrapolated to tiny3 within 0.8 % this way at
10 and 20 tokens/param, docs/study.md), and the optimal LR and batch come from ant.laws.hp's power laws (interior
optima only). Intervals: the 95 % OLS prediction interval in log L (Student-t, n - 2 dof); the anGPT − GPT+ gap's
half-width combines both as independent. The file records the commit of the fitting code; `ant study run` refuses
the held-out part until that file is committed, so the prediction precedes the data in `git log`.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from ant.errors import ConfigError
from ant.fsio import atomic_write_text

V2 = Path("results/study/v2")
PREDICTION = V2 / "prediction.json"
PREDICTED_HPS = V2 / "predicted_hps.yaml"
TUNED_V2 = V2 / "tuned.yaml"
ISOFLOP_GRID = Path("sweeps/study2/isoflop.yaml")
ISOFLOP_FALLBACK_GRID = Path("sweeps/study2/isoflop_fallback.yaml")
ISOFLOP_BUDGET_GRID = Path("sweeps/study2/isoflop_budget.yaml")
SEQ_LEN = 32
TPP = 20
FIT_SIZES = ("tiny0", "d24L2", "tiny1", "d40L3", "tiny2", "d56L3")
HELD_OUT = "tiny3"
ARCHS = ("gptplus", "angpt")
# 5 compute levels 2x apart: the smallest is tiny1 at ~10 tokens/param, the largest tiny2 at ~20 (docs/study.md)
LEVELS = (1.25e11, 2.5e11, 5e11, 1e12, 2e12)
BUDGET_SEEDS = (0, 1)  # part v2-isoflop-budget: the same points and levels, two seeds a point
LADDER = FIT_SIZES  # the sizes with a v2 optimum (tuned.yaml); tiny3 stays held out of everything but v2-heldout


# ---------------------------------------------------------------------------------------------- IsoFLOP grid
def isoflop_design(arch: str = "gptplus") -> list:
    # late: the design needs the model counts, which `predict` and the report row do not
    from ant.laws.isoflop_design import design_isoflop
    from ant.models.counts import flops_per_token, num_params  # late: as above

    ladder = {s: float(num_params(arch, s, 256)) for s in LADDER}
    return design_isoflop(list(LEVELS), ladder, lambda s: flops_per_token(arch, s, 256, SEQ_LEN))


def isoflop_grid_text() -> str:
    pts = isoflop_design()
    head = [
        '# Study v2 part "v2-isoflop" (C4 as IsoFLOP, Chinchilla approach 2; issue 24 item 4). WRITTEN by',
        "# `python -m ant.analysis.study_v2 isoflop-grid` from ant.laws.isoflop_design: do not edit by hand.",
        f"# {len(LEVELS)} compute levels 2x apart ({LEVELS[0]:.3g}-{LEVELS[-1]:.3g} training FLOPs), each trained at "
        f"the {len(pts) // len(LEVELS)} sizes",
        "# of the ladder nearest its expected optimum (20 tokens/param), at least one on each side; budgets span "
        f"{min(p.tokens_per_param for p in pts):.1f}-{max(p.tokens_per_param for p in pts):.0f}",
        "# tokens/param. Each architecture at its v2-hp optimum per size (results/study/v2/tuned.yaml). Tokens come "
        "from GPT+'s",
        "# FLOPs per token; anGPT's differ by < 1 %, so both train the same tokens and share the levels.",
    ]
    grids = [{"arch": list(ARCHS), "size": [p.size], "tokens": [p.tokens],
              "batch_size": {"from_study": str(TUNED_V2)}, "lr": {"from_study": str(TUNED_V2)}, "seed": [0]}
             for p in pts]  # fmt: skip
    return grid_text("study2-isoflop", head, grids)


def grid_text(name: str, head: list[str], grids: list[dict], pack: int = 0) -> str:
    """A v2 grid file: the header comment lines, then the grid (seq-32 bytes, CPU, two single-thread workers, each
    training up to `pack` runs of one shape together when pack > 1)."""
    doc = {"name": name, "out_dir": "results/study/runs/v2",
           "base": {"data": {"corpus": "default", "tokenizer": "bytes", "seq_len": SEQ_LEN, "val_tokens": 32768},
                    "train": {"device": "cpu"}},
           "grids": grids, "executor": {"name": "local", "concurrency": 2, "threads_per_run": 1,
                                        **({"pack": pack} if pack > 1 else {})}}  # fmt: skip
    return "\n".join(head) + "\n" + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)


def requested_tokens(r: pd.DataFrame) -> pd.Series:
    """The tokens each run's config asked for (a run trains whole steps, so its `tokens` may differ slightly)."""
    t = r["tokens"].astype(float)
    if "cfg.train.tokens" in r:
        t = pd.to_numeric(r["cfg.train.tokens"], errors="coerce").fillna(t)
    return t


GRID_SEEDS_BELOW = 10  # the HP and IsoFLOP grids' seeds; v2-speedup's fresh seeds 10-13 train the same budgets
SPEEDUP_SEEDS = (10, 11, 12, 13)  # sweeps/study2/speedup.yaml


def hp_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """C3's runs (and the BS/LR laws' that the batch-per-budget IsoFLOP reads): the sizes below the held-out one at
    ~20 tokens/param, the HP grids' seeds (below SPEEDUP_SEEDS), in (arch, size, batch) cells of >= 3 LRs."""
    if runs.empty:
        return runs
    tpp = requested_tokens(runs) / runs["num_params"].astype(float)
    r = runs[runs["size"].isin(FIT_SIZES) & tpp.between(TPP * 0.95, TPP * 1.1) & (runs["seed"] < min(SPEEDUP_SEEDS))]
    return r[r.groupby(["arch", "size", "batch_size"])["lr"].transform("nunique") >= 3] if len(r) else r


def at_tuned(runs: pd.DataFrame, tuned: dict) -> pd.Series:
    """Whether each run trained at its (arch, size)'s tuned cell (batch and LR of `tuned`, v2 tuned.yaml)."""
    t = [tuned.get(a, {}).get(s) or {} for a, s in zip(runs["arch"], runs["size"])]
    b = np.array([x.get("batch_size", np.nan) for x in t], dtype=float)
    lr = np.array([x.get("lr", np.nan) for x in t], dtype=float)
    ok = (runs["batch_size"].to_numpy(float) == b) & np.isclose(runs["lr"].to_numpy(float), lr)
    return pd.Series(ok, index=runs.index)


def at_point(runs: pd.DataFrame, size: str, tokens: float) -> pd.Series:
    """Rows at one IsoFLOP design point: its size, exactly its requested tokens (the HP and speedup grids' budgets
    lie 1.8 % from some points), the grids' seeds (GRID_SEEDS_BELOW)."""
    tok = requested_tokens(runs).to_numpy(float)
    return (
        runs["size"].eq(size)
        & pd.Series(np.abs(tok / tokens - 1) < 1e-3, index=runs.index)
        & (runs["seed"] < GRID_SEEDS_BELOW)
    )


def at_cell(runs: pd.DataFrame, q: dict) -> pd.Series:
    """Rows at one design point trained at one cell: `q` names arch, size, tokens (requested), batch_size and lr."""
    at = runs["arch"].eq(q["arch"]) & at_point(runs, q["size"], q["tokens"]) & runs["batch_size"].eq(q["batch_size"])
    return at & pd.Series(np.isclose(runs["lr"].to_numpy(float), q["lr"]), index=runs.index)


def isoflop_fallbacks(runs: pd.DataFrame, tuned: dict, points=None) -> list[dict]:
    """The rule for a design point whose run at its size's tuned HPs diverged (and none there completed): train it
    at the next-best cell of that size's 20-tokens/param HP grid, i.e. the lowest mean final val loss over seeds
    among the cells whose runs all completed, the tuned cell excluded. Returns one dict per such point (arch, size,
    tokens, level, batch_size, lr, and the tuned cell with the step it diverged at). The rule was fixed before any
    fallback run trained (docs/study.md, "IsoFLOP fallback")."""
    points = isoflop_design() if points is None else points
    out = []
    if runs.empty:
        return out
    tpp = requested_tokens(runs) / runs["num_params"].astype(float)
    grid = runs[tpp.between(TPP * 0.95, TPP * 1.1) & (runs["seed"] < GRID_SEEDS_BELOW)]
    for arch in ARCHS:
        for p in points:
            t = tuned.get(arch, {}).get(p.size)
            if not t:
                continue
            at = runs[(runs["arch"] == arch) & at_point(runs, p.size, p.tokens)]
            mine = at[at_tuned(at, tuned)]
            if mine.empty or mine["status"].eq("completed").any() or not mine["status"].eq("diverged").any():
                continue
            g = grid[(grid["arch"] == arch) & (grid["size"] == p.size)]
            cells = g.groupby(["batch_size", "lr"]).agg(
                loss=("final_val_loss", "mean"), ok=("status", lambda s: bool(s.eq("completed").all()))
            )
            cells = cells[cells["ok"]].drop(index=(t["batch_size"], t["lr"]), errors="ignore")
            if cells.empty:
                raise ConfigError("isoflop fallback", f"{arch} {p.size}: no completed HP cell besides the tuned one")
            b, lr = cells["loss"].idxmin()
            out.append({"arch": arch, "size": p.size, "tokens": int(p.tokens), "level": float(p.level),
                        "batch_size": int(b), "lr": float(lr), "tuned": {"batch_size": t["batch_size"], "lr": t["lr"]},
                        "diverged_step": int(mine["diverged_step"].dropna().min())})  # fmt: skip
    return out


def isoflop_fallback_grid_text(runs: pd.DataFrame, tuned: dict) -> str:
    fb = isoflop_fallbacks(runs, tuned)
    if not fb:
        raise ConfigError("isoflop fallback", "no IsoFLOP design point diverged at its tuned HPs: nothing to retrain")
    head = [
        '# Study v2 part "v2-isoflop-fallback" (C4; docs/study.md "IsoFLOP fallback"). WRITTEN by',
        "# `python -m ant.analysis.study_v2 isoflop-fallback` from the committed v2 runs: do not edit by hand.",
        "# An IsoFLOP design point whose run at its size's tuned HPs diverged is retrained at the next-best cell of",
        "# that size's 20-tokens/param HP grid (lowest mean final loss among cells whose runs all completed):",
        *(f"#   {f['arch']} {f['size']} at {f['level']:.3g} FLOPs: tuned batch {f['tuned']['batch_size']}, LR "
          f"{f['tuned']['lr']} diverged at step {f['diverged_step']} -> batch {f['batch_size']}, LR {f['lr']}"
          for f in fb),
    ]  # fmt: skip
    grids = [{"arch": [f["arch"]], "size": [f["size"]], "tokens": [f["tokens"]], "batch_size": [f["batch_size"]],
              "lr": [f["lr"]], "seed": [0]} for f in fb]  # fmt: skip
    return grid_text("study2-isoflop-fallback", head, grids)


def budget_laws(runs: pd.DataFrame) -> dict[str, tuple]:
    """Per architecture its v2 BS(N) and LR(N) power laws (the C3 fit on hp_runs) as two functions of N."""
    from ant.laws.collect import completed  # late: only the budget grid and C4 read the HP laws
    from ant.laws.hp import hp_trends  # late: scipy

    r = hp_runs(completed(runs)) if len(runs) else runs
    if r.empty:
        raise ConfigError("isoflop budget", "no v2 HP runs: run parts v2-hp, v2-hp2 and v2-hp3 first")
    trends = hp_trends(r, by="tokens_per_param")
    out = {}
    for arch in ARCHS:
        t = next(iter(trends.get(arch, {}).values()), None)
        if t is None or t.bs_fit is None or t.lr_fit is None:
            raise ConfigError("isoflop budget", f"{arch}: no BS(N) and LR(N) power laws (fewer than 3 sizes with "
                              "interior optima)")  # fmt: skip
        out[arch] = tuple((lambda n, f=f: float(f.predict_ci(n)[0])) for f in (t.bs_fit, t.lr_fit))
    return out


def budget_point(arch: str, size: str, tokens: int, level: float, laws: dict) -> dict:
    """One design point at ant.laws.isoflop_design.budget_hps from `laws` (budget_laws): arch, size, tokens, level,
    batch_size, lr."""
    from ant.laws.isoflop_design import budget_hps  # late: scipy, as budget_laws
    from ant.models.counts import num_params  # late: as in isoflop_design

    b, lr = budget_hps(float(num_params(arch, size, 256)), tokens, *laws[arch], tpp=TPP)
    return {"arch": arch, "size": size, "tokens": int(tokens), "level": float(level), "batch_size": b, "lr": lr}


def isoflop_budget_points(runs: pd.DataFrame, laws: dict | None = None) -> list[dict]:
    """The batch-per-budget IsoFLOP design (part v2-isoflop-budget): the design's points, each
    architecture at ant.laws.isoflop_design.budget_hps from its v2 BS(N) and LR(N) power laws (the C3 fit,
    hp_runs; `laws`: budget_laws(runs), fitted here when None). One dict per (arch, point): arch, size, tokens,
    level, batch_size, lr."""
    laws = budget_laws(runs) if laws is None else laws
    # GPT+'s tokens for both, as in v2-isoflop: the points are shared
    return [budget_point(arch, p.size, p.tokens, p.level, laws) for arch in ARCHS for p in isoflop_design()]


def isoflop_budget_grid_text(runs: pd.DataFrame) -> str:
    pts = isoflop_budget_points(runs)
    head = [
        '# Study v2 part "v2-isoflop-budget" (C4 with the batch chosen per budget; docs/study.md "IsoFLOP with the',
        '# batch chosen per budget"). WRITTEN by `python -m ant.analysis.study_v2 isoflop-budget` from the committed',
        "# v2 HP runs: do not edit by hand. The v2-isoflop design's points at "
        f"{LEVELS[0]:.3g}-{LEVELS[-1]:.3g} FLOPs, seeds {list(BUDGET_SEEDS)};",
        "# batch = the arch's BS law at D / 20 (the batch follows the tokens), LR = its LR law at N x sqrt(batch /",
        "# BS(N)) (ant.laws.isoflop_design.budget_hps). The two seeds of a point train as one packed worker.",
    ]
    grids = [{"arch": [q["arch"]], "size": [q["size"]], "tokens": [q["tokens"]], "batch_size": [q["batch_size"]],
              "lr": [q["lr"]], "seed": list(BUDGET_SEEDS)}
             for q in sorted(pts, key=lambda q: (q["level"], q["arch"] != "gptplus"))]  # fmt: skip
    return grid_text("study2-isoflop-budget", head, grids, pack=len(BUDGET_SEEDS))


def level_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's design level (its training FLOPs within 10 % of one), NaN for runs off the design."""
    lv = np.array(LEVELS)
    c = runs["flops"].to_numpy(float) if "flops" in runs else np.full(len(runs), np.nan)
    j = np.abs(np.log(c[:, None] / lv[None, :])).argmin(axis=1)
    ok = np.abs(np.log(c / lv[j])) < math.log(1.1)
    return pd.Series(np.where(ok, lv[j], np.nan), index=runs.index)


# ---------------------------------------------------------------------------------------------- prediction
def _loglog_prediction(n: np.ndarray, y: np.ndarray, n_new: float, level: float = 0.95) -> dict:
    """OLS of log y on log n; the prediction at n_new with its prediction interval (t, n - 2 dof)."""
    if len(n) < 3:
        raise ConfigError("prediction", f"{len(n)} sizes with a loss (need >= 3)", ">= 3 of " + ", ".join(FIT_SIZES))
    x, z = np.log(n), np.log(y)
    X = np.stack([np.ones_like(x), x], axis=1)
    beta, *_ = np.linalg.lstsq(X, z, rcond=None)
    resid = z - X @ beta
    dof = len(x) - 2
    s2 = float(resid @ resid) / dof if dof > 0 else math.nan
    x0 = np.array([1.0, math.log(n_new)])
    se = math.sqrt(s2 * (1 + x0 @ np.linalg.inv(X.T @ X) @ x0))
    t = float(stats.t.ppf(0.5 + level / 2, dof))
    mu = float(x0 @ beta)
    return {"value": math.exp(mu), "interval": [math.exp(mu - t * se), math.exp(mu + t * se)],
            "exponent": float(beta[1]), "sizes": len(n)}  # fmt: skip


def predict(runs: pd.DataFrame, n_heldout: dict[str, float]) -> dict:
    """The preregistered numbers from the v2-hp runs (`runs`: the v2 group's runs table)."""
    from ant.laws.hp import hp_trends  # late: scipy, for the prediction only

    r = runs[runs["status"].eq("completed") & runs["size"].isin(FIT_SIZES) & runs["final_val_loss"].notna()]
    r = r[(r["tokens"] / r["num_params"]).between(TPP * 0.95, TPP * 1.1)]
    out: dict = {"held_out": HELD_OUT, "tokens_per_param": TPP, "fit_sizes": sorted(set(r["size"])), "per_arch": {}}
    trends = hp_trends(r, by="tokens_per_param") if len(r) else {}
    for arch in ARCHS:
        g = r[r["arch"] == arch]
        cells = g.groupby(["size", "num_params", "batch_size", "lr"])["final_val_loss"].mean().reset_index()
        best = cells.loc[cells.groupby("size")["final_val_loss"].idxmin()]
        loss = _loglog_prediction(best["num_params"].to_numpy(float), best["final_val_loss"].to_numpy(float),
                                  n_heldout[arch])  # fmt: skip
        hp = {}
        t = next(iter(trends.get(arch, {}).values()), None)
        for key, fit in (("lr", getattr(t, "lr_fit", None)), ("batch_size", getattr(t, "bs_fit", None))):
            if fit is None:
                raise ConfigError("prediction", f"{arch}: no {key}(N) power law (fewer than 3 sizes with interior "
                                  "optima): extend the v2-hp grid first")  # fmt: skip
            v, lo, hi = (float(q) for q in fit.predict_ci(n_heldout[arch]))
            hp[key] = max(1, int(round(v))) if key == "batch_size" else float(f"{v:.3g}")
            hp[f"{key}_interval"] = [lo, hi]
            hp[f"{key}_exponent"] = float(fit.exponent)
        out["per_arch"][arch] = {"num_params": n_heldout[arch], "loss": loss, **hp}
    a, g = out["per_arch"]["angpt"]["loss"], out["per_arch"]["gptplus"]["loss"]
    half = [(x["interval"][1] - x["interval"][0]) / 2 for x in (a, g)]
    gap = a["value"] - g["value"]
    hw = math.sqrt(sum(h * h for h in half))
    out["gap_angpt_minus_gptplus"] = {"value": gap, "interval": [gap - hw, gap + hw]}
    return out


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ant"], capture_output=True, text=True).stdout
        return sha + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_prediction() -> dict:
    from ant.models.counts import num_params  # late: the ladder counts, which `predict` does not need

    # the committed table, read here: ant.analysis.study (whose `committed` reads it too) imports this module
    runs = pd.read_parquet(V2 / "runs.parquet") if (V2 / "runs.parquet").is_file() else pd.DataFrame()
    if runs.empty:
        raise ConfigError("results/study/v2/runs.parquet", "no v2 runs yet: run part v2-hp first")
    p = predict(runs, {a: float(num_params(a, HELD_OUT, 256)) for a in ARCHS})
    p["fitting_code_commit"], p["written"] = git_commit(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    V2.mkdir(parents=True, exist_ok=True)
    atomic_write_text(PREDICTION, json.dumps(p, indent=1) + "\n")
    hps = {a: {HELD_OUT: {"lr": d["lr"], "batch_size": d["batch_size"]}} for a, d in p["per_arch"].items()}
    atomic_write_text(PREDICTED_HPS, "# the preregistered HPs (results/study/v2/prediction.json)\n"
                      + yaml.safe_dump(hps, sort_keys=True))  # fmt: skip
    return p


def prediction_committed() -> str | None:
    """None when prediction.json is committed and unchanged since; else why the held-out part must wait."""
    if not PREDICTION.is_file():
        return f"{PREDICTION} does not exist: run `ant study run --part v2-predict`, commit it, then rerun"
    log = subprocess.run(["git", "log", "-1", "--format=%H", "--", str(PREDICTION)], capture_output=True, text=True)
    if not log.stdout.strip():
        return f"{PREDICTION} is not committed: commit it (the prediction must precede the data in git log)"
    diff = subprocess.run(["git", "status", "--porcelain", "--", str(PREDICTION), str(PREDICTED_HPS)],
                          capture_output=True, text=True)  # fmt: skip
    if diff.stdout.strip():
        return f"{PREDICTION} or {PREDICTED_HPS} differs from its commit: commit or restore it"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("command", choices=("isoflop-grid", "isoflop-fallback", "isoflop-budget", "predict"))
    args = ap.parse_args(argv)
    try:
        if args.command == "isoflop-grid":
            atomic_write_text(ISOFLOP_GRID, isoflop_grid_text())
            print(f"wrote {ISOFLOP_GRID}")
        elif args.command == "isoflop-fallback":
            runs = pd.read_parquet(V2 / "runs.parquet") if (V2 / "runs.parquet").is_file() else pd.DataFrame()
            tuned = yaml.safe_load(TUNED_V2.read_text()) if TUNED_V2.is_file() else {}
            atomic_write_text(ISOFLOP_FALLBACK_GRID, isoflop_fallback_grid_text(runs, tuned))
            print(f"wrote {ISOFLOP_FALLBACK_GRID}")
        elif args.command == "isoflop-budget":
            runs = pd.read_parquet(V2 / "runs.parquet") if (V2 / "runs.parquet").is_file() else pd.DataFrame()
            atomic_write_text(ISOFLOP_BUDGET_GRID, isoflop_budget_grid_text(runs))
            print(f"wrote {ISOFLOP_BUDGET_GRID}")
        else:
            p = write_prediction()
            print(json.dumps(p, indent=1))
            print(f"wrote {PREDICTION} and {PREDICTED_HPS}: commit them before the held-out runs train")
        return 0
    except ConfigError as e:
        print(f"study_v2: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
