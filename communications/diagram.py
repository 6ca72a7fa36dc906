"""The state machine drawn from the model's own table (`Communication.edges()`), as SVG.

One source of truth: the statuses, the transitions, their sources, targets and conditions all come
from the model, so the picture changes when the model does. docs/state-machine.svg is this
module's output in English (`manage.py draw_state_machine` writes it; a test fails when the
committed file is stale); the admin's communication page draws it in the operator's language with
the communication's status marked.

Layout: the creation on the left, then the statuses that have a way out, then the final ones,
each column in the model's order. Arrows to another column are labelled at their target, one
label per transition.
"""

from collections import defaultdict
from collections.abc import Callable

from django.utils import translation
from django.utils.translation import gettext

from communications_project.svg import INK, MUTED, PALETTE, Svg, n

from .models import Communication, Kind, Status

BOX_W, BOX_H, ROW = 156, 48, 86
HALO = ' stroke="#ffffff" stroke-width="4" paint-order="stroke"'  # a label stays legible over a line
COLUMNS = (36, 200, 580)
TOP = 46


def _condition_words(name: str) -> list[str]:
    transition = Communication.transitions()[name]
    return [condition.__name__.removeprefix("is_") for condition in transition.conditions]


def english_transition(name: str) -> str:
    words = _condition_words(name)
    return f"{name} [{', '.join(words)}]" if words else name


def english_status(status: str) -> tuple[str, str]:
    return status, str(Status(status).label)


def create_label(kinds: list[str]) -> str:
    return f"create [{', '.join(kinds)}]"


