"""The UI-visibility report: who sees what, before and after the apply (SPEC sections 8, 9).

`build_visibility` turns tenant plans (or plain `(tenant, labels, before, after)`
items) into a `VisibilityReport`: per tenant, per audience (every staff security
level, then every Client Portal level), each element of that audience's kind
with whether it is visible before and after, and the warnings that concern it
(AT-15, AT-20, AT-21) beside it. Everything here is pure: states in, values out.

The report is lazy: its `tenants` are built one at a time as a renderer asks for
them, so a report over a stream of 10,000 tenant plans keeps one tenant's model
in memory, never the whole document (a report over a stream renders once).

Renderers are listed in `REPORT_RENDERERS` (STYLE practice 2); each takes the
report and yields the output in chunks, tenant by tenant; `render(report, fmt)`
joins them. Text, Markdown and HTML are Jinja2 templates shipped in
`report/templates/`, rendered with `Template.generate`; `stream_template`
renders a user's own template with the same context. The HTML page gets only
compact per-tenant data and draws the screens in the browser. The state holds
key masks only, and no renderer shows even those.
"""

from __future__ import annotations

import itertools
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import jinja2
from markupsafe import Markup

from atpay_config import __version__
from atpay_config.autotask import ui
from atpay_config.autotask.tenant import PAYMENT_PROCESSING_PATH, TenantState
from atpay_config.autotask.ui import (
    AUDIENCE_KINDS,
    ELEMENTS,
    Audience,
    AudienceKind,
    UiElement,
    UiWarning,
    audiences,
    visible_elements,
)
from atpay_config.errors import AtpayError

if TYPE_CHECKING:
    from atpay_config.plan.planner import TenantPlan

REPORT_VERSION: Final = 1
"""Version of the JSON shape of SPEC section 9."""

Change = Literal["added", "removed", "kept", "hidden"]
Side = Literal["before", "after"]

KIND_TITLES: Final[dict[AudienceKind, str]] = {"staff": "Staff", "portal": "Client Portal"}
_TYPE_LABELS: Final = {"creditCard": "credit card", "eCheck": "eCheck"}


@dataclass(frozen=True, slots=True)
class Screen:
    """A place in Autotask where elements appear: a menu, a page, a context menu, a window."""

    id: str
    title: str
    kind: AudienceKind
    elements: tuple[UiElement, ...]


SCREENS: Final[tuple[Screen, ...]] = (
    Screen(
        "admin_finance",
        "Admin > Features & Settings > Finance, Accounting & Invoicing",
        "staff",
        (ui.PAYMENT_PROCESSING_LINK,),
    ),
    Screen(
        "payment_processing_page",
        PAYMENT_PROCESSING_PATH,
        "staff",
        (ui.SALES_CONTACT_FORM, ui.INTEGRATION_FIELDS),
    ),
    Screen("invoice_page", "Invoice page", "staff", (ui.PROCESS_PAYMENT_BUTTON,)),
    Screen(
        "invoice_history_menu",
        "Invoice History > context menu",
        "staff",
        (ui.PROCESS_PAYMENT_OPTION,),
    ),
    Screen(
        "process_payment_window",
        "Invoice > Process Payment: payment types",
        "staff",
        (ui.PROCESS_PAYMENT_CREDIT_CARD, ui.PROCESS_PAYMENT_ECHECK),
    ),
    Screen("payment_search", "Payment Search", "staff", (ui.PAYMENT_SEARCH_PAGE,)),
    Screen("client_portal_invoice", "Client Portal > Invoice", "portal", (ui.MAKE_A_PAYMENT,)),
    Screen(
        "make_a_payment_window",
        "Client Portal > Invoice > Make a Payment: payment types",
        "portal",
        (ui.CLIENT_PORTAL_CREDIT_CARD, ui.CLIENT_PORTAL_ECHECK),
    ),
)
"""The screens reports draw, in the order an admin meets them; every element is on one."""


