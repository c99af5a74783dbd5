"""The console's pages and actions. Each section of a page is loaded by its own
RPC(s) (at most three), concurrently, so a backend that is down costs only its
sections; filters live in the query string so any view can be shared."""
from __future__ import annotations

import datetime as dt
import math

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.datastructures import FormData
from starlette.responses import Response

from medic import enums
from medic.v1 import delivery_pb2, heartbeat_pb2
from gateway.console import forms, present
from gateway.console.backend import ConsoleError, Part, parts
from gateway.console.web import Console, View, query, with_query

HB = "HeartbeatService/"
ROUTING = "RoutingService/"
DELIVERY = "DeliveryService/"
AUTH = "AuthService/"

PAGE_SIZE = 50
# Job runs on a service's page (the duration chart and the table).
RUNS_SHOWN = 30
# The overview lists the newest active alerts; the alerts page has them all.
OVERVIEW_ALERTS = 50
CONDITIONS = enums.SERVICE_CONDITION.numbers
SORTS = enums.SERVICE_SORT.numbers
BULK_ACTIONS = {"mute": {"muted": True}, "unmute": {"muted": False}, "activate": {"active": True},
                "deactivate": {"active": False}}
MAX_BULK = 500
MAX_CURSOR = 2048


def _ago(seconds: int) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds))
    return ts


