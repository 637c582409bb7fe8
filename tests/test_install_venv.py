"""scripts/install_venv.sh (`make install`): what it hands uv, and its fall-back to pip.

The real install (uv from an empty cache, 37-50 s) runs in every `make test` set-up; these tests cover what one
machine's set-up cannot: pip settings from each place pip reads them, and a failing uv. pip and uv are stand-ins at
the process boundary (scripts that log their arguments and print a pip config), in a venv folder of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install_venv.sh"


def fake_venv(tmp_path: Path, config: str, uv_rc: int = 0) -> tuple[Path, Path]:
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "pip").write_text(
        "#!/usr/bin/env bash\n"
        f'if [[ "$1 $2" == "config list" ]]; then printf "%b" "{config}"; exit 0; fi\n'
        f'echo "pip $*" >> {log}\n'
    )
    (venv / "bin" / "uv").write_text(f'#!/usr/bin/env bash\necho "uv $*" >> {log}\nexit {uv_rc}\n')
    for exe in ("pip", "uv"):
        (venv / "bin" / exe).chmod(0o755)
    return venv, log


def install(venv: Path, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "ANT_INSTALLER"} | env
    return subprocess.run(["bash", str(SCRIPT), str(venv)], cwd=ROOT, env=e, capture_output=True, text=True)


def test_uv_gets_pips_settings_in_pips_order(tmp_path):
    config = (
        ":env:.find-links='/from/env'\\n"
        "global.find-links='/from/global'\\n"
        "global.extra-index-url='file:///a/simple file:///b/simple'\\n"
        "install.constraint='/c/install.txt'\\n"
        "global.constraint='/c/global.txt'\\n"
    )
    venv, log = fake_venv(tmp_path, config)
    r = install(venv)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("pip install") and calls[0].endswith(" uv")
    uv = calls[1].split()
    assert uv[:3] == ["uv", "pip", "install"] and "--compile-bytecode" in uv
    assert uv[uv.index("--index-strategy") + 1] == "unsafe-best-match"  # pip's rule: the best version of any index
    # a PIP_* variable beats the config files, [install] beats [global]; both extra indexes are passed
    assert uv[uv.index("--find-links") + 1] == "/from/env" and uv.count("--find-links") == 1
    assert [uv[i + 1] for i, a in enumerate(uv) if a == "--extra-index-url"] == ["file:///a/simple", "file:///b/simple"]
    assert [uv[i + 1] for i, a in enumerate(uv) if a == "-c"] == ["/c/install.txt", "constraints.txt"]
    assert "--index-url" not in uv and uv[-2:] == ["-e", ".[dev]"]
    assert "uv installed the stack" in r.stdout and len(calls) == 2  # no pip install of the project


def test_a_failing_uv_falls_back_to_pip_and_ant_installer_pip_skips_uv(tmp_path):
    venv, log = fake_venv(tmp_path / "a", "", uv_rc=1)
    r = install(venv)
    assert r.returncode == 0 and "uv failed" in r.stdout and "pip installed the stack" in r.stdout
    last = log.read_text().splitlines()[-1]
    assert last.startswith("pip install") and "-c constraints.txt -e .[dev]" in last

    venv, log = fake_venv(tmp_path / "b", "")
    r = install(venv, ANT_INSTALLER="pip")
    calls = log.read_text().splitlines()
    assert r.returncode == 0 and "uv failed" not in r.stdout
    assert len(calls) == 1 and "-c constraints.txt -e .[dev]" in calls[0] and not any(c.startswith("uv") for c in calls)