# --- the model ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ElementRow:
    """One element for one audience: visible before? after? and the warnings beside it."""

    element: UiElement
    before: bool
    after: bool
    warnings_before: tuple[UiWarning, ...] = ()
    warnings_after: tuple[UiWarning, ...] = ()

    @property
    def id(self) -> str:
        return self.element.id

    @property
    def change(self) -> Change:
        if self.before and self.after:
            return "kept"
        if self.after:
            return "added"
        return "removed" if self.before else "hidden"

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def shown(self) -> bool:
        """Visible on either side: worth a line in a report."""
        return self.before or self.after

    @property
    def warnings(self) -> tuple[UiWarning, ...]:
        """The warnings that matter: the after state's when it is visible after."""
        return self.warnings_after if self.after else self.warnings_before

    def drawn(self, side: Side) -> str | None:
        """How the HTML page draws the element on one side, or None when it is absent there.

        Before: `on`, or `leaving` when the apply removes it. After: `on`,
        `arriving` when the apply adds it, or a `gone` ghost where it was.
        """
        if side == "before":
            return ("leaving" if not self.after else "on") if self.before else None
        if self.after:
            return "on" if self.before else "arriving"
        return "gone" if self.before else None

    def warnings_on(self, side: Side) -> tuple[UiWarning, ...]:
        return self.warnings_before if side == "before" else self.warnings_after

    @property
    def tooltip(self) -> str:
        """What hovering over the element explains: id, facts, where it lives, warnings."""
        parts = [
            f"{self.element.label} ({self.element.id})",
            f"Facts: {', '.join(self.element.facts)}",
            f"Where: {self.element.location}",
            {
                "kept": "Visible before and after",
                "added": "Appears with this apply",
                "removed": "Disappears with this apply",
                "hidden": "Not visible",
            }[self.change],
        ]
        parts += [f"{w.fact}: {w.message}" for w in self.warnings]
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class ScreenView:
    """One screen's elements for one audience."""

    screen: Screen
    rows: tuple[ElementRow, ...]

    @property
    def shown(self) -> tuple[ElementRow, ...]:
        return tuple(r for r in self.rows if r.shown)

    @property
    def visible_before(self) -> bool:
        return any(r.before for r in self.rows)

    @property
    def visible_after(self) -> bool:
        return any(r.after for r in self.rows)

    def row(self, element_id: str) -> ElementRow:
        """The row of one of this screen's elements, by id (templates draw screens by hand)."""
        return next(r for r in self.rows if r.id == element_id)


@dataclass(frozen=True, slots=True)
class AudienceVisibility:
    """What one staff or Client Portal security level sees, before and after."""

    audience: Audience
    rows: tuple[ElementRow, ...]  # every element of the audience's kind, in ELEMENTS order

    @property
    def kind(self) -> AudienceKind:
        return self.audience.kind

    @property
    def level(self) -> str:
        return self.audience.level

    @property
    def key(self) -> str:
        """`staff:Manager`: the audience picker's value and the `--audience` long form."""
        return f"{self.audience.kind}:{self.audience.level}"

    @property
    def title(self) -> str:
        return f"{KIND_TITLES[self.audience.kind]} · {self.audience.level}"

    @property
    def before(self) -> list[str]:
        return [r.id for r in self.rows if r.before]

    @property
    def after(self) -> list[str]:
        return [r.id for r in self.rows if r.after]

    @property
    def added(self) -> list[str]:
        return [r.id for r in self.rows if r.change == "added"]

    @property
    def removed(self) -> list[str]:
        return [r.id for r in self.rows if r.change == "removed"]

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self.rows)

    @property
    def shown(self) -> tuple[ElementRow, ...]:
        return tuple(r for r in self.rows if r.shown)

    @property
    def screens(self) -> tuple[ScreenView, ...]:
        by_id = {r.id: r for r in self.rows}
        return tuple(
            ScreenView(s, tuple(by_id[e.id] for e in s.elements))
            for s in SCREENS
            if s.kind == self.audience.kind
        )

    def to_dict(self) -> dict[str, Any]:
        """SPEC section 9's audience object, plus `added`, `removed` and `warnings`."""
        return {
            "kind": self.audience.kind,
            "level": self.audience.level,
            "before": self.before,
            "after": self.after,
            "added": self.added,
            "removed": self.removed,
            "warnings": [
                {"element": r.id, "fact": w.fact, "message": w.message}
                for r in self.rows
                if r.after
                for w in r.warnings_after
            ],
        }


