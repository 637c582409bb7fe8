#!/usr/bin/env bash
# `make install`: the project's venv with its pinned stack, in one resolver run (constraints.txt pins torch==2.13.0
# beside lightning, or pip pulls a multi-GB CUDA build of torch).
#
#   bash scripts/install_venv.sh [VENV]     # default .venv; ANT_INSTALLER=pip forces pip, PYTHON picks the interpreter
#
# uv installs it: 38 s on the 2-core box against 110 s for pip, which unpacks and byte-compiles one file at a time
# (the same 160 packages at the same versions; measured 2026-12-07, docs/testing.md). uv comes from the package
# index into the venv itself; where it cannot be had or its install fails, pip does the whole job as before.
# uv does not read pip's configuration, so the machine's pip settings (index-url, extra-index-url, find-links,
# constraint: from PIP_* variables or pip's config files) are handed to it, and --index-strategy unsafe-best-match
# takes the best version over every index, as pip does (uv's default stops at the first index that lists a package).
set -euo pipefail
VENV=${1:-.venv}
BIN=$VENV/bin
LOG=$VENV/pip.log
T0=$(date +%s)

test -x "$BIN/python" || "${PYTHON:-python3}" -m venv "$VENV"
: > "$LOG"

pip_install() {
  "$BIN/pip" install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' >> "$LOG" 2>&1
}

# pip_setting NAME: the value pip install would use, "" if unset. `pip config list` shows PIP_* variables (":env:")
# and the config files' sections; pip reads them in that order, its [install] section before [global].
PIP_CONFIG=$("$BIN/pip" config list 2> /dev/null || true)
pip_setting() {
  local section line
  for section in ':env:' install global; do
    line=$(grep -F -m1 "$section.$1='" <<< "$PIP_CONFIG" || true)
    if [[ -n "$line" ]]; then line=${line#*=\'}; echo "${line%\'}"; return; fi
  done
}

uv_install() {
  "$BIN/pip" install -q --disable-pip-version-check uv >> "$LOG" 2>&1 || return 1
  local args=() v
  v=$(pip_setting index-url) && [[ -n "$v" ]] && args+=(--index-url "$v")
  for v in $(pip_setting extra-index-url); do args+=(--extra-index-url "$v"); done
  for v in $(pip_setting find-links); do args+=(--find-links "$v"); done
  for v in $(pip_setting constraint); do args+=(-c "$v"); done
  "$BIN/uv" pip install -q --python "$BIN/python" --index-strategy unsafe-best-match --compile-bytecode \
    "${args[@]}" -c constraints.txt -e '.[dev]' >> "$LOG" 2>&1
}

how=uv
if [[ "${ANT_INSTALLER:-uv}" == pip ]] || ! uv_install; then
  [[ "${ANT_INSTALLER:-uv}" == pip ]] || echo "make install: uv failed (log: $LOG); installing with pip"
  how=pip
  pip_install || {
    grep -v "is ignored: it is neither" "$LOG" | tail -n 40
    echo "make install: pip install failed (full log: $LOG)"
    exit 1
  }
fi
echo "make install: $how installed the stack in $(($(date +%s) - T0)) s (log: $LOG)"
