"""The ``cac`` command: one entry point, one sub-command per module.

Each sub-command lives in its own module under :mod:`cli` exposing ``register(subparsers)``; the
module is imported only when that sub-command runs, so ``cac score`` never pays for Flask or
Celery imports. Every failure the user can cause ends as one readable line on stderr and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

#: sub-command name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "score": ("cli.score", "score a CT series (folder or files) and print Agatston, volume, mass"),
    "phantom": ("cli.phantom", "write a synthetic CT series with known calcium"),
    "interpret": ("cli.interpret", "interpret a score: CAC-DRS, MESA percentile, risk, guidance"),
    "serve": ("cli.serve", "run the FHIR service (and an embedded worker) on this machine"),
    "worker": ("cli.worker", "run a Celery worker that processes calcium-score orders"),
    "demo": ("cli.demo", "run a demo order end to end against local PACS and FHIR servers"),
}


class CLIError(Exception):
    """A problem the user can fix; printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


Handler = Callable[[argparse.Namespace], int]


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cac", description="Coronary artery calcium scoring that speaks HL7 FHIR."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if wanted == name:
            module = importlib.import_module(module_name)
            module.register(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)
        handler: Handler = args.handler
        return handler(args)
    except CLIError as exc:
        print(f"cac: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("cac: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output went away (e.g. `cac score --json | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug: still one readable line, the traceback only on request
        if os.environ.get("CAC_DEBUG"):
            raise
        print(
            f"cac: internal error ({type(exc).__name__}: {exc}); "
            "run again with CAC_DEBUG=1 for details and please report it",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    # `python -m cli.main` runs this file as __main__; delegate to the imported module so that
    # CLIError raised by sub-commands (imported from cli.main) is the class caught above
    from cli.main import main as _main

    sys.exit(_main())