@dataclass(frozen=True, slots=True)
class Stage:
    """How far the Payment Processing setup is, in one state: the report's one-line context."""

    active: bool
    sales_contact_requested: bool
    gateway_account_active: bool
    keys_saved: bool
    processing_enabled: bool
    autotask_types: tuple[str, ...]
    portal_types: tuple[str, ...]

    @classmethod
    def of(cls, state: TenantState) -> Stage:
        return cls(
            active=state.active,
            sales_contact_requested=state.sales_contact_requested,
            gateway_account_active=state.gateway_account_active,
            keys_saved=state.keys_saved,
            processing_enabled=state.processing_enabled,
            autotask_types=tuple(state.payment_types.autotask),
            portal_types=tuple(state.payment_types.client_portal),
        )

    @property
    def name(self) -> str:
        """The setup stage in the documented order (AT-3, AT-5, AT-6, AT-7, AT-11)."""
        if not self.active:
            return "inactive"
        if self.processing_enabled:
            return "processing enabled"
        if self.keys_saved:
            return "keys saved, no payment type"
        if self.sales_contact_requested:
            return "demo requested"
        return "active"

    @property
    def describe(self) -> str:
        """`processing enabled (Autotask: credit card, eCheck; Client Portal: credit card)`."""
        if not self.processing_enabled:
            return self.name
        return (
            f"{self.name} (Autotask: {_types(self.autotask_types)}; "
            f"Client Portal: {_types(self.portal_types)})"
        )


def _types(types: Sequence[str]) -> str:
    return ", ".join(_TYPE_LABELS.get(t, t) for t in types) or "none"


@dataclass(frozen=True, slots=True)
class MatrixLine:
    """One element's row in a tenant's element × audience table: a cell per audience."""

    screen: Screen
    element: UiElement
    cells: tuple[ElementRow, ...]


@dataclass(frozen=True, slots=True)
class TenantWarning:
    """A warning as a tenant-level note: the fact, the message, the elements it concerns."""

    warning: UiWarning
    elements: tuple[str, ...]  # labels

    @property
    def fact(self) -> str:
        return self.warning.fact

    @property
    def message(self) -> str:
        return self.warning.message


@dataclass(frozen=True, slots=True)
class TenantVisibility:
    """One tenant's audiences, its setup stage before and after, and why nothing changes if so."""

    tenant: str
    labels: tuple[tuple[str, str], ...]
    before: Stage
    after: Stage
    audiences: tuple[AudienceVisibility, ...]
    note: str | None = None  # e.g. the plan was refused: after is before

    @property
    def changed(self) -> bool:
        return any(a.changed for a in self.audiences)

    @property
    def warnings(self) -> list[TenantWarning]:
        """Each distinct warning once, with the elements it sits beside: for notes under a table."""
        found: dict[UiWarning, list[str]] = {}
        for aud in self.audiences:
            for row in aud.rows:
                if not row.shown:
                    continue
                for warning in row.warnings:
                    labels = found.setdefault(warning, [])
                    if row.element.label not in labels:
                        labels.append(row.element.label)
        return [TenantWarning(w, tuple(labels)) for w, labels in found.items()]

    def of_kind(self, kind: AudienceKind) -> tuple[AudienceVisibility, ...]:
        return tuple(a for a in self.audiences if a.kind == kind)

    def matrix(self, kind: AudienceKind) -> list[MatrixLine]:
        """Element × audience for one kind: the elements any of its audiences sees, by screen."""
        auds = self.of_kind(kind)
        lines = []
        for screen in SCREENS:
            if screen.kind != kind:
                continue
            for element in screen.elements:
                cells = tuple(next(r for r in a.rows if r.id == element.id) for a in auds)
                if any(c.shown for c in cells):
                    lines.append(MatrixLine(screen, element, cells))
        return lines

    @property
    def anchor(self) -> str:
        """A stable HTML id for the tenant (ids are DNS-label-like and unique, AT009)."""
        return "tenant-" + re.sub(r"[^a-z0-9-]", "-", self.tenant.lower())

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "audiences": [a.to_dict() for a in self.audiences]}


