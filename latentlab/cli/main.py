"""The click group, the options every command shares, and turning errors into one line."""
from __future__ import annotations

import functools
import os
import sys
import traceback
import warnings
from dataclasses import dataclass

import click

from .. import __version__
from ..errors import InputError, LatentlabWarning

DEVICE_HELP = "Compute device: auto (CUDA when available), cpu, cuda or cuda:N."


@dataclass(frozen=True)
class RunOptions:
    """The common options of every command, passed to the command as ``opts``."""

    json: bool
    dtype: str
    device: str
    seed: int
    debug: bool
    quiet: bool = False


class LatentlabGroup(click.Group):
    """A group whose usage errors also come out as one ``error: …`` line with exit status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name or "latentlab", complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            hint = ""
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except MemoryError as exc:  # outside a command's own handler (option callbacks, commands without it)
            _report_unexpected(exc, "--debug" in (sys.argv[1:] if args is None else list(args)))
            sys.exit(2)
        except Exception as exc:
            _report_unexpected(exc, "--debug" in (sys.argv[1:] if args is None else list(args)))
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=LatentlabGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="latentlab")
def cli() -> None:
    """latentlab — measure, stitch and visualise neural embedding spaces.

    Inputs are embedding matrices (rows = items): .npy (read lazily), .npz, .pt/.pth,
    .safetensors, .parquet, .csv/.tsv, or a folder of .npy/.parquet shards. PATH::KEY picks
    an array inside a file or an index of a 3-D array (features_clip.npy::0).
    """


def common_options(func):
    """Add --json, --dtype, --device, --seed, --quiet and --debug; turn errors into ``error: …`` + exit 2."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of a table "
                  "(no progress bars).")
    @click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
                  help="Computation precision.")
    @click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
    @click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
                  help="Seed for every random choice (a non-negative integer).")
    @click.option("-q", "--quiet", is_flag=True, help="No progress bars or progress notes on stderr "
                  "(errors and warnings still shown).")
    @click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
    @functools.wraps(func)
    def wrapper(*args, as_json, dtype, device, seed, quiet, debug, **kwargs):
        from ..progress import silenced

        opts = RunOptions(json=as_json, dtype=dtype, device=device, seed=seed, debug=debug, quiet=quiet)
        with warnings.catch_warnings(record=True) as caught, silenced(as_json or quiet):
            warnings.simplefilter("always")
            try:
                return func(*args, opts=opts, **kwargs)
            except InputError as exc:
                _fail(debug, f"error: {_as_flag(_one_line(exc))}", 2)
            except MemoryError as exc:
                _fail(debug, memory_message(exc), 2)
            except (KeyboardInterrupt, click.exceptions.Exit, click.ClickException):
                raise
            except Exception as exc:  # a bug: one line by default, the traceback with --debug
                _fail(debug, internal_message(exc), 1)
            finally:
                _show_warnings(caught, debug)

    return wrapper


def output_option(help: str, *, required: bool = False, type=None, callback=None, aliases: tuple[str, ...] = ()):
    """``-o/--output``: the one name of a command's main output file, on every command that writes one.

    ``aliases`` are earlier names of the same option (``--out``, ``--save-vector``): hidden
    from ``--help``, still accepted, with a one-line deprecation warning on stderr.
    """
    kind = type or click.Path(dir_okay=False)

    def deco(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            output = kwargs.get("output")
            for alias in aliases:
                value = kwargs.pop(_alias_param(alias))
                if value is None:
                    continue
                if output is not None and output != value:
                    raise click.UsageError(f"{alias} is the old name of -o/--output: give one of them",
                                           click.get_current_context())
                click.echo(f"warning: {alias} is deprecated, use -o/--output", err=True)
                output = callback(click.get_current_context(), None, value) if callback else value
            if required and output is None:
                raise click.UsageError("missing option -o/--output", click.get_current_context())
            kwargs["output"] = output
            return func(*args, **kwargs)

        for alias in reversed(aliases):
            wrapper = click.option(alias, _alias_param(alias), type=kind, hidden=True)(wrapper)
        # not click's required=True: an old alias given instead must satisfy it
        return click.option("-o", "--output", "output", type=kind, callback=callback, metavar="PATH",
                            help=help + ("  [required]" if required else ""))(wrapper)

    return deco


def _alias_param(flag: str) -> str:
    return "alias_" + flag.lstrip("-").replace("-", "_")


def _as_flag(message: str) -> str:
    """The library names Python arguments; the CLI user sees flags.

    The first word of a library message names the argument at fault ("alpha 1.5: …" → "--alpha 1.5: …");
    other arguments it mentions are in backticks ("needs `labels`" → "needs --labels"). Names that are not
    options of the running command are left as they are (backticks dropped).
    """
    import re

    ctx = click.get_current_context(silent=True)
    flags = {}
    if ctx is not None:
        for p in ctx.command.params:  # by Python name and by the flag's own name (--sweep stored as sweeps)
            if isinstance(p, click.Option):
                flag = max(p.opts, key=len)
                flags.setdefault(flag.lstrip("-").replace("-", "_"), flag)
                flags[p.name] = flag
    head = message.split(" ", 1)[0].rstrip(":")
    if head.isidentifier() and head in flags:
        message = flags[head] + message[len(head):]
    return re.sub(r"`([A-Za-z_][A-Za-z0-9_]*)`", lambda m: flags.get(m.group(1), m.group(1)), message)


def internal_message(exc: BaseException) -> str:
    """The one line for an unexpected exception (a bug in latentlab or a library it uses)."""
    return (f"error: internal error ({type(exc).__name__}: {_one_line(exc)}) — please report it at the latentlab "
            "issue tracker with the command; rerun with --debug for the traceback")


def memory_message(exc: BaseException) -> str:
    """The one line for a MemoryError: the input is too large for this machine as asked."""
    detail = " ".join(str(exc).split())
    return (f"error: out of memory{f' ({detail})' if detail else ''}: use fewer rows (--sample) or a smaller block")


def _report_unexpected(exc: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    click.echo(memory_message(exc) if isinstance(exc, MemoryError) else internal_message(exc), err=True)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _fail(debug: bool, message: str, code: int):
    if debug:
        traceback.print_exc()
    click.echo(message, err=True)
    raise click.exceptions.Exit(code)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _from_latentlab(filename: str) -> bool:
    """Whether a warning was attributed to a file inside the latentlab package."""
    try:
        path = os.path.abspath(filename)
    except (TypeError, ValueError):
        return False
    return os.path.commonpath([path, _PACKAGE_DIR]) == _PACKAGE_DIR if path else False


def _user_facing(w) -> bool:
    """A LatentlabWarning, or a plain UserWarning raised from latentlab's own code; numpy RuntimeWarnings
    and third-party deprecations (torch.load's FutureWarning, …) are not the user's business."""
    if issubclass(w.category, LatentlabWarning):
        return True
    return issubclass(w.category, UserWarning) and _from_latentlab(w.filename or "")


def _show_warnings(caught, debug: bool = False) -> None:
    seen = set()
    for w in caught:
        if debug:  # --debug shows every warning, with its category and origin
            text = f"{w.category.__name__}: {_one_line(w.message)} ({w.filename}:{w.lineno})"
        elif _user_facing(w):
            text = _one_line(w.message)
        else:
            continue
        if text not in seen:
            seen.add(text)
            click.echo(f"warning: {text}", err=True)


def main(argv=None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="latentlab")
