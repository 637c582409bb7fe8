"""The run folder's files, as train, sweep and tests have imported them from here: a thin user of ant.runfolder,
which holds the format (file names, summary, JSON, checksums, checkpoints) once, below every layer and without
torch. New code imports ant.runfolder."""

from __future__ import annotations

from ant.runfolder import (
    CKPT_RE,
    atomic_write_bytes,
    atomic_write_text,
    atomic_write_with,
    checksum_path,
    ckpt_path,
    is_valid,
    list_checkpoints,
    newest_valid_checkpoint,
    prune_checkpoints,
    read_json,
    remove_dead_tmp,
    sha256_file,
    why_invalid,
    write_checksum,
    write_json,
    write_json_in_place,
)

__all__ = [
    "CKPT_RE",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "checksum_path",
    "ckpt_path",
    "is_valid",
    "list_checkpoints",
    "newest_valid_checkpoint",
    "prune_checkpoints",
    "read_json",
    "remove_dead_tmp",
    "sha256_file",
    "why_invalid",
    "write_checksum",
    "write_json",
    "write_json_in_place",
]