@dataclass(frozen=True, slots=True)
class VisibilityReport:
    """Who sees what, per tenant and audience, before and after the apply.

    `tenants` is lazy (a `TenantStream`): iterate it, don't index or count it.
    """

    tenants: Iterable[TenantVisibility]
    changes_only: bool = False
    audience: str | None = None  # the `--audience` filter, as given

    def to_dict(self) -> dict[str, Any]:
        """SPEC section 9 as one value: for small reports and tests (`iter_json` streams)."""
        return {"version": REPORT_VERSION, "tenants": [t.to_dict() for t in self.tenants]}

    def to_json(self) -> str:
        return "".join(iter_json(self))


def iter_json(report: VisibilityReport) -> Iterator[str]:
    """SPEC section 9 tenant by tenant, byte for byte what `json.dumps(indent=2)` writes."""
    head = f'{{\n  "version": {REPORT_VERSION},\n  "tenants": ['
    for tenant in report.tenants:
        body = json.dumps(tenant.to_dict(), indent=2, ensure_ascii=False)
        yield head + "\n" + textwrap.indent(body, "    ")
        head = ","
    yield f"{head}]\n}}" if head != "," else "\n  ]\n}"


# --- building ----------------------------------------------------------------------------

ReportItem = tuple[str, Mapping[str, str], TenantState, TenantState]


class _PlannedTenant(Protocol):
    """What the report reads from a `TenantPlan` (so plain tuples work as well)."""

    @property
    def tenant(self) -> str: ...
    @property
    def before(self) -> TenantState: ...
    @property
    def after(self) -> TenantState: ...
    @property
    def refusal(self) -> str | None: ...


def build_visibility(
    items: Iterable[TenantPlan | ReportItem],
    *,
    tenant: str | Iterable[str] | None = None,
    audience: str | None = None,
    changes_only: bool = False,
) -> VisibilityReport:
    """The report for `items`: tenant plans, or `(tenant, labels, before, after)` tuples.

    `tenant` keeps only those tenants; `audience` keeps only matching levels
    (`LEVEL`, or `staff:LEVEL` / `portal:LEVEL`; case-insensitive) and raises
    AtpayError when no tenant has one; `changes_only` drops audiences whose view
    does not change, then tenants left with none.

    Nothing is built for a tenant until a renderer reaches it. Items that are a
    sequence (a list) can be rendered any number of times; any other iterable
    (a generator, the plan stream) once. The stream is started here, up to its
    first tenant, so an unknown `--audience` fails before any output is written.
    """
    wanted = {tenant} if isinstance(tenant, str) else None if tenant is None else set(tenant)
    stream = TenantStream(
        items, wanted=wanted, audience=audience, changes_only=changes_only
    )
    stream.prime()
    return VisibilityReport(stream, changes_only=changes_only, audience=audience)


