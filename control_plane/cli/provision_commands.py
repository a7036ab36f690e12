"""``edgecups apply|get|describe|delete|drain|undrain``: provisioning through the API.

* ``apply -f FILE|DIR [--dry-run]`` checks every manifest (edge_sites.load_manifests; references
  may name what the server has) before sending them all in one Apply, then prints what changed.
* ``get KIND [NAME]`` lists (or gets one); ``-o yaml`` prints manifest documents that apply back.
* ``describe KIND NAME`` prints every spec field and the observed state.
* ``delete KIND NAME`` or ``delete -f FILE|DIR`` (the objects the manifests name, in reverse kind order).
* ``drain|undrain upf NODE_ID`` or ``drain|undrain site NAME``.

KIND is Site, UPF, DNN, Pool, Policy or Subscriber, in any case, singular or plural.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from control_plane.api.client import ApiClient, ProvisioningClient, Unreachable
from control_plane.errors import NotFound
from control_plane.provisioning.objects import Change, ObjectView, Resource
from edge_sites import FIELDS, KINDS, Manifest, ManifestError, load_manifests, order, render_plan, to_document
from edge_sites import diff as edge_diff

from .api_options import EXIT_CODES_HELP, EXIT_REFUSED, Output, Settings, api_command
from .api_output import UsageProblem, call, cell, columns, emit

__all__ = ["KIND_HELP", "canonical_kind", "register"]

_ALIASES: Final = {
    **{kind.lower(): kind for kind in KINDS},
    **{f"{kind.lower()}s": kind for kind in KINDS if kind != "Policy"},
    "policies": "Policy",
}
KIND_HELP: Final = "Site, UPF, DNN, Pool, Policy or Subscriber (any case; plurals too: sites, upfs, policies...)."


def canonical_kind(text: str) -> str:
    """The contract's spelling of a kind typed on the command line; a usage error otherwise."""
    kind = _ALIASES.get(text.lower())
    if kind is None:
        close = difflib.get_close_matches(text.lower(), list(_ALIASES), n=1)
        hint = f" (did you mean {_ALIASES[close[0]]}?)" if close else ""
        raise typer.BadParameter(f"{text!r} is not a kind{hint}: expected one of {', '.join(KINDS)}")
    return kind


KindArgument = Annotated[str, typer.Argument(metavar="KIND", help=KIND_HELP, show_default=False)]
FilesOption = Annotated[
    list[Path] | None,
    typer.Option("--filename", "-f", metavar="FILE|DIR", help="Manifest file, or directory of *.yaml (repeatable)."),
]

# What `get` shows of each kind: (header, spec or observed field).
_COLUMNS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "Site": (("kind", "kind"), ("region", "region"), ("tais", "tais")),
    "UPF": (
        ("site", "site"),
        ("n4", "n4_address"),
        ("n3", "n3_addresses"),
        ("dnns", "network_instances"),
        ("capacity", "capacity"),
        ("sessions", "sessions"),
        ("admin", "admin_state"),
        ("association", "association"),
        ("health", "health"),
    ),
    "DNN": (("network instance", "network_instance"), ("snssais", "snssais")),
    "Pool": (("dnn", "dnn"), ("site", "site"), ("cidr", "cidr"), ("per ue", "prefix_length"), ("used", "used"),
             ("free", "free")),
    "Policy": (("dnn", "dnn"), ("snssai", "snssai"), ("qfi", "qfi"), ("5qi", "five_qi"),
               ("ambr ul kbps", "session_ambr_ul_kbps"), ("ambr dl kbps", "session_ambr_dl_kbps"),
               ("edge rules", "edge_rules")),
    "Subscriber": (("allowed dnns", "allowed_dnns"), ("static ipv4", "static_ipv4"),
                   ("static ipv6", "static_ipv6"), ("policy", "policy")),
}  # fmt: skip
_KEY_HEADER: Final = {"UPF": "node id", "Subscriber": "supi"}


def _table(kind: str, views: Sequence[ObjectView]) -> str:
    def value(view: ObjectView, field: str) -> Any:
        found = view.spec.get(field, view.observed.get(field))
        return [rule.get("name") for rule in found] if field == "edge_rules" and found else found

    headers = [_KEY_HEADER.get(kind, "name"), *(header for header, _field in _COLUMNS[kind])]
    return columns(headers, ([v.name, *(value(v, f) for _h, f in _COLUMNS[kind])] for v in views))


