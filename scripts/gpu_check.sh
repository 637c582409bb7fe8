#!/usr/bin/env bash
# One-shot check of the suite on a machine with ONE H100/H200 and NO network, in at most 7.5 minutes (the device
# tool allows 10 minutes a command and 15 minutes a session, start-up included, so there is room for one rerun
# of a step). In order of importance, so that a short budget loses the least:
#   1. environment report (torch, CUDA, card, peak FLOP/s, which optional packages exist)   -> env.json
#   2. `ant bench` at the largest size (0.5B): gptplus, angpt, ngpt; bf16, compiled, seq 2048, Lightning vs bare
#      loop                                                                                -> bench-<size>.json
#   3. a small GPU sweep (sweeps/gpu.yaml, one token budget, two sizes) on a corpus built from text already on
#      the machine (the Python stdlib's docstrings), then the run table                   -> runs.parquet
#   4. `ant bench` at the other sizes (125M)                                               -> bench-<size>.json
#   5. if time is left, the largest size with the weight projection compiled       -> bench-<size>-project-compiled.json
# Every step has its own time limit; a failing step is recorded in steps.tsv and the script goes on. A bench step
# cut by its limit still leaves its JSON, with the blocks measured so far ("partial": true).
# OUT_DIR gets at most 8 files, none in subfolders (the device tool returns no more): the JSONs above, steps.tsv,
# summary.json, and detail.tar.gz (logs, nvidia-smi, the sweep's run folders without checkpoints).
#
#   bash scripts/gpu_check.sh [OUT_DIR]          # OUT_DIR defaults to $OUT, else results/gpu_check/<utc date>
#
# Knobs (environment):
#   GPU_CHECK_SIZES ("0.5B 125M"; the first is measured first, the others after the sweep), GPU_CHECK_DEVICE
#   (cuda), GPU_CHECK_DTYPE (bf16), GPU_CHECK_COMPILE (1), GPU_CHECK_COMPILE_MODE (regional: compiles one block per
#   architecture, seconds instead of minutes per model; "full" is what training does), GPU_CHECK_STEPS (30),
#   GPU_CHECK_SEQ (2048), GPU_CHECK_BATCH (8), GPU_CHECK_BUDGET_S (450, the whole script), GPU_CHECK_SWEEP
#   (sweeps/gpu.yaml), GPU_CHECK_SWEEP_TOKENS (4e6), GPU_CHECK_SWEEP_SIZES ("32M 125M"; "" for the grid's),
#   GPU_CHECK_SWEEP_VAL_TOKENS (the grid's), GPU_CHECK_CORPUS (a .txt to use instead of the stdlib text),
#   GPU_CHECK_CORPUS_MB (8: how much stdlib text), GPU_CHECK_SKIP ("bench sweep": steps to skip), PYTHON.
# On the device tool: run(command="bash scripts/gpu_check.sh", timeout_s=540), then give_back.
# CPU dry run of the same path (minutes, tiny sizes):
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_DTYPE=fp32 GPU_CHECK_COMPILE=0 GPU_CHECK_SIZES=tiny2 GPU_CHECK_SEQ=128 \
#   GPU_CHECK_STEPS=4 GPU_CHECK_SWEEP_SIZES=tiny1 GPU_CHECK_SWEEP_TOKENS=40000 GPU_CHECK_SWEEP_VAL_TOKENS=8192 \
#   GPU_CHECK_CORPUS_MB=2 bash scripts/gpu_check.sh /tmp/gc
set -u
cd "$(dirname "$0")/.."

T_START=$(date +%s)
OUT_DIR=${1:-${OUT:-results/gpu_check/$(date -u +%Y%m%d-%H%M%S)}}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
BUDGET=${GPU_CHECK_BUDGET_S:-450}
DEADLINE=$((T_START + BUDGET))
SIZES=${GPU_CHECK_SIZES:-0.5B 125M}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
DTYPE=${GPU_CHECK_DTYPE:-bf16}
COMPILE=${GPU_CHECK_COMPILE:-1}
COMPILE_MODE=${GPU_CHECK_COMPILE_MODE:-regional}
STEPS=${GPU_CHECK_STEPS:-30}
SEQ=${GPU_CHECK_SEQ:-2048}
BATCH=${GPU_CHECK_BATCH:-8}
SWEEP=${GPU_CHECK_SWEEP:-sweeps/gpu.yaml}
SKIP=${GPU_CHECK_SKIP:-}
WORK=${TMPDIR:-/tmp}/ant-gpu-check.$$
DETAIL=$WORK/detail # logs, nvidia-smi, run folders: packed into OUT_DIR/detail.tar.gz at the end
mkdir -p "$DETAIL/logs"
# Everything we might write outside OUT_DIR goes to WORK: no network, maybe a read-only home. GPU_CHECK_INDUCTOR_CACHE
# reuses a TorchInductor cache instead (the CPU dry run in the tests: its compiled step is then a cache hit).
export ANT_CACHE="$WORK/cache" MPLCONFIGDIR="$WORK/mpl" TORCHINDUCTOR_CACHE_DIR="${GPU_CHECK_INDUCTOR_CACHE:-$WORK/inductor}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1

if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null; then PYTHON=.venv/bin/python; fi
fi
ANT="$PYTHON -m ant.cli"

printf "step\tstatus\trc\tseconds\tlimit_s\n" > "$OUT_DIR/steps.tsv"
FAILED=0

# step NAME LIMIT_S CMD...: run CMD with a time limit (cut to what is left of the budget), log to logs/NAME.log
step() {
  local name=$1 limit=$2
  shift 2
  local now left rc status t0
  case " $SKIP " in *" $name "* | *" ${name%%-*} "*)
    printf "%s\tskipped\t-\t0\t%s\n" "$name" "$limit" >> "$OUT_DIR/steps.tsv"; return 0 ;;
  esac
  now=$(date +%s)
  left=$((DEADLINE - now - 5))
  if [ "$left" -lt 30 ]; then
    echo "== $name: skipped, only ${left}s of the ${BUDGET}s budget left"
    printf "%s\tno-time\t-\t0\t%s\n" "$name" "$limit" >> "$OUT_DIR/steps.tsv"
    FAILED=$((FAILED + 1))
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s, $((now - T_START))s elapsed): $*"
  t0=$(date +%s)
  # TERM first: `ant bench` then finishes its current round of blocks and writes a partial report (40 s grace).
  timeout --signal=TERM --kill-after=40 "$limit" "$@" > "$DETAIL/logs/$name.log" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    124 | 137) status=timeout ;;
    *) status=failed ;;
  esac
  [ "$status" = ok ] || FAILED=$((FAILED + 1))
  printf "%s\t%s\t%s\t%s\t%s\n" "$name" "$status" "$rc" "$(($(date +%s) - t0))" "$limit" >> "$OUT_DIR/steps.tsv"
  echo "   -> $status (rc $rc, $(($(date +%s) - t0))s); last lines of logs/$name.log:"
  tail -n 12 "$DETAIL/logs/$name.log" | sed 's/^/      /'
}

