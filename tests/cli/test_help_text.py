"""Help text a user can read: every option described, one default notation (click's
``[default: …]``), and usage lines that never break inside a token such as a choice list."""
import re

import click
import pytest


def _commands(cmd, path=("latentlab",)):
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            if not getattr(sub, "hidden", False):
                yield from _commands(sub, path + (name,))
    else:
        yield " ".join(path), cmd


def _all():
    from latentlab.cli import cli

    return list(_commands(cli))


@pytest.mark.parametrize("width", [80, 100])
def test_usage_lines_break_between_tokens(width):
    for name, cmd in _all():
        ctx = click.Context(cmd, info_name=name, terminal_width=width, max_content_width=width)
        usage = cmd.get_help(ctx).split("\n\n")[0].split("\n")
        for line in usage[:-1]:
            assert line.count("{") == line.count("}") and line.count("[") == line.count("]"), \
                f"{name}: usage wraps inside a token:\n" + "\n".join(usage)


def test_every_option_is_described_with_one_default_notation():
    for name, cmd in _all():
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.hidden:
                continue
            assert p.help and p.help.strip(), f"{name} {p.opts[-1]} has no help"
            # a default that depends on another option may be written in the same notation, "[default: …]"
            assert not re.search(r"\(default|(?<!\[)\bdefault:|defaults? to\b", p.help, re.I), \
                f"{name} {p.opts[-1]}: write the default as show_default (one notation: [default: …]): {p.help!r}"
            # a bare "[20]." is a second notation; an interval such as "[0, 1]." is not a default
            for inner in re.findall(r"\[([^\]\[]+)\]\.", p.help):
                assert inner.startswith("default: ") or re.fullmatch(r"\s*[-\d.]+\s*,\s*[-\d.∞]+\s*", inner), \
                    f"{name} {p.opts[-1]}: bare default [{inner}]: write [default: {inner}]"