def document(view: ObjectView) -> dict[str, Any]:
    """The manifest document of an object; its observed state under ``status``, which apply ignores."""
    doc = to_document(view.kind, view.name, view.spec)
    if view.observed:
        doc["status"] = view.observed
    return doc


async def _known(client: ProvisioningClient) -> dict[str, set[str]]:
    return {kind: {view.name async for view in client.iter_objects(kind)} for kind in KINDS}


async def load(client: ProvisioningClient, paths: Sequence[Path]) -> list[Manifest]:
    """The checked manifests of ``paths``; references may name objects the server has.

    The server is asked for its objects' names only when the set does not stand on its own.
    UsageProblem (nothing sent) when they are not valid.
    """
    try:
        return load_manifests(list(paths))
    except ManifestError as error:
        alone = error  # perhaps references to objects on the server: check again knowing them
    try:
        known = await _known(client)
    except Unreachable:
        typer.echo("problems found without the server's objects (references to them could not be checked):", err=True)
        for line in alone.errors:
            typer.echo(line, err=True)
        raise
    try:
        return load_manifests(list(paths), known=known)
    except ManifestError as error:
        raise UsageProblem(
            [*error.errors, f"{len(error.errors)} problem(s) in the manifests: nothing was sent"]
        ) from None


_PLANNED: Final[dict[str, edge_diff.Action]] = {"created": "create", "updated": "update", "unchanged": "unchanged"}


def _rendered(changes: Sequence[Change], *, dry_run: bool) -> str:
    # The server's answer, printed as edge_sites prints a plan; a created object's fields are its whole spec.
    return render_plan(
        [
            edge_diff.Change(
                c.kind,
                c.name,
                _PLANNED[c.action],
                {},
                () if c.action == "created" else tuple(edge_diff.FieldChange(f.path, f.old, f.new) for f in c.fields),
            )
            for c in changes
        ],
        applied=not dry_run,
    )


def apply(
    settings: Settings,
    filename: FilesOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")] = False,
) -> None:
    """Create or update the objects of manifest files (idempotent), and print what changed."""
    if not filename:
        raise typer.BadParameter("give the manifests to apply", param_hint="-f/--filename")

    async def work(api: ApiClient) -> None:
        manifests = order(await load(api.provisioning, filename))
        resources = [Resource(m.kind, m.name, m.spec) for m in manifests]
        changes = await api.provisioning.apply(resources, dry_run=dry_run)
        if settings.output is Output.table:
            typer.echo(_rendered(changes, dry_run=dry_run))
        else:
            emit({"dry_run": dry_run, "changes": changes}, settings.output)

    call(settings, work)


def get(
    settings: Settings,
    kind: KindArgument,
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="One object (its key); all of the kind without it.")
    ] = None,
    site: Annotated[str | None, typer.Option("--site", help="Only UPFs and pools of this site.")] = None,
    dnn: Annotated[str | None, typer.Option("--dnn", help="Only objects of this DNN.")] = None,
) -> None:
    """Print objects of a kind: a table, or -o yaml manifest documents that `apply -f` takes back."""
    canonical = canonical_kind(kind)
    if name is not None and (site is not None or dnn is not None):
        raise typer.BadParameter("--site and --dnn filter a listing: not with NAME", param_hint="NAME")

    async def work(api: ApiClient) -> None:
        if name is not None:
            views = [await api.provisioning.get(canonical, name)]
        else:
            views = [v async for v in api.provisioning.iter_objects(canonical, site=site, dnn=dnn)]
        if settings.output is Output.table:
            typer.echo(_table(canonical, views) if views else f"no {canonical} objects")
        elif name is not None:
            emit(document(views[0]), settings.output)
        else:
            emit([document(v) for v in views], settings.output, documents=True)

    call(settings, work)


def _describe(view: ObjectView, sessions: dict[str, int] | None) -> str:
    lines = [f"Kind: {view.kind}", f"Name: {view.name}", "Spec:"]
    width = max(len(f.name) for f in FIELDS[view.kind])
    for f in FIELDS[view.kind]:
        value = view.spec.get(f.name)
        if f.name == "edge_rules" and value:
            lines.append(f"  {f.name}:")
            for rule in value:
                lines.append(f"    - {rule.get('name')}: precedence {rule.get('precedence')}, "
                             f"network instance {rule.get('network_instance')}")  # fmt: skip
                lines.extend(f"        {flow}" for flow in rule.get("flow_descriptions", ()))
        else:
            lines.append(f"  {f.name + ':':<{width + 1}} {cell(value)}")
    if view.observed:
        lines.append("Status:")
        for key, value in view.observed.items():
            lines.append(f"  {key}: {cell(value)}")
    if sessions is not None:
        by_state = ", ".join(f"{state} {count}" for state, count in sorted(sessions.items()))
        lines.append(f"Sessions by state: {by_state or 'none'}")
    return "\n".join(lines)