# ------------------------------------------------------------------------------------------ 1. environment
nvidia-smi > "$DETAIL/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not available" >> "$DETAIL/nvidia-smi.txt"
step env 60 "$PYTHON" - "$OUT_DIR/env.json" << 'EOF'
import importlib, json, platform, sys
import torch
from ant.perf import device_name, peak_flops
out = {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
       "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda, "packages": {}}
if torch.cuda.is_available():
    out.update(device=device_name("cuda"), capability=list(torch.cuda.get_device_capability()),
               memory_gb=torch.cuda.get_device_properties(0).total_memory / 2**30, peak_flops=peak_flops("cuda"))
for name in ("lightning", "pandas", "pyarrow", "scipy", "matplotlib", "yaml", "optuna", "submitit", "tiktoken",
             "tokenizers", "triton"):
    try:
        out["packages"][name] = getattr(importlib.import_module(name), "__version__", "present")
    except Exception as e:  # absent or broken: the steps below degrade
        out["packages"][name] = None
print(json.dumps(out, indent=1))
json.dump(out, open(sys.argv[1], "w"), indent=1)
EOF

# ------------------------------------------------------------------------------------------ 2. benchmarks
BENCH_ARGS=(--archs gptplus angpt ngpt --device "$DEVICE" --dtype "$DTYPE" --seq-len "$SEQ" --batch "$BATCH"
  --steps "$STEPS" --reps 3 --warmup 4 --lightning)
[ "$COMPILE" = 1 ] && BENCH_ARGS+=(--compile --compile-mode "$COMPILE_MODE")
# bench SIZE LIMIT_S: one `ant bench` step
bench() { step "bench-$1" "$2" $ANT bench --size "$1" "${BENCH_ARGS[@]}" --out "$OUT_DIR/bench-$1.json"; }
set -- $SIZES
LARGEST=$1
shift
OTHER_SIZES="$*"
bench "$LARGEST" 220

# ------------------------------------------------------------------------------------------ 3. GPU sweep
# Corpus: no network and maybe no corpus packages; docstrings are English prose that every Python install has:
# the stdlib's (~1.2 MB), then the installed packages' (torch, numpy, ...) up to GPU_CHECK_CORPUS_MB (8). BPE if `tokenizers` is
# importable, else bytes.
step corpus 60 "$PYTHON" - "$WORK/corpus.txt" "${GPU_CHECK_CORPUS:-}" "${GPU_CHECK_CORPUS_MB:-8}" << 'EOF'
import ast, hashlib, pathlib, shutil, sys, sysconfig
dest, given, limit = pathlib.Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]) * 1e6
if given:
    shutil.copyfile(given, dest)
else:
    parts, size = [], 0
    paths = sysconfig.get_paths()
    stdlib = sorted(pathlib.Path(paths["stdlib"]).rglob("*.py"))
    stdlib = [f for f in stdlib if not {"site-packages", "dist-packages"} & set(f.parts)]
    for f in stdlib + sorted(pathlib.Path(paths["purelib"]).rglob("*.py")):
        if {"test", "tests", "testing", "idlelib"} & set(f.parts):
            continue
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 200:
                    parts.append(doc)
                    size += len(doc)
        if size > limit:
            break
    dest.write_text("\n\n".join(parts), encoding="utf-8")
data = dest.read_bytes()
print(f"corpus {dest}: {len(data) / 1e6:.1f} MB, sha256 {hashlib.sha256(data).hexdigest()[:16]}")
EOF
TOKENIZER=bytes
"$PYTHON" -c "import tokenizers" 2> /dev/null && TOKENIZER=bpe
step sweep-config 30 "$PYTHON" - "$SWEEP" "$DETAIL/gpu-check.yaml" "$WORK/corpus.txt" "$TOKENIZER" "$DETAIL/runs" \
  "$DEVICE" "${GPU_CHECK_SWEEP_TOKENS:-4e6}" "${GPU_CHECK_SWEEP_SIZES-32M 125M}" "$DTYPE" \
  "${GPU_CHECK_SWEEP_VAL_TOKENS:-}" << 'EOF'
import sys, yaml
src, dest, corpus, tok, runs, device, tokens, sizes, dtype, val_tokens = sys.argv[1:11]
d = yaml.safe_load(open(src))
d["name"] = "gpu-check"
d["out_dir"] = runs
data = d.setdefault("base", {}).setdefault("data", {})
data.update(corpus=corpus, tokenizer=tok)
if val_tokens:  # the CPU dry run: the grid's 131k validation tokens cost more than its training there
    data["val_tokens"] = int(float(val_tokens))
train = d["base"].setdefault("train", {})
train.update(device=device, precision="bf16-mixed" if dtype == "bf16" else "32")
d["grid"]["tokens"] = [float(tokens)]  # one budget of the grid's two, two of its three sizes: ~2 minutes
if sizes:
    d["grid"]["size"] = sizes.split()
