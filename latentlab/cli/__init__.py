"""The ``latentlab`` command line: a thin click layer over the library.

Each ``*_cmd`` module registers its commands on :data:`cli`; they only parse options, call
the library and render the result (a table, or one JSON object with ``--json``).
"""
from .main import cli, main  # noqa: F401
from . import gap_cmd, demo_cmd, plot_cmd, report_cmd  # noqa: F401,E402  (registers commands)
from . import analyze_cmd, similarity_cmd, align_cmd, retrieval_cmd, embed_cmd  # noqa: F401,E402
from . import view_cmd, export_cmd  # noqa: F401,E402  (interactive view, TensorBoard export)
from . import gram_cmd, compose_cmd, pick_layers_cmd, curve_cmd  # noqa: F401,E402  (issue 14: layer choice, few-pair curves, composition, GRAM)

__all__ = ["cli", "main"]