class Pages:
    def __init__(self, console: Console, service_sections: tuple = ()):
        self.c = console
        # More sections of a service's page, from other modules: (view, service_id) -> loaders.
        self.service_sections = service_sections

    # --- overview -----------------------------------------------------------------

    async def _overview(self, view: View) -> dict[str, Part]:
        b = view.backend
        return await parts(
            counts=b.call(HB + "SearchServices", "counts", counts_only=True),
            alerts=b.call(HB + "SearchAlerts", "alerts", active=True, limit=OVERVIEW_ALERTS, include_total=True),
            transitions=b.call(HB + "ListRecentTransitions", "transitions", limit=50),
            failures=b.call(DELIVERY + "ListDeliveries", "failures", status=delivery_pb2.DELIVERY_STATUS_FAILED,
                            created_after=_ago(86400), limit=100),
        )

    async def overview(self, view: View) -> Response:
        return self.c.render("overview.html", view=view, p=await self._overview(view), page="overview")

    async def overview_live(self, view: View) -> Response:
        return self.c.render("overview_live.html", view=view, p=await self._overview(view))

    # --- services -----------------------------------------------------------------

    def _service_filters(self, view: View) -> dict[str, str]:
        r = view.request
        return {"q": query(r, "q"), "state": query(r, "state"), "team": query(r, "team"),
                "priority": query(r, "priority"), "active": query(r, "active"),
                "sort": query(r, "sort", "name"), "dir": query(r, "dir", "asc"), "page": query(r, "page", "1"),
                "cursor": query(r, "cursor"), "last": query(r, "last")}

    async def services(self, view: View, register: forms.Form | None = None, status: int = 200) -> Response:
        f = self._service_filters(view)
        page = forms.integer(f["page"], 1)
        page = page if page and page > 0 else 1
        request = {"query": f["q"][:255], "condition": CONDITIONS.get(f["state"], 0), "team": f["team"],
                   "priority": present.PRIORITIES.get(f["priority"], 0),
                   "sort": SORTS.get(f["sort"], heartbeat_pb2.SERVICE_SORT_NAME), "descending": f["dir"] == "desc",
                   "page_size": PAGE_SIZE}
        # Previous, next and last follow cursors (an index read however deep); a
        # page number alone (a shared link) is an offset.
        if f["last"] == "1":
            request["last_page"] = True
        elif f["cursor"]:
            request["cursor"] = f["cursor"][:MAX_CURSOR]
        else:
            request["offset"] = (page - 1) * PAGE_SIZE
        if f["active"] in ("yes", "no"):
            request["active"] = f["active"] == "yes"
        p = await parts(search=view.backend.call(HB + "SearchServices", "services", **request),
                        teams=view.backend.call(ROUTING + "ListTeams", "teams"))
        pages = 1
        if p["search"].ok:
            pages = max(1, math.ceil(p["search"].value.total_matching / PAGE_SIZE))
            if f["last"] == "1":
                page = pages

        def link(**changes) -> str:
            merged = {**f, "cursor": "", "last": "", **changes}
            if merged.get("page") in ("1", 1):
                merged["page"] = ""
            if merged.get("sort") == "name":
                merged["sort"] = ""
            if merged.get("dir") == "asc":
                merged["dir"] = ""
            return with_query("/ui/services", **merged)

        return self.c.render("services.html", status, view=view, p=p, f=f, page_no=page, pages=pages, link=link,
                             register=register or forms.Form(values={"threshold": "1", "grace_period_seconds": "0",
                                                                     "priority": "p3", "notify_mode": "all"}),
                             conditions=list(CONDITIONS), sorts=list(SORTS), page="services",
                             back=view.request.url.path + ("?" + view.request.url.query if view.request.url.query else ""))

    async def register(self, view: View, form: FormData) -> Response:
        typed = forms.typed(form, forms.SERVICE_FIELDS)
        fields = forms.service_fields(typed, required=True)
        if typed.ok:
            try:
                response = await view.backend.call(HB + "RegisterService", "register", **fields)
            except ConsoleError as err:
                if err.status != 400:
                    raise
                typed.error_from_service(err.message)
            else:
                if not response.created:
                    typed.errors["heartbeat_name"] = "Heartbeat is already registered."
                else:
                    return self.c.redirect(f"/ui/services/{response.service.service_id}", view,
                                           flash=f"Registered {response.service.heartbeat_name}.")
        return await self.services(view, register=typed, status=400)

    async def bulk(self, view: View, form: FormData) -> Response:
        """One BulkUpdateServices: all or nothing, one snapshot each under one bulk id,
        so the message comes with an undo of the whole change."""
        back = _local(form.get("back"), "/ui/services")
        action = BULK_ACTIONS.get(str(form.get("action", "")))
        ids = [int(v) for v in form.getlist("ids") if str(v).isdigit()][:MAX_BULK]
        if action is None:
            return self.c.redirect(back, view, flash="Choose what to do with the selected services.", kind="error")
        if not ids:
            return self.c.redirect(back, view, flash="Select at least one service.", kind="error")
        response, refused = await self.c.attempt(view, back, view.backend.call(
            HB + "BulkUpdateServices", "bulk", service_ids=ids, **action))
        if refused:
            return refused
        done = response.changed
        message = f"{str(form.get('action')).capitalize()}d {done} service{'s' if done != 1 else ''}."
        return self.c.redirect(back, view, flash=message, undo=f"/ui/bulk/{response.bulk_id}/undo")

    async def mute(self, view: View, form: FormData) -> Response:
        service_id = view.request.path_params["service_id"]
        muted = str(form.get("muted", "")) == "true"
        response = await view.backend.call(HB + "UpdateService", "mute", service_id=service_id, muted=muted)
        if view.request.headers.get("hx-request"):
            return self.c.render("service_row.html", view=view, s=response.service)
        return self.c.redirect(_local(form.get("back"), "/ui/services"), view,
                               flash=f"{'Muted' if muted else 'Unmuted'} {response.service.heartbeat_name}.")

    # --- one service -------------------------------------------------------------

    async def _service_parts(self, view: View, service_id: int) -> dict[str, Part]:
        b = view.backend
        loaders = dict(
            service=b.call(HB + "GetService", "service", service_id=service_id),
            timeline=b.call(HB + "GetHeartbeatTimeline", "timeline", service_id=service_id,
                            window_seconds=86400, buckets=96),
            transitions=b.call(HB + "ListServiceTransitions", "transitions", service_id=service_id, limit=50),
            alerts=b.call(HB + "SearchAlerts", "alerts", service_id=service_id, limit=50),
            deliveries=b.call(DELIVERY + "ListDeliveries", "deliveries", service_id=service_id, limit=100),
            runs=b.call(HB + "ListJobRuns", "runs", service_id=service_id, limit=RUNS_SHOWN),
            stats=b.call(HB + "GetJobStats", "stats", service_id=service_id),
            skips=b.call(HB + "ListNotificationSkips", "skips", service_id=service_id, limit=50),
        )
        if view.is_admin:
            loaders["targets"] = b.call(ROUTING + "ListNotificationTargets", "targets", service_id=service_id)
            loaders["webhooks"] = b.call(DELIVERY + "ListWebhooksForService", "webhooks", service_id=service_id)
        for sections in self.service_sections:
            loaders.update(sections(view, service_id))
        return await parts(**loaders)

    async def service(self, view: View, settings: forms.Form | None = None, status: int = 200) -> Response:
        service_id = view.request.path_params["service_id"]
        p = await self._service_parts(view, service_id)
        if not p["service"].ok and p["service"].error.status == 404:
            return self.c.render("not_found.html", 404, view=view, what=f"Service {service_id}")
        if settings is None and p["service"].ok:
            s = p["service"].value.service
            settings = forms.Form(values={
                "service_name": s.service_name, "alert_interval_seconds": str(s.alert_interval_seconds),
                "threshold": str(s.threshold), "grace_period_seconds": str(s.grace_period_seconds),
                "team": s.team, "priority": present.PRIORITY_NAMES.get(s.priority, "p3"), "runbook": s.runbook,
                "notify_mode": present.NOTIFY_MODE_NAMES.get(s.notify_mode, "all"),
                "schedule": s.schedule, "timezone": s.timezone,
                "max_duration_seconds": str(s.max_duration_seconds or ""),
                "min_duration_seconds": str(s.min_duration_seconds or ""),
                "failure_tolerance": str(s.failure_tolerance)})
        return self.c.render("service.html", status, view=view, p=p, settings=settings or forms.Form(),
                             service_id=service_id, gateway=str(view.request.base_url).rstrip("/"),
                             grpc_target=f"{view.request.url.hostname}:{self.c.gw.settings.heartbeat_port}",
                             page="services")

    async def service_live(self, view: View) -> Response:
        service_id = view.request.path_params["service_id"]
        p = await parts(service=view.backend.call(HB + "GetService", "service", service_id=service_id))
        return self.c.render("service_live.html", view=view, p=p)

    async def update_service(self, view: View, form: FormData) -> Response:
        service_id = view.request.path_params["service_id"]
        names = tuple(n for n in forms.SERVICE_FIELDS if n != "heartbeat_name") + forms.JOB_FIELDS
        typed = forms.typed(form, names)
        fields = {**forms.service_fields(typed, required=False), **forms.job_fields(typed)}
        if typed.ok:
            try:
                await view.backend.call(HB + "UpdateService", "settings", service_id=service_id, **fields)
            except ConsoleError as err:
                if err.status != 400:
                    raise
                typed.error_from_service(err.message)
            else:
                return self.c.redirect(f"/ui/services/{service_id}", view, flash="Settings saved.")
        return await self.service(view, settings=typed, status=400)

    async def service_action(self, view: View, form: FormData) -> Response:
        """Activate / deactivate / mute / unmute from the service page."""
        service_id = view.request.path_params["service_id"]
        action = BULK_ACTIONS.get(str(form.get("action", "")))
        if action is None:
            raise ConsoleError(400, "Unknown action.")
        await view.backend.call(HB + "UpdateService", "action", service_id=service_id, **action)
        return self.c.redirect(f"/ui/services/{service_id}", view, flash=f"Service {form.get('action')}d.")

    async def mute_with_reason(self, view: View, form: FormData) -> Response:
        """Mute with a reason and an end (a number of hours, or "until it recovers")."""
        service_id = view.request.path_params["service_id"]
        reason = str(form.get("reason", "")).strip()
        hours = str(form.get("for", "recovery"))
        fields: dict = {"service_id": service_id, "reason": reason}
        if hours != "recovery":
            if hours not in MUTE_HOURS:
                raise ConsoleError(400, "Choose how long the mute lasts.")
            until = Timestamp()
            until.FromDatetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=int(hours)))
            fields["until"] = until
        try:
            await view.backend.call(HB + "MuteService", "mute", **fields)
        except ConsoleError as err:
            if err.status != 400:
                raise
            return self.c.redirect(f"/ui/services/{service_id}", view, flash=err.message, kind="error")
        ends = "until it recovers" if hours == "recovery" else f"for {hours} h"
        return self.c.redirect(f"/ui/services/{service_id}", view, flash=f"Muted {ends}.")

    async def acknowledge(self, view: View, form: FormData) -> Response:
        alert_id = view.request.path_params["alert_id"]
        back = _local(form.get("back"), "/ui/alerts")
        try:
            await view.backend.call(HB + "AcknowledgeAlert", "ack", alert_id=alert_id)
        except ConsoleError as err:
            if err.status not in (400, 404):
                raise
            return self.c.redirect(back, view, flash=err.message, kind="error")
        return self.c.redirect(back, view, flash=f"Alert #{alert_id} acknowledged: no more reminders.")

    # --- maintenance windows ----------------------------------------------------------

    async def windows(self, view: View, typed: forms.Form | None = None, status: int = 200) -> Response:
        active_only = query(view.request, "open") == "1"
        p = await parts(windows=view.backend.call(HB + "ListMaintenanceWindows", "windows",
                                                  active_only=active_only))
        typed = typed or forms.Form(values={"scope": "service", "kind": "one_off", "timezone": "UTC",
                                            "duration_minutes": "60"})
        return self.c.render("windows.html", status, view=view, p=p, form=typed, active_only=active_only,
                             page="windows", scopes=WINDOW_SCOPES)

    async def create_window(self, view: View, form: FormData) -> Response:
        typed = forms.typed(form, WINDOW_FIELDS)
        values = typed.values
        spec: dict = {"scope": WINDOW_SCOPES.get(values["scope"], 0), "reason": values["reason"].strip(),
                      "announce": values["announce"] == "on"}
        try:
            if values["scope"] == "service":
                spec["service_id"] = await self._service_by_name(view, values["service"].strip(), "windows")
            elif values["scope"] == "team":
                spec["team"] = values["team"]
            elif values["scope"] == "glob":
                spec["name_glob"] = values["name_glob"]
            if values["kind"] == "recurring":
                spec["cron"] = values["cron"]
                spec["timezone"] = values["timezone"]
                minutes = forms.integer(values["duration_minutes"])
                if minutes is None:
                    typed.errors["duration_minutes"] = "Whole minutes, e.g. 60."
                else:
                    spec["duration_seconds"] = minutes * 60
            else:
                for name in ("starts_at", "ends_at"):
                    when = _utc_input(values[name])
                    if when is None:
                        typed.errors[name] = "A date and time (UTC), e.g. 2027-01-31 22:00."
                    else:
                        spec[name] = when
            if typed.ok:
                await view.backend.call(HB + "CreateMaintenanceWindow", "windows",
                                        window=heartbeat_pb2.MaintenanceWindowSpec(**spec))
        except ConsoleError as err:
            if err.status not in (400, 404):
                raise
            typed.error_from_service(err.message.removeprefix("window."))
        if not typed.ok:
            return await self.windows(view, typed, status=400)
        return self.c.redirect("/ui/windows", view, flash="Maintenance window created.")

    async def delete_window(self, view: View, form: FormData) -> Response:
        window_id = view.request.path_params["window_id"]
        await view.backend.call(HB + "DeleteMaintenanceWindow", "windows", window_id=window_id)
        return self.c.redirect("/ui/windows", view, flash=f"Maintenance window {window_id} deleted.")

    # --- alerts and deliveries ------------------------------------------------------

    async def _service_by_name(self, view: View, name: str, section: str) -> int:
        """A service id from a heartbeat name or id typed in a filter; 0: none given."""
        if not name:
            return 0
        if name.isdigit():
            return int(name)
        response = await view.backend.call(HB + "GetService", section, heartbeat_name=name)
        return response.service.service_id

    async def alerts(self, view: View) -> Response:
        r = view.request
        f = {"status": query(r, "status", "any"), "service": query(r, "service"), "team": query(r, "team"),
             "reason": query(r, "reason")}

        async def load():
            service_id = await self._service_by_name(view, f["service"], "alerts")
            request = {"service_id": service_id, "team": f["team"], "reason": present.REASONS.get(f["reason"], 0),
                       "limit": 200}
            if f["status"] in ("active", "closed"):
                request["active"] = f["status"] == "active"
            return await view.backend.call(HB + "SearchAlerts", "alerts", **request)

        return self.c.render("alerts.html", view=view, p=await parts(alerts=load()), f=f, page="alerts")

    async def deliveries(self, view: View) -> Response:
        r = view.request
        f = {"status": query(r, "status"), "type": query(r, "type"), "service": query(r, "service"),
             "alert": query(r, "alert")}

        async def load():
            service_id = await self._service_by_name(view, f["service"], "deliveries")
            alert_id = forms.integer(f["alert"]) or 0
            return await view.backend.call(
                DELIVERY + "ListDeliveries", "deliveries", service_id=service_id, alert_id=alert_id,
                status=present.DELIVERY_STATUSES.get(f["status"], 0), type=present.TARGET_TYPES.get(f["type"], 0),
                limit=200)

        loaders = {"deliveries": load()}
        alert_id = forms.integer(f["alert"]) or 0
        if alert_id:  # what was not sent for this alert, and why
            loaders["skips"] = view.backend.call(HB + "ListNotificationSkips", "skips", alert_id=alert_id)
            loaders["target_skips"] = view.backend.call(ROUTING + "ListTargetSkips", "skips", alert_id=alert_id)
        return self.c.render("deliveries.html", view=view, p=await parts(**loaders), f=f,
                             page="deliveries",
                             back=r.url.path + ("?" + r.url.query if r.url.query else ""))

    async def retry(self, view: View, form: FormData) -> Response:
        delivery_id = view.request.path_params["delivery_id"]
        try:
            await view.backend.call(DELIVERY + "RetryDelivery", "retry", delivery_id=delivery_id)
        except ConsoleError as err:
            if err.status not in (400, 404):
                raise
            return self.c.redirect(_local(form.get("back"), "/ui/deliveries"), view, flash=err.message, kind="error")
        return self.c.redirect(_local(form.get("back"), "/ui/deliveries"), view,
                               flash=f"Delivery {delivery_id} queued again.")

    # --- admin ---------------------------------------------------------------------

    async def admin(self, view: View, status: int = 200, forms_: dict | None = None, shown: dict | None = None
                    ) -> Response:
        if not view.is_admin:
            raise ConsoleError(403, "The admin pages need a key with the admin scope.")
        b = view.backend
        p = await parts(teams=b.call(ROUTING + "ListTeams", "teams"),
                        targets=b.call(ROUTING + "ListNotificationTargets", "targets"),
                        webhooks=b.call(DELIVERY + "ListWebhooks", "webhooks"),
                        api_keys=b.call(AUTH + "ListApiKeys", "keys"))
        forms_ = forms_ or {}
        for name in ("team", "target", "webhook", "key"):
            forms_.setdefault(name, forms.Form())
        forms_["key"].values.setdefault("scope", "read")
        forms_["target"].values.setdefault("type", "slack")
        return self.c.render("admin.html", status, view=view, p=p, forms=forms_, shown=shown or {}, page="admin")

    async def _admin_form(self, view: View, kind: str, typed: forms.Form, call) -> Response | None:
        """Runs ``call``; a 400 goes beside the form's fields and re-renders the page."""
        try:
            return await call()
        except ConsoleError as err:
            if err.status != 400:
                raise
            typed.error_from_service(err.message)
            return await self.admin(view, 400, {kind: typed})

    async def create_team(self, view: View, form: FormData) -> Response:
        typed = forms.typed(form, ("name", "slack_channel_id"))

        async def call():
            r = await view.backend.call(ROUTING + "CreateTeam", "team", name=typed.values["name"].strip(),
                                        slack_channel_id=typed.values["slack_channel_id"].strip())
            return self.c.redirect("/ui/admin#teams", view, flash=f"Team {r.team.name} created.")
        return await self._admin_form(view, "team", typed, call)

    async def delete_team(self, view: View, form: FormData) -> Response:
        await view.backend.call(ROUTING + "DeleteTeam", "team", team_id=view.request.path_params["team_id"])
        return self.c.redirect("/ui/admin#teams", view, flash="Team deleted.")

    async def create_target(self, view: View, form: FormData) -> Response:
        typed = forms.typed(form, ("service_id", "type", "destination", "priority"))
        kind = typed.values["type"]
        service_id = forms.integer(typed.values["service_id"], 0)
        priority = forms.integer(typed.values["priority"], 0)
        if service_id is None or service_id < 1:
            typed.errors["service_id"] = "service_id must be a service id"
        if priority is None:
            typed.errors["priority"] = "priority must be a whole number"
        if kind not in present.TARGET_TYPES:
            typed.errors["type"] = "type must be one of slack, pagerduty, webhook"
        if not typed.ok:
            return await self.admin(view, 400, {"target": typed})
        key = {"slack": "channel_id", "pagerduty": "routing_key", "webhook": "url"}[kind]
        config = struct_pb2.Struct()
        config.update({key: typed.values["destination"].strip()})

        async def call():
            r = await view.backend.call(ROUTING + "CreateNotificationTarget", "target", service_id=service_id,
                                        type=present.TARGET_TYPES[kind], config=config, priority=priority)
            return self.c.redirect("/ui/admin#targets", view, flash=f"Target {r.target.target_id} created.")
        return await self._admin_form(view, "target", typed, call)

    async def delete_target(self, view: View, form: FormData) -> Response:
        await view.backend.call(ROUTING + "DeleteNotificationTarget", "target",
                                target_id=view.request.path_params["target_id"])
        return self.c.redirect("/ui/admin#targets", view, flash="Notification target deleted.")

    async def create_webhook(self, view: View, form: FormData) -> Response:
        typed = forms.typed(form, ("url", "service_id"))
        service_id = forms.integer(typed.values["service_id"], 0)
        if service_id is None or service_id < 0:
            typed.errors["service_id"] = "service_id must be a service id (empty: every service)"
            return await self.admin(view, 400, {"webhook": typed})
        fields = {"url": typed.values["url"].strip()}
        if service_id:
            fields["service_id"] = service_id

        async def call():
            r = await view.backend.call(DELIVERY + "CreateWebhook", "webhook", **fields)
            return await self.admin(view, 201, shown={"webhook": (r.webhook, r.secret)})
        return await self._admin_form(view, "webhook", typed, call)

    async def delete_webhook(self, view: View, form: FormData) -> Response:
        await view.backend.call(DELIVERY + "DeleteWebhook", "webhook", webhook_id=view.request.path_params["webhook_id"])
        return self.c.redirect("/ui/admin#webhooks", view, flash="Webhook deleted.")

    async def create_key(self, view: View, form: FormData) -> Response:
        typed = forms.typed(form, ("name", "scope", "expires_days"))
        scope = typed.values["scope"]
        days = forms.integer(typed.values["expires_days"], 0)
        if scope not in present.SCOPES:
            typed.errors["scope"] = "scope must be one of read, write, admin"
        if days is None or days < 0:
            typed.errors["expires_days"] = "expires_days must be a whole number of days (empty: never)"
        if not typed.ok:
            return await self.admin(view, 400, {"key": typed})
        scopes = [present.SCOPES["read"], present.SCOPES["write"]] if scope == "write" else [present.SCOPES[scope]]
        fields = {"name": typed.values["name"].strip(), "scopes": scopes}
        if days:
            expires = Timestamp()
            expires.FromDatetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days))
            fields["expires_at"] = expires

        async def call():
            r = await view.backend.call(AUTH + "CreateApiKey", "key", **fields)
            return await self.admin(view, 201, shown={"key": (r.api_key, r.key)})
        return await self._admin_form(view, "key", typed, call)

    async def revoke_key(self, view: View, form: FormData) -> Response:
        key_id = view.request.path_params["key_id"]
        await view.backend.call(AUTH + "RevokeApiKey", "key", key_id=key_id)
        self.c.revoked_here.add(key_id)
        return self.c.redirect("/ui/admin#keys", view, flash=f"Key {key_id} revoked.")

    async def key_limits(self, view: View, form: FormData) -> Response:
        key_id = view.request.path_params["key_id"]
        limits = {}
        for name in ("heartbeat_per_minute", "management_per_minute"):
            value = forms.integer(str(form.get(name, "")), -1)
            if value is None:
                return self.c.redirect("/ui/admin#keys", view, flash=f"{name} must be a whole number.", kind="error")
            if value >= 0:
                limits[name] = value
        from medic.v1 import auth_pb2
        try:
            await view.backend.call(AUTH + "SetRateLimits", "key", key_id=key_id,
                                    rate_limits=auth_pb2.RateLimitOverrides(**limits))
        except ConsoleError as err:
            if err.status != 400:
                raise
            return self.c.redirect("/ui/admin#keys", view, flash=err.message, kind="error")
        return self.c.redirect("/ui/admin#keys", view, flash=f"Rate limits of {key_id} saved.")


WINDOW_SCOPES = enums.WINDOW_SCOPE.numbers
WINDOW_FIELDS = ("scope", "service", "team", "name_glob", "kind", "starts_at", "ends_at", "cron",
                 "duration_minutes", "timezone", "reason", "announce")
MUTE_HOURS = ("1", "4", "8", "24")


def _utc_input(raw: str) -> Timestamp | None:
    """A time typed as UTC ("2027-01-31 22:00", or a datetime-local "2027-01-31T22:00")."""
    try:
        when = dt.datetime.fromisoformat(raw.strip().replace(" ", "T"))
    except ValueError:
        return None
    ts = Timestamp()
    ts.FromDatetime(when.replace(tzinfo=when.tzinfo or dt.timezone.utc))
    return ts


def _local(target, default: str) -> str:
    """A redirect target only within the console (never another site)."""
    target = str(target or "")
    if target.startswith("/ui") and not target.startswith("//"):
        return target
    return default
