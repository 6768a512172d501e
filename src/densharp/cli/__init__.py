"""densharp command-line interface: ``densharp <command> ...``.

Commands live one per module in this package. Each module's docstring is its help (first line: summary; the
rest: epilog with examples) and it exposes ``add_args(parser)`` and ``run(args) -> int | None``. The registry
below is explicit so a missing or broken command fails loudly at start-up rather than vanishing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from types import ModuleType

from densharp import __version__
from densharp.errors import DensharpError, DensharpWarning, InputError

#: command name -> module under densharp.cli (kept light: no torch or matplotlib at module top)
COMMANDS: dict[str, str] = {
    "info": "info",
    "fsc": "fsc",
    "compare": "compare",
    "sharpen": "sharpen",
    "simulate": "simulate",
    "corpus": "corpus",
    "models": "models",
    "train": "train",
    "evaluate": "evaluate",
    "hallucination": "hallucination",
    "report": "report",
}

log = logging.getLogger("densharp")


class _Parser(argparse.ArgumentParser):
    """argparse parser whose usage errors print one ``error:`` line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}; see '{self.prog} --help'\n")


def _load(name: str) -> ModuleType:
    mod = importlib.import_module(f"densharp.cli.{COMMANDS[name]}")
    for attr in ("add_args", "run"):
        if not callable(getattr(mod, attr, None)):
            raise RuntimeError(f"densharp.cli.{COMMANDS[name]} lacks {attr}(); every command module needs one")
    if not mod.__doc__:
        raise RuntimeError(f"densharp.cli.{COMMANDS[name]} has no docstring; it is the command's help")
    return mod


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one sub-parser per registered command."""
    parser = _Parser(
        prog="densharp",
        description="Sharpen cryo-EM and X-ray density maps, and measure how much better they got.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"densharp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        mod = _load(name)
        doc = (mod.__doc__ or "").strip()
        summary, _, rest = doc.partition("\n")
        p = sub.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=rest.strip() or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_args(p)
        _add_common(p)
        p.set_defaults(_module=mod)
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("logging")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeat for debug)")
    g.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    g.add_argument("--debug", action="store_true", help="print a traceback on errors")


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(level)
    root = logging.getLogger("densharp")
    root.handlers[:] = [handler]
    # the logger passes INFO on so run logs (OUT.log) are complete whatever the console shows
    root.setLevel(min(level, logging.INFO))
    root.propagate = False
    logging.captureWarnings(False)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, ``kill``): handled exactly like Ctrl-C."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only; restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError):  # pragma: no cover - not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted_message(exc: KeyboardInterrupt) -> str:
    from densharp.io.atomic import written_paths

    what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    done = written_paths()
    if not done:
        return f"error: {what}; no output was written"
    names = ", ".join(str(p) for p in done[:6]) + (" ..." if len(done) > 6 else "")
    return f"error: {what} after writing {names}; other outputs of this run were not written"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit code (0 ok, 1 failure, 2 bad input)."""
    from densharp.io.atomic import reset_written

    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse: --help/--version (0) or usage error (2)
        return int(exc.code or 0)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    _setup_logging(args)
    reset_written()
    try:
        with _sigterm_as_interrupt(), warnings.catch_warnings():
            warnings.simplefilter("always", DensharpWarning)
            warnings.showwarning = _log_warning
            rc = args._module.run(args)
        return int(rc or 0)
    except InputError as exc:
        if args.debug:
            log.exception("bad input")
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DensharpError as exc:
        if args.debug:
            log.exception("failure")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(_interrupted_message(exc), file=sys.stderr)
        return 1
    except MemoryError:
        if args.debug:
            log.exception("out of memory")
        print(
            "error: out of memory; the input is too large for this machine: crop or bin it, or set "
            "DENSHARP_MAX_MEMORY_GB lower so densharp refuses such inputs before starting",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        if args.debug:
            log.exception("I/O failure")
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; check the file and the disk (rerun with --debug)", file=sys.stderr)
        return 1
    except Exception as exc:  # unexpected: still one line unless --debug
        if args.debug:
            log.exception("unexpected failure")
        print(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", file=sys.stderr)
        return 1


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    log.warning("warning: %s", message)


def console_main() -> None:
    """Console-script entry point."""
    sys.exit(main())
