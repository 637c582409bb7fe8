"""The `ant` command. Each sub-command lives with the package it belongs to and exposes two functions:
`add_arguments(parser)` and `run(args) -> int`. They are imported only when used, so `ant params` does not pay
for Lightning or optuna.

Bad input anywhere below raises ant.errors.ConfigError (argparse's own complaints included); it is printed as one
line and the exit code is 2. A FaultError (a corrupt cache, a refused cluster submission) is one line, exit 1.

The analysis commands (fit, figures, report, study) hand their arguments to the analysis module's own main(argv),
the same entry point as `python -m ant.analysis.NAME`, so both spell their options and errors identically.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ant import __version__
from ant.errors import ConfigError, FaultError

# sub-command -> (module, one-line help)
COMMANDS = {
    "params": ("ant.models.cli", "parameter count and FLOPs/token of an architecture at a size"),
    "data": ("ant.data.cli", "build the offline corpus, tokenizer and token files"),
    "train": ("ant.train.cli", "train one run from a YAML config"),
    "sweep": ("ant.sweep.cli", "plan, launch or inspect a grid of runs"),
    "tune": ("ant.sweep.tune_cli", "optuna search of LR / batch size per (arch, size)"),
    "bench": ("ant.bench", "step time, tokens/s and MFU per architecture"),
    "sample": ("ant.train.sample", "generate text from a finished run's weights"),
}
# sub-command -> (analysis module whose main(argv) takes the rest of the command line, one-line help)
ANALYSIS = {
    "fit": ("ant.analysis.fit_laws", "every fit -> RESULTS/fits/*.json"),
    "figures": ("ant.analysis.make_figures", "every figure -> RESULTS/figures/*.png|pdf"),
    "report": ("ant.analysis.report", "RESULTS/REPORT.md: the paper's claims next to the measurements"),
    "study": ("ant.analysis.study", "the CPU study (docs/study.md): plan | run | report, from the repository root"),
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ANALYSIS:
        return _analysis(argv[0], argv[1:])
    parser = _Parser(prog="ant", description="anGPT scaling-law suite")
    parser.add_argument("--version", action="version", version=f"ant {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # Only the chosen sub-command's module is imported; the others get a stub parser for --help.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    who = f"ant {chosen}" if chosen in COMMANDS else "ant"
    modules = {}
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            modules[name] = importlib.import_module(module)
            modules[name].add_arguments(p)
    for name, (_, help_text) in ANALYSIS.items():
        sub.add_parser(name, help=help_text)
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
    except BrokenPipeError:  # `ant sweep --status | head`: the reader left; say nothing more (Python's recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell tool killed by it


def _analysis(name: str, rest: list[str]) -> int:
    """`ant fit ...` is `python -m ant.analysis.fit_laws ...`: the module parses its own options. argparse names
    the program after sys.argv[0], so that becomes "ant fit" while it runs (usage lines and error messages)."""
    module = importlib.import_module(ANALYSIS[name][0])
    saved = sys.argv[0]
    sys.argv[0] = f"ant {name}"
    try:
        return int(module.main(rest) or 0)
    except SystemExit as e:  # argparse: --help (0) or a bad argument, already printed as one line (2)
        return e.code if isinstance(e.code, int) else 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        sys.argv[0] = saved


if __name__ == "__main__":
    sys.exit(main())
