"""The `ant` command. Each sub-command lives with the package it belongs to and exposes two functions:
`add_arguments(parser)` and `run(args) -> int`. They are imported only when used, so `ant params` does not pay
for Lightning or optuna.

Bad input anywhere below raises ant.errors.ConfigError (argparse's own complaints included); it is printed as one
line and the exit code is 2. A FaultError (a corrupt cache, a refused cluster submission) is one line, exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ant.errors import ConfigError, FaultError

# sub-command -> (module, one-line help)
COMMANDS = {
    "params": ("ant.models.cli", "parameter count and FLOPs/token of an architecture at a size"),
    "data": ("ant.data.cli", "build the offline corpus, tokenizer and token files"),
    "train": ("ant.train.cli", "train one run from a YAML config"),
    "sweep": ("ant.sweep.cli", "plan, launch or inspect a grid of runs"),
    "tune": ("ant.sweep.tune_cli", "optuna search of LR / batch size per (arch, size)"),
    "bench": ("ant.bench", "step time, tokens/s and MFU per architecture"),
}


class _Parser(argparse.ArgumentParser):
    """argparse prints its usage block and exits; here a bad argument is a ConfigError like any other input."""

    def error(self, message: str):
        head, sep, rest = message.partition(": ")
        if sep and head.startswith("argument "):  # "argument --trials: invalid int value: 'x'"
            raise ConfigError(head.removeprefix("argument ").split("/")[0], rest)
        raise ConfigError("arguments", message)


def _one_line(e: BaseException) -> str:
    # Messages quoting a library's multi-line text still print as the one line the contract promises.
    return " ".join(part.strip() for part in str(e).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="ant", description="anGPT scaling-law suite")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # Only the chosen sub-command's module is imported; the others get a stub parser for --help.
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    who = f"ant {chosen}" if chosen in COMMANDS else "ant"
    modules = {}
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            modules[name] = importlib.import_module(module)
            modules[name].add_arguments(p)
    try:
        args = parser.parse_args(argv)
        return int(modules[args.command].run(args) or 0)
    except ConfigError as e:
        print(f"{who}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except FaultError as e:
        print(f"{who}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