class TenantStream:
    """A report's tenants, each `TenantVisibility` built as the renderer asks for it."""

    def __init__(
        self,
        items: Iterable[TenantPlan | ReportItem],
        *,
        wanted: set[str] | None,
        audience: str | None,
        changes_only: bool,
    ) -> None:
        self._items = items
        self._once = not isinstance(items, Sequence)
        self._wanted = wanted
        self._audience = audience
        self._match = _audience_matcher(audience)
        self._changes_only = changes_only
        self._started: Iterator[TenantVisibility] | None = None
        self._used = False

    def prime(self) -> None:
        """Build up to the first tenant now: an unknown audience raises before any output."""
        if not self._once:
            if self._audience is not None:
                next(self._build(), None)
            return
        built = self._build()
        first = next(built, None)
        self._started = built if first is None else itertools.chain((first,), built)

    def __iter__(self) -> Iterator[TenantVisibility]:
        if not self._once:
            return self._build()
        if self._used:
            raise RuntimeError("this report reads a stream of tenants: it can be rendered once")
        self._used = True
        started, self._started = self._started, None
        return started if started is not None else self._build()

    def _build(self) -> Iterator[TenantVisibility]:
        # With an --audience filter, tenants are held back until one has a matching
        # level (they carry no audience rows, so holding them is cheap): with none at
        # all the filter is a mistake, reported before anything is shown.
        held: list[TenantVisibility] | None = [] if self._audience is not None else None
        known: dict[str, None] = {}
        for item in self._items:
            name, labels, before, after, note = _unpack(item)
            if self._wanted is not None and name not in self._wanted:
                continue
            views = []
            matched = False
            for aud in _audiences(before, after):
                if held is not None:
                    known.setdefault(f"{aud.kind}:{aud.level}")
                if not self._match(aud):
                    continue
                matched = True
                view = _audience_visibility(aud, before, after)
                if self._changes_only and not view.changed:
                    continue
                views.append(view)
            if self._changes_only and not views:
                if held is not None and matched:
                    yield from held
                    held = None
                continue
            built = TenantVisibility(
                tenant=name,
                labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
                before=Stage.of(before),
                after=Stage.of(after),
                audiences=tuple(views),
                note=note,
            )
            if held is None:
                yield built
                continue
            held.append(built)
            if matched:
                yield from held
                held = None
        if held is not None:
            if known:
                raise AtpayError(
                    f"--audience {self._audience!r}: no tenant has that security level; "
                    f"choose one of: {', '.join(known)}"
                )
            yield from held


def _unpack(
    item: _PlannedTenant | ReportItem,
) -> tuple[str, Mapping[str, str], TenantState, TenantState, str | None]:
    if isinstance(item, tuple):
        name, given, before, after = item
        return name, given, before, after, None
    manifest = getattr(item, "manifest", None)
    labels: Mapping[str, str] = getattr(manifest, "labels", None) or {}
    note = None
    if item.refusal is not None:
        note = f"plan refused, so nothing changes: {item.refusal}"
    return item.tenant, labels, item.before, item.after, note


def _audiences(before: TenantState, after: TenantState) -> list[Audience]:
    """The after state's audiences, then any only the before state has (levels rarely change)."""
    found = audiences(after)
    found += [a for a in audiences(before) if a not in found]
    return sorted(found, key=lambda a: AUDIENCE_KINDS.index(a.kind))


def _audience_matcher(spec: str | None) -> Callable[[Audience], bool]:
    if spec is None:
        return lambda _aud: True
    kind, sep, level = spec.partition(":")
    if sep and kind.strip().lower() in AUDIENCE_KINDS:
        want_kind: str | None = kind.strip().lower()
        want_level = level.strip().casefold()
    else:
        want_kind, want_level = None, spec.strip().casefold()
    return lambda aud: (want_kind is None or aud.kind == want_kind) and (
        aud.level.casefold() == want_level
    )


def _audience_visibility(
    audience: Audience, before: TenantState, after: TenantState
) -> AudienceVisibility:
    seen_before = _visible(before, audience)
    seen_after = _visible(after, audience)
    return AudienceVisibility(
        audience,
        tuple(
            ElementRow(
                element,
                before=element.id in seen_before,
                after=element.id in seen_after,
                warnings_before=seen_before.get(element.id, ()),
                warnings_after=seen_after.get(element.id, ()),
            )
            for element in ELEMENTS
            if element.kind == audience.kind
        ),
    )