d["executor"] = {"name": "local", "concurrency": 1}
yaml.safe_dump(d, open(dest, "w"), sort_keys=False)
print(yaml.safe_dump(d, sort_keys=False))
EOF
# `ant sweep` needs submitit (imported by its executors); without it, run the same grid in-process, one by one.
if "$PYTHON" -c "import submitit" 2> /dev/null; then
  step sweep 120 $ANT sweep "$DETAIL/gpu-check.yaml" --executor local --concurrency 1
else
  step sweep 120 "$PYTHON" - "$DETAIL/gpu-check.yaml" << 'EOF'
import sys, time
from ant.sweep.grid import Grid
from ant.train import train
cfgs = Grid.from_yaml(sys.argv[1]).expand()
t0 = time.time()
for i, cfg in enumerate(cfgs):
    r = train(cfg, progress=False)
    s = r.summary
    print(f"[{i + 1}/{len(cfgs)}] {s['status']:9s} {cfg.run_id()} val {s.get('final_val_loss')} "
          f"tok/s {s.get('tokens_per_s')} | {time.time() - t0:.0f}s", flush=True)
EOF
fi
# collect() writes runs.parquet and curves.parquet beside runs/; the run table also goes to OUT_DIR. No runs after
# the sweep step is a failed step: the check exists to show GPU runs finishing.
step collect 60 "$PYTHON" -c "
import shutil, sys
from ant.laws.collect import collect
runs, curves = collect(sys.argv[1])
if not len(runs):
    sys.exit('no runs under ' + sys.argv[1])
print(runs.to_string(max_cols=12))
shutil.copyfile(sys.argv[1] + '/runs.parquet', sys.argv[2])
" "$DETAIL" "$OUT_DIR/runs.parquet"

# ------------------------------------------------------------------------------------------ 4. other sizes
for size in $OTHER_SIZES; do bench "$size" 110; done

# ------------------------------------------------------------------------------------------ 5. candidate
# If time is left: the largest size again with the weight projection compiled into one graph (ant.perf.
# compiled_projection) instead of the eager per-matrix loop, to see what it saves anGPT/nGPT on this card.
NO_LIGHTNING=()
for a in "${BENCH_ARGS[@]}"; do [ "$a" = --lightning ] || NO_LIGHTNING+=("$a"); done
step "bench-$LARGEST-project-compiled" 120 $ANT bench --size "$LARGEST" "${NO_LIGHTNING[@]}" --project-compiled \
  --out "$OUT_DIR/bench-$LARGEST-project-compiled.json"

# ------------------------------------------------------------------------------------------ wrap up
# Checkpoints are only for resuming; they would make the archive large. Run folders keep config, metrics, summary.
find "$DETAIL/runs" -type d -name checkpoints -prune -exec rm -rf {} + 2> /dev/null
tar -czf "$OUT_DIR/detail.tar.gz" -C "$WORK" detail
rm -rf "$WORK"
"$PYTHON" - "$OUT_DIR" "$T_START" << 'EOF'
import csv, json, pathlib, sys, time
out = pathlib.Path(sys.argv[1])
steps = list(csv.DictReader(open(out / "steps.tsv"), delimiter="\t"))
bench = {}
for f in sorted(out.glob("bench-*.json")):
    rep = json.loads(f.read_text())
    bench[f.stem] = {"partial": rep.get("partial", False), "results": [
        {k: r.get(k) for k in ("arch", "n_steps", "step_time_ms", "overhead_vs_first", "tokens_per_s", "mfu",
                               "peak_mem_mb", "lightning_overhead", "warmup_s")} for r in rep["results"]]}
summary = {"wall_s": round(time.time() - float(sys.argv[2])), "steps": steps, "bench": bench}
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary, indent=1))
EOF
echo "gpu_check: $FAILED step(s) not ok; outputs in $OUT_DIR ($(($(date +%s) - T_START))s)"
[ "$FAILED" -eq 0 ]