def describe(
    settings: Settings,
    kind: KindArgument,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The object's key.")],
) -> None:
    """Print one object: every spec field (set or not) and what the control plane observes of it."""
    canonical = canonical_kind(kind)

    async def work(api: ApiClient) -> None:
        view = await api.provisioning.get(canonical, name)
        sessions = None
        if canonical == "UPF":
            status = await api.status.status()
            sessions = next((u.sessions for u in status.upfs if u.node_id == view.name), {})
        if settings.output is Output.table:
            typer.echo(_describe(view, sessions))
        else:
            doc = document(view)
            if sessions is not None:
                doc.setdefault("status", {})["sessions_by_state"] = sessions
            emit(doc, settings.output)

    call(settings, work)


def delete(
    settings: Settings,
    kind: Annotated[str | None, typer.Argument(metavar="[KIND]", help=KIND_HELP, show_default=False)] = None,
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="The object's key.", show_default=False)] = None,
    filename: FilesOption = None,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="With -f: an object already gone is no error.")
    ] = False,
) -> None:
    """Delete one object, or every object manifests name (reverse kind order); refused while others use it."""
    if filename and (kind is not None or name is not None):
        raise typer.BadParameter("give KIND NAME or -f FILE, not both", param_hint="-f/--filename")
    if not filename and (kind is None or name is None):
        raise typer.BadParameter("give KIND and NAME, or -f FILE", param_hint="KIND NAME")
    targets = [(canonical_kind(kind), name)] if kind is not None and name is not None else []

    async def work(api: ApiClient) -> int:
        if filename:
            targets.extend((m.kind, m.name) for m in order(await load(api.provisioning, filename), delete=True))
        deleted: list[ObjectView] = []
        missing = 0
        for target_kind, target_name in targets:
            try:
                deleted.append(await api.provisioning.delete(target_kind, target_name))
            except NotFound:
                if not filename:
                    raise
                missing += 1
                if settings.output is Output.table:
                    typer.echo(f"{target_kind} {target_name}: not found")
                continue
            if settings.output is Output.table:
                typer.echo(f"- {target_kind} {target_name} (deleted)")
        if settings.output is not Output.table:
            emit([document(view) for view in deleted], settings.output, documents=True)
        return EXIT_REFUSED if missing and not ignore_not_found else 0

    call(settings, work)


def _drain(settings: Settings, target: str, name: str, *, drained: bool) -> None:
    what = target.lower().removesuffix("s")
    if what not in ("upf", "site"):
        raise typer.BadParameter(f"{target!r}: expected upf or site", param_hint="TARGET")

    async def work(api: ApiClient) -> None:
        upf, site = (name, None) if what == "upf" else (None, name)
        upfs = await api.provisioning.drain(upf=upf, site=site, drained=drained)
        if settings.output is Output.table:
            headers = ("node id", "site", "admin", "sessions", "association")
            rows = [(v.name, v.spec.get("site"), v.spec.get("admin_state"), v.observed.get("sessions"),
                     v.observed.get("association")) for v in upfs]  # fmt: skip
            typer.echo(columns(headers, rows) if upfs else f"site {name} has no UPF")
        else:
            emit([document(view) for view in upfs], settings.output, documents=True)

    call(settings, work)


TargetArgument = Annotated[str, typer.Argument(metavar="upf|site", help="Drain one UPF, or every UPF of a site.")]
NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The UPF's Node ID, or the site's name.")]


def drain(settings: Settings, target: TargetArgument, name: NameArgument) -> None:
    """Stop placing new sessions on a UPF, or on every UPF of a site (their sessions stay)."""
    _drain(settings, target, name, drained=True)


def undrain(settings: Settings, target: TargetArgument, name: NameArgument) -> None:
    """Let a drained UPF (or every UPF of a site) take new sessions again."""
    _drain(settings, target, name, drained=False)


def register(app: typer.Typer) -> None:
    """Add the provisioning commands to the top-level ``edgecups`` application."""
    for command in (apply, get, describe, delete, drain, undrain):
        app.command(command.__name__, epilog=EXIT_CODES_HELP)(api_command(command))
