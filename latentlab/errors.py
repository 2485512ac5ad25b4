"""Errors a user can cause, and warnings latentlab raises.

The CLI turns :class:`InputError` into a single ``error: ...`` line on stderr and exit
status 2; the library raises it for anything that is the caller's input, not a bug.
"""


class InputError(ValueError):
    """Bad user input: the message is one line and names the file or argument at fault."""


class DegenerateInput(InputError):
    """A valid input for which a statistic is undefined (e.g. a constant set): commands that
    report several values show that one as null with this message as the reason."""


class LatentlabWarning(UserWarning):
    """A result is computed but deserves a caveat (degenerate regime, clamped parameter...)."""