def _visible(state: TenantState, audience: Audience) -> dict[str, tuple[UiWarning, ...]]:
    """Visible element ids with their warnings; nothing for a level this state lacks."""
    level_known = (
        state.security_level(audience.level)
        if audience.kind == "staff"
        else state.portal_security_level(audience.level)
    )
    if level_known is None:
        return {}
    return {v.id: v.warnings for v in visible_elements(state, audience)}


# --- rendering ---------------------------------------------------------------------------


class ReportRenderer(Protocol):
    """Yields the report in chunks, tenant by tenant, ending with exactly one newline."""

    def __call__(self, report: VisibilityReport, *, color: bool = False) -> Iterator[str]: ...


_ANSI: Final = {
    "added": "\x1b[32m",
    "removed": "\x1b[31m",
    "warning": "\x1b[33m",
    "heading": "\x1b[1m",
    "dim": "\x1b[2m",
}
_RESET: Final = "\x1b[0m"
# C0/C1 controls, DEL, lone surrogates, line separators and bidi overrides: a level
# name from a fixture must not move the cursor or recolour a terminal.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Inline Markdown punctuation; values never start a line, so `#`, `>`, `-` are harmless.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")

MARKS: Final[dict[Change, str]] = {"added": "+", "removed": "−", "kept": " ", "hidden": " "}


def terminal_text(value: object) -> str:
    """`value` with control characters shown as escapes: safe to print on a terminal."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def markdown_text(value: object) -> str:
    """`value` as inert inline Markdown: no HTML tag, emphasis, link or table cell can start."""
    flat = terminal_text(value).replace("&", "&amp;").replace("<", "&lt;")
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _paint(text: object, style: str, *, color: bool) -> str:
    return f"{_ANSI[style]}{text}{_RESET}" if color and style in _ANSI else str(text)


_TEMPLATE_SUFFIXES: Final = (".j2", ".jinja", ".jinja2")
_ESCAPED_EXTENSIONS: Final = (".html", ".htm", ".xml", ".svg")


def autoescape_for(name: str | None) -> bool:
    """Autoescape by the file's extension, a trailing `.j2`/`.jinja` ignored: on for HTML/XML."""
    lowered = (name or "").lower()
    for suffix in _TEMPLATE_SUFFIXES:
        if lowered.endswith(suffix):
            lowered = lowered[: -len(suffix)]
            break
    return lowered.endswith(_ESCAPED_EXTENSIONS)


def _configure(env: jinja2.Environment) -> jinja2.Environment:
    env.filters["term"] = terminal_text
    env.filters["md"] = markdown_text
    env.filters["types"] = _types
    return env


