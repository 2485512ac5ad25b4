"""The report's interactive section: the joint view of both sets (:mod:`.interactive`) inside the
same self-contained HTML file — points with their text on hover, neighbours on click, failed
retrievals and hubs listed. Markdown cannot hold it and says where to find it."""
from __future__ import annotations

from .section import Context, Section

#: points shown at most (the page stays a few MB; above it each set keeps a seeded sample)
VIEW_MAX_POINTS = 2000


def view_section(ctx: Context) -> Section:
    from .interactive import joint_view

    s = Section("view", "Interactive joint view")
    if not ctx.same_dim:
        s.skipped = (f"not applicable: the joint view needs equal widths ({ctx.name_a} has {ctx.a.dim} columns, "
                     f"{ctx.name_b} has {ctx.b.dim})")
        return s
    view = joint_view(ctx.a, ctx.b, text_a=ctx.text_a, text_b=ctx.text_b, labels=ctx.labels,
                      names=(ctx.name_a, ctx.name_b), projection=ctx.projection, max_points=VIEW_MAX_POINTS,
                      seed=ctx.seed, projected=ctx.joint_projection(), **ctx.kw)  # ids derived from the data: runs of --compare differ
    s.html = view.html()
    s.reading = ("Both sets projected together; hover a point for its row and text, click it for its nearest "
                 "neighbours in the other set, colour by set, label or hubness, search the text. Below: the "
                 "queries whose partner is not ranked first, and the worst hubs."
                 + ("" if ctx.text_a is not None or ctx.text_b is not None else
                    " Pass --text-a/--text-b (and --labels) to see each row's text."))
    # the fragment shows its own notes (subsampling, unpaired sets); the numbers go to --json only
    s.numbers = {k: v for k, v in view.summary().items() if k != "notes"}
    s.hide += list(s.numbers)
    s.commands.append(ctx.cmd("view", ctx.spec_a, ctx.spec_b, *ctx.view_args, "--projection", ctx.projection, "-o", "view.html"))
    return s