def state_machine_svg(
    *,
    status_label: Callable[[str], tuple[str, str]] = english_status,
    transition_label: Callable[[str], str] = english_transition,
    create: Callable[[list[str]], str] = create_label,
    current: str | None = None,
    title: str = "Communication status machine",
) -> str:
    edges = Communication.edges()
    names = list(dict.fromkeys(name for name, _, _ in edges))
    color = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    sources = {source for _, source, _ in edges}
    statuses = [status.value for status in Status]
    middle = [s for s in statuses if s in sources]
    final = [s for s in statuses if s not in sources]
    rows = max(len(middle), len(final))
    height = TOP + rows * ROW + 24
    width = COLUMNS[2] + BOX_W + 24
    svg = Svg(width, height, title=title, css_class="state-machine")
    svg.add(
        "<defs>"
        + "".join(
            f'<marker id="arrow-{i}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
            for i, c in enumerate([INK, *color.values()])
        )
        + "</defs>"
    )
    marker = {None: "arrow-0", **{name: f"arrow-{i + 1}" for i, name in enumerate(names)}}
    svg.text(12, 22, title, weight="600", size=14)

    def column_y(count: int, index: int) -> float:
        offset = (rows - count) * ROW / 2
        return TOP + offset + index * ROW + (ROW - BOX_H) / 2

    box = {}
    for column, members in ((1, middle), (2, final)):
        for index, status in enumerate(members):
            box[status] = (COLUMNS[column], column_y(len(members), index))

    # The creation: a dot, and an arrow to the status each kind starts in.
    start_x, start_y = COLUMNS[0], TOP + rows * ROW / 2
    svg.add(f'<circle cx="{n(start_x)}" cy="{n(start_y)}" r="8" fill="{INK}"/>')
    initial: dict[str, list[str]] = defaultdict(list)
    for kind in Kind:
        initial[Communication.initial_status(kind)].append(str(kind.value))
    for status, kinds in initial.items():
        bx, by = box[status]
        ty = by + BOX_H / 2
        svg.add(
            f'<path d="M{n(start_x + 8)},{n(start_y)} C{n(start_x + 70)},{n(start_y)} {n(bx - 70)},{n(ty)} '
            f'{n(bx)},{n(ty)}" fill="none" stroke="{INK}" stroke-width="1.5" marker-end="url(#{marker[None]})"/>'
        )
        svg.text(
            start_x + 14,
            (start_y + ty) / 2 - 6 if ty < start_y else (start_y + ty) / 2 + 14,
            create(kinds),
            size=11,
            fill=MUTED,
        )

    # Arrows within a column (start: created → in_work), then across to the final statuses.
    across = [edge for edge in edges if edge[1] in box and edge[2] in box and box[edge[1]][0] != box[edge[2]][0]]
    outgoing = defaultdict(list)
    incoming = defaultdict(list)
    for edge in across:
        outgoing[edge[1]].append(edge)
        incoming[edge[2]].append(edge)
    for name, source, target in edges:
        sx, sy = box[source]
        tx, ty = box[target]
        width_attr = "2.5" if current == source else "1.5"
        if sx == tx:  # the same column: straight down (or up) between the boxes
            x = sx + BOX_W / 2
            y1, y2 = (sy + BOX_H, ty) if ty > sy else (sy, ty + BOX_H)
            svg.add(
                f'<path d="M{n(x)},{n(y1)} L{n(x)},{n(y2)}" stroke="{color[name]}" stroke-width="{width_attr}" '
                f'fill="none" marker-end="url(#{marker[name]})"/>'
            )
            # On the left of the arrow: the arrows to the other column leave from the boxes' right.
            svg.text(
                x - 8,
                (y1 + y2) / 2 + 4,
                transition_label(name),
                anchor="end",
                size=11,
                fill=color[name],
                weight="600",
                extra=HALO,
            )
            continue
        out = outgoing[source].index((name, source, target))
        into = incoming[target].index((name, source, target))
        y1 = sy + BOX_H / 2 + (out - (len(outgoing[source]) - 1) / 2) * 7
        y2 = ty + BOX_H / 2 + (into - (len(incoming[target]) - 1) / 2) * 8
        x1, x2 = sx + BOX_W, tx
        bend = (x2 - x1) / 2
        svg.add(
            f'<path d="M{n(x1)},{n(y1)} C{n(x1 + bend)},{n(y1)} {n(x2 - bend)},{n(y2)} {n(x2)},{n(y2)}" '
            f'stroke="{color[name]}" stroke-width="{width_attr}" fill="none" marker-end="url(#{marker[name]})"/>'
        )
    labelled = set()
    for name, _source, target in across:
        if (name, target) in labelled:
            continue
        labelled.add((name, target))
        tx, ty = box[target]
        svg.text(
            tx - 10,
            ty + 6,
            transition_label(name),
            anchor="end",
            size=11,
            fill=color[name],
            weight="600",
            extra=HALO,
        )

    for status, (x, y) in box.items():
        code, label = status_label(status)
        marked = status == current
        fill = "#dbeafe" if marked else ("#f3f4f6" if status in final else "#ffffff")
        stroke = PALETTE[0] if marked else INK
        svg.rect(x, y, BOX_W, BOX_H, fill=fill, stroke=stroke, rx=10, extra=f' stroke-width="{2.5 if marked else 1.2}"')
        svg.text(x + BOX_W / 2, y + 20, code, anchor="middle", weight="600", size=13)
        svg.text(x + BOX_W / 2, y + 37, label, anchor="middle", size=11, fill=MUTED)
    return svg.render()


def localized_svg(current: str | None = None) -> str:
    """For the admin: the operator's words (the current language), the communication's status marked."""
    buttons = {name: str(t.custom.get("label", name)) for name, t in Communication.transitions().items()}

    def transition_label(name: str) -> str:
        words = [str(Kind(word).label).lower() for word in _condition_words(name) if word in Kind.values]
        return f"{buttons[name]} ({', '.join(words)})" if words else buttons[name]

    def status_label(status: str) -> tuple[str, str]:
        return str(Status(status).label), status

    def create(kinds: list[str]) -> str:
        return gettext("created: %(kinds)s") % {"kinds": ", ".join(str(Kind(kind).label).lower() for kind in kinds)}

    return state_machine_svg(
        status_label=status_label,
        transition_label=transition_label,
        create=create,
        current=current,
        title=gettext("Status machine"),
    )


def docs_svg() -> str:
    """docs/state-machine.svg: English, nothing marked."""
    with translation.override("en"):
        return state_machine_svg()
