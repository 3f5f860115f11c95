"""Command-line entry point ``atleus-dist``.

Each sub-command lives in its own module under ``atleus_dist.commands`` and exposes
``register(subparsers)``; this file only collects them, so new commands are one new file plus one
line in ``COMMANDS``. Errors in user input become one line on stderr and exit code 2; a failed
simulation exit code 1; any other exception (a bug) one ``internal error`` line and exit code 1,
its traceback in the run directory's ``error.log`` (or a temporary file).

Run as a program (``atleus-dist``, ``python -m atleus_dist.cli``: ``main()`` without arguments),
the process ends with ``os._exit`` once the command is done and the interpreter's shutdown steps
that matter have run (:func:`_end_process`); called with arguments (tests, ``cluster/job.py``),
``main`` returns the exit code.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
import threading

from atleus_dist.kernel.errors import CausalityError, ConfigError, SimulationAborted

# module names under atleus_dist.commands
COMMANDS = ("run", "phold", "noc", "gemm", "model_info", "report", "compare", "baseline", "digest",
            "components", "sweep", "verify", "hbm_bench", "resume", "trace")

# the command as typed -> its module (each module registers the name it is typed as: _ becomes -)
_MODULE_OF = {name.replace("_", "-"): name for name in COMMANDS}

EXIT_USAGE = 2
EXIT_FAILED = 1


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line naming the argument, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or - when ``argv`` names one command - with that command
    only: each command module imports what it needs (numpy, pyarrow, numba...), so registering
    all twelve costs every command the imports of the others (~0.1-0.3 s per process, measured
    in bench/RESULTS.md "Start-up"). ``--help``, no command or a misspelt one get them all."""
    parser = _Parser(prog="atleus-dist", description="Parallel discrete-event simulation of the Atleus 3D "
                     "transformer accelerator: run, report, compare; phold and noc for the engine itself.")
    subs = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in _commands_for(argv):
        importlib.import_module(f"atleus_dist.commands.{name}").register(subs)
    return parser


def _commands_for(argv: list[str] | None) -> tuple[str, ...]:
    """The command modules the parser needs for ``argv``: the named command alone when the first
    argument is one (the top-level parser has no options but -h, so the first argument is the
    command), else all of them (no ``argv``, help, usage errors list every choice)."""
    module = _MODULE_OF.get(argv[0]) if argv else None
    return COMMANDS if module is None else (module,)


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while the commands are still being imported: no traceback
        _line("atleus-dist: interrupted")
        code = 130
    if argv is None:  # the program itself: nothing after this command needs the interpreter
        _end_process(code)
    return code


def _end_process(code: int) -> None:
    """End the process with ``code`` after what the interpreter's own shutdown does that anything
    relies on, in its order: wait for non-daemon threads, run the ``atexit`` handlers
    (multiprocessing's, Ray's shutdown, ``weakref.finalize``), flush stdout and stderr (exit 120
    if stdout cannot take its output, as Python does). What ``os._exit`` then skips is the
    teardown of every module and object, ~0.07 s with numba loaded (LLVM's, pyarrow's and
    numpy's) and ~0.045 s in a sweep's parent, paid serially by every command and needed by no
    result: each file a command writes is closed, and its manifest fsynced, before it returns."""
    try:
        for t in threading.enumerate():
            if t is not threading.main_thread() and not t.daemon:
                t.join()
        atexit._run_exitfuncs()
    except KeyboardInterrupt:
        code = 130
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        code = code or 120
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    prog = f"{parser.prog} {args.command}"
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        flag = None if exc.field.startswith("--") else _flag_for(parser, args.command, exc.field)
        text = str(exc) if flag is None else f"{flag}: {str(exc)[len(exc.field) + 2:]}"
        if flag is not None or text.startswith("--"):
            text = "argument " + text
        _line(f"{prog}: error: {text}")
        return EXIT_USAGE
    except (SimulationAborted, CausalityError) as exc:
        _line(f"{prog}: simulation failed: {type(exc).__name__}: {exc}")
        return EXIT_FAILED
    except BrokenPipeError:  # stdout closed early (| head): nothing to say
        return 0
    except KeyboardInterrupt as exc:  # Ctrl-C, or a stop signal the run driver turned into one
        _line(f"{prog}: {exc or 'interrupted'}")
        return 128 + getattr(exc, "signum", 2)  # 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP
    except Exception as exc:  # a bug: one line here, the traceback in the run's log file
        log = _write_traceback(getattr(args, "out", None))
        _line(f"{prog}: internal error: {type(exc).__name__}: {exc} (traceback in {log})")
        return EXIT_FAILED


def _line(text: str) -> None:
    """One line on stderr, whatever the message holds."""
    sys.stderr.write(" ".join(text.split())[:2000] + "\n")


def _write_traceback(out) -> str:
    """Write the current exception's traceback to ``OUT/error.log`` (if that directory exists)
    or to a new temporary file; return the path."""
    import tempfile
    import traceback
    from pathlib import Path

    text = traceback.format_exc()
    try:
        if out and Path(out).is_dir():
            path = Path(out) / "error.log"
            path.write_text(text)
            return str(path)
    except OSError:
        pass
    fd, name = tempfile.mkstemp(prefix="atleus-dist-error-", suffix=".log")
    with open(fd, "w") as fh:
        fh.write(text)
    return name


def _flag_for(parser: argparse.ArgumentParser, command: str, field: str) -> str | None:
    """The option string of ``command`` whose destination is ``field`` (config names match dests)."""
    for action in parser._subparsers._group_actions[0].choices[command]._actions:  # noqa: SLF001
        if action.dest == field:
            return action.option_strings[-1] if action.option_strings else action.dest
    return None


if __name__ == "__main__":
    raise SystemExit(main())