@cache
def _environment() -> jinja2.Environment:
    """The shipped templates, loaded from the package (works from a wheel or a checkout)."""
    return _configure(
        jinja2.Environment(
            loader=jinja2.PackageLoader("atpay_config.report", "templates"),
            autoescape=autoescape_for,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
    )


def template_context(report: VisibilityReport, *, color: bool = False) -> dict[str, Any]:
    """What every template sees, shipped or `--template`: documented in the templates' README.

    `tenants` is lazy: loop over it once (`{% for %}…{% else %}…{% endfor %}` for
    the empty case); `length`, indexing or a second loop are not available.
    """

    def paint(text: object, style: str) -> str:
        return _paint(text, style, color=color)

    return {
        "report": report,
        "tenants": report.tenants,
        "screens": SCREENS,
        "elements": ELEMENTS,
        "marks": MARKS,
        "color": color,
        "paint": paint,
        "version": __version__,
        "kind_titles": KIND_TITLES,
    }


CHUNK_CHARS: Final = 1 << 16
"""Output is written in chunks of about this many characters, not one per template event."""


def _tidy(pieces: Iterable[str]) -> Iterator[str]:
    """`"".join(pieces).strip("\n") + "\n"`, in chunks: no leading blank line, one final newline."""
    buffer: list[str] = []
    size = 0
    held = ""  # trailing newlines, written only if more text follows
    started = False
    for piece in pieces:
        if not started:
            piece = piece.lstrip("\n")
            if not piece:
                continue
            started = True
        body = piece.rstrip("\n")
        if not body:
            held += piece
            continue
        buffer += (held, body)
        size += len(held) + len(body)
        held = piece[len(body) :]
        if size >= CHUNK_CHARS:
            yield "".join(buffer)
            buffer, size = [], 0
    buffer.append("\n")
    yield "".join(buffer)


def _generate(
    name: str, report: VisibilityReport, *, color: bool = False, **extra: Any
) -> Iterator[str]:
    template = _environment().get_template(name)
    return _tidy(template.generate(**template_context(report, color=color), **extra))


def stream_text(report: VisibilityReport, *, color: bool = False) -> Iterator[str]:
    """The terminal view: each audience's screens as Autotask menus, `+` appears, `−` disappears."""
    return _generate("visibility.txt.j2", report, color=color)


def stream_markdown(report: VisibilityReport, *, color: bool = False) -> Iterator[str]:
    """A pull-request comment: per tenant, audience × element tables; changes bold."""
    return _generate("visibility.md.j2", report, heading="##", standalone=True)


def stream_html(report: VisibilityReport, *, color: bool = False) -> Iterator[str]:
    """One self-contained page (inline CSS/JS, a CSP forbidding every request) an admin opens.

    The screens' markup is written once, as `<template>`s; per tenant only compact
    data goes into the page (`PageData`), and the page's script draws the chosen
    tenant and audience with DOM calls.
    """
    return _generate("visibility.html.j2", report, page=PageData())


def stream_json(report: VisibilityReport, *, color: bool = False) -> Iterator[str]:
    """SPEC section 9, with `added`, `removed` and `warnings` inside each audience object."""
    return _tidy(iter_json(report))


def visibility_markdown_section(report: VisibilityReport, *, heading: str = "###") -> str:
    """The "who sees what" section `atpay plan --format markdown` embeds in its PR comment."""
    return "".join(
        _generate("visibility.md.j2", report, heading=heading, standalone=False)
    ).rstrip("\n")


def stream_template(
    report: VisibilityReport, source: str, *, name: str, color: bool = False
) -> Iterator[str]:
    """A user's own template (`--template FILE`), with the shipped templates' lazy context.

    Autoescaped when `name` ends in .html/.htm/.xml (a trailing .j2 ignored); the
    shipped templates can be extended or included by name. Errors are AtpayError,
    raised when compiling or, for an undefined name, when the output reaches it.
    """
    env = _configure(
        jinja2.Environment(
            loader=jinja2.PackageLoader("atpay_config.report", "templates"),
            autoescape=autoescape_for(name),
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
    )
    try:
        template = env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise AtpayError(f"{name}:{exc.lineno}: template error: {exc.message}") from None
    return _user_output(template, report, name=name, color=color)


def _user_output(
    template: jinja2.Template, report: VisibilityReport, *, name: str, color: bool
) -> Iterator[str]:
    try:
        yield from _tidy(template.generate(**template_context(report, color=color)))
    except jinja2.UndefinedError as exc:
        raise AtpayError(f"{name}: template error: {exc.message}") from None
    except TypeError as exc:
        raise AtpayError(
            f"{name}: template error: {exc} (tenants can be looped over once, not counted)"
        ) from None


REPORT_RENDERERS: Final[dict[str, ReportRenderer]] = {
    "text": stream_text,
    "markdown": stream_markdown,
    "html": stream_html,
    "json": stream_json,
}
"""The one list of `atpay report --format` choices (STYLE practice 2)."""


def render(report: VisibilityReport, fmt: str, *, color: bool = False) -> str:
    """The whole output of one format as a string, without its final newline (small reports)."""
    return "".join(REPORT_RENDERERS[fmt](report, color=color)).removesuffix("\n")


def render_text(report: VisibilityReport, *, color: bool = False) -> str:
    return render(report, "text", color=color)


def render_markdown(report: VisibilityReport, *, color: bool = False) -> str:
    return render(report, "markdown")


def render_html(report: VisibilityReport, *, color: bool = False) -> str:
    return render(report, "html")


def render_json(report: VisibilityReport, *, color: bool = False) -> str:
    return render(report, "json")


def render_template(
    report: VisibilityReport, source: str, *, name: str, color: bool = False
) -> str:
    """`stream_template`, joined, without its final newline."""
    return "".join(stream_template(report, source, name=name, color=color)).removesuffix("\n")


# --- the HTML page's data ------------------------------------------------------------------

# In a <script type="application/json"> block, `</script>` or `<!--` in a value would
# end or confuse the block: JSON's own \u escapes keep every <, > and & out of the page.
_SCRIPT_SAFE: Final = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_BIT: Final = {e.id: 1 << i for i, e in enumerate(ELEMENTS)}
_INDEX: Final = {e.id: i for i, e in enumerate(ELEMENTS)}


def script_json(value: object) -> Markup:
    """`value` as compact JSON that is inert inside a `<script type="application/json">`."""
    return Markup(
        json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_SAFE)
    )


class PageData:
    """The HTML page's data: a compact line per tenant, then the tables those lines point into.

    A tenant is `[name, labels, before stage, after stage, note, audiences]`, an
    audience `[kind, level, before mask, after mask, before warnings, after
    warnings]` where bit i of a mask is `ELEMENTS[i]` and a warning is `[element
    index, warning index]`. Stages, warnings and audience titles are each written
    once, in `index()` after the last tenant (the page's script runs after it).
    """

    def __init__(self) -> None:
        self._stages: dict[Stage, int] = {}
        self._warnings: dict[UiWarning, int] = {}
        self._audiences: dict[str, str] = {}
        self.count = 0

    @staticmethod
    def meta() -> Markup:
        """What never changes: the elements and the screens they are drawn on."""
        return script_json(
            {
                "elements": [
                    [e.id, e.label, e.location, list(e.facts), e.kind] for e in ELEMENTS
                ],
                "screens": [
                    [s.id, s.title, s.kind, [_INDEX[e.id] for e in s.elements]] for s in SCREENS
                ],
                "kinds": KIND_TITLES,
            }
        )

    def tenant(self, tenant: TenantVisibility) -> Markup:
        self.count += 1
        return script_json(
            [
                tenant.tenant,
                [list(pair) for pair in tenant.labels],
                self._stage(tenant.before),
                self._stage(tenant.after),
                tenant.note,
                [self._audience(a) for a in tenant.audiences],
            ]
        )

    def _stage(self, stage: Stage) -> int:
        return self._stages.setdefault(stage, len(self._stages))

    def _audience(self, aud: AudienceVisibility) -> list[Any]:
        self._audiences.setdefault(aud.key, aud.title)
        masks = [0, 0]
        warned: list[list[list[int]]] = [[], []]
        for row in aud.rows:
            for side, (seen, warnings) in enumerate(
                ((row.before, row.warnings_before), (row.after, row.warnings_after))
            ):
                if seen:
                    masks[side] |= _BIT[row.id]
                warned[side] += [
                    [_INDEX[row.id], self._warnings.setdefault(w, len(self._warnings))]
                    for w in warnings
                ]
        return [aud.kind, aud.level, *masks, *warned]

    def index(self) -> Markup:
        """The shared tables, after every tenant: stages, warnings, audiences first seen first."""
        return script_json(
            {
                "stages": [
                    [s.describe, s.keys_saved, list(s.autotask_types), list(s.portal_types)]
                    for s in self._stages
                ],
                "warnings": [[w.fact, w.message] for w in self._warnings],
                "audiences": [list(pair) for pair in self._audiences.items()],
                "count": self.count,
            }
        )
