"""The change history in the console: the audit page (the filters of
``GET /v2/audit-logs``, parsed by the same code so a bad value gets the API's
message, and its CSV), a service's history and snapshots on its page, and undo
(restore a snapshot, undo a bulk change). Each restore is audited and
snapshotted by the heartbeat service itself, so an undo can be undone."""
from __future__ import annotations

import json
import math

from starlette.datastructures import FormData
from starlette.responses import Response

from medic.audit import ACTION_TYPES
from gateway import history
from gateway.http import HttpError
from gateway.console import forms
from gateway.console.backend import ConsoleError, Part
from gateway.console.pages import _local
from gateway.console.web import SECURITY_HEADERS, Console, View, query, with_query

HB = "HeartbeatService/"
# The audit page's filters, named as the query parameters of GET /v2/audit-logs.
AUDIT_FILTERS = ("service_id", "heartbeat_name", "action_type", "actor", "resource", "resource_id",
                 "execution_id", "bulk_id", "start_date", "end_date", "limit", "offset")
# A service's page: its newest events and snapshots, a page of each at a time.
HISTORY_PAGE = 20


def _pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True) if value not in (None, {}) else ""


def changed_fields(before, after) -> list[tuple[str, str, str]]:
    """(field, before, after) of each field an update changed, for a one-glance summary."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    return [(name, json.dumps(before.get(name)), json.dumps(after.get(name)))
            for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]


def _shown(event) -> dict:
    """An audit event as the API gives it (``event_json``), with what the page adds."""
    entry = history.event_json(event)
    return dict(entry, at=event.at, changed=changed_fields(entry["before"], entry["after"]),
                **{f"{name}_text": _pretty(entry[name]) for name in ("before", "after", "details")})


class ChangePages:
    def __init__(self, console: Console):
        self.c = console

    # --- the audit page -------------------------------------------------------------

    async def _events(self, view: View) -> Part:
        """One page of events for the query string, or why not (the API's 400 message)."""
        try:
            message = history.audit_query(view.request)
        except HttpError as err:
            return Part(error=ConsoleError(err.status, err.message))
        try:
            response = await view.backend.call(HB + "ListAuditEvents", "events", message)
        except ConsoleError as err:
            return Part(error=err)
        return Part(value=(message, response))

    async def audit(self, view: View) -> Response:
        f = {name: query(view.request, name) for name in AUDIT_FILTERS}
        p = {"events": await self._events(view)}
        status = 200
        paging = {}
        if p["events"].ok:
            message, response = p["events"].value
            paging = {"total": response.total_count, "limit": message.limit, "offset": message.offset,
                      "has_more": response.has_more, "pages": max(1, math.ceil(response.total_count / message.limit)),
                      "page_no": message.offset // message.limit + 1,
                      "entries": [_shown(e) for e in response.events]}
        elif p["events"].error.status == 400:
            status = 400
        elif p["events"].error.status == 404:  # an unknown heartbeat_name: the API's 404
            status = 404

        def link(**changes) -> str:
            return with_query("/ui/audit", **{**f, **changes})

        return self.c.render("audit.html", status, view=view, p=p, f=f, paging=paging, link=link,
                             csv=with_query("/ui/audit.csv", **f), action_types=ACTION_TYPES, page="audit")

    async def audit_csv(self, view: View) -> Response:
        part = await self._events(view)
        if not part.ok:
            raise part.error
        message, response = part.value
        csv = history.csv_response([history.event_json(e) for e in response.events], response,
                                   message.limit, message.offset)
        csv.headers.update(SECURITY_HEADERS)
        return csv

    # --- a service's history and snapshots (sections of its page) -------------------------

    def service_loaders(self, view: View, service_id: int) -> dict:
        """The service page's two history sections: one RPC each, paged in the query string."""
        b = view.backend
        events_page = max(1, forms.integer(query(view.request, "history_page"), 1) or 1)
        snapshots_page = max(1, forms.integer(query(view.request, "snapshots_page"), 1) or 1)

        async def events():
            response = await b.call(HB + "ListAuditEvents", "history", service_id=service_id, limit=HISTORY_PAGE,
                                    offset=(events_page - 1) * HISTORY_PAGE)
            return {"entries": [_shown(e) for e in response.events], "total": response.total_count,
                    "has_more": response.has_more, "page_no": events_page}

        async def snapshots():
            response = await b.call(HB + "ListSnapshots", "snapshots", service_id=service_id, limit=HISTORY_PAGE,
                                    offset=(snapshots_page - 1) * HISTORY_PAGE)
            return {"snapshots": [(s, history.snapshot_json(s)) for s in response.snapshots],
                    "total": response.total_count, "has_more": response.has_more, "page_no": snapshots_page}

        return {"history": events(), "snapshots": snapshots()}

    # --- undo -------------------------------------------------------------------------

    async def restore(self, view: View, form: FormData) -> Response:
        snapshot_id = view.request.path_params["snapshot_id"]
        back = _local(form.get("back"), "/ui/audit")
        response, refused = await self.c.attempt(view, back, view.backend.call(
            HB + "RestoreSnapshot", "restore", snapshot_id=snapshot_id))
        if refused:
            return refused
        service = response.service
        if response.recreated:
            back = f"/ui/services/{service.service_id}"
        text = response.message or (f"Restored snapshot #{snapshot_id}: {service.heartbeat_name} is back as it "
                                    f"was before the {response.snapshot.action_type.replace('_', ' ')}.")
        return self.c.redirect(back, view, flash=text)

    async def undo_bulk(self, view: View, form: FormData) -> Response:
        back = _local(form.get("back"), "/ui/services")
        response, refused = await self.c.attempt(view, back, view.backend.call(
            HB + "UndoBulkChange", "undo", bulk_id=view.request.path_params["bulk_id"]))
        if refused:
            return refused
        n = response.restored
        return self.c.redirect(back, view, flash=f"Undid the bulk change: {n} service{'s' if n != 1 else ''} "
                                                 f"put back as they were.",
                               undo=f"/ui/bulk/{response.bulk_id}/undo")