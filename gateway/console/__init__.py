"""The web console: server-rendered pages under ``/ui``, served by the gateway.

Like ``/v2`` it is an HTTP edge over the services' RPCs: no SQL and no domain
rule here. Pages are Jinja2 templates; the only JavaScript is htmx (vendored,
checksum-pinned, see ``static/VENDORED.md``) and a small script of our own
that shows times in the browser's zone and keeps countdowns live.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from medic.errors import MedicError
from gateway.console.backend import ConsoleError, from_medic_error
from gateway.console.changes import ChangePages
from gateway.console.pages import Pages, _local
from gateway.console.playbooks import RemediationPages
from gateway.console.session import (COOKIE_PATH, LOGIN_COOKIE, LOGIN_FORM_SECONDS, SESSION_COOKIE,
                                     SESSION_SECONDS, same_token)
from gateway.console.web import SECURITY_HEADERS, Console, client_ip, read_form

STATIC = Path(__file__).parent / "static"


def routes(gw) -> list[BaseRoute]:
    console = Console(gw)
    changes = ChangePages(console)
    remediation = RemediationPages(console)
    pages = Pages(console, service_sections=(changes.service_loaders,))
    page, action = console.page, console.action

    async def root(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    async def login_form(request: Request, message: str = "", status: int = 200, key_error: str = "") -> Response:
        token, cookie = console.codec.new_login_token()
        ended = request.query_params.get("ended") == "1"
        response = console.render("login.html", status, None, login_csrf=token, message=message,
                                   key_error=key_error, ended=ended,
                                   next=_local(request.query_params.get("next"), "/ui/"))
        console.set_cookie(response, request, LOGIN_COOKIE, cookie, LOGIN_FORM_SECONDS)
        return response

    async def login(request: Request) -> Response:
        form = await read_form(request)
        if form is None or not same_token(console.codec.login_token(request.cookies.get(LOGIN_COOKIE)),
                                          form.get("csrf")):
            return await login_form(request, "The sign-in form expired or did not come from the console; "
                                             "try again.", 403)
        key = str(form.get("key", "")).strip()
        if not key:
            return await login_form(request, status=400, key_error="Paste an API key.")
        try:
            await gw.authorizer.authorize(console.entry_policy, {"authorization": f"Bearer {key}"},
                                          client_ip(request))
        except MedicError as err:
            error = from_medic_error(err)
            if error.status == 401:
                return await login_form(request, status=401, key_error=f"Not accepted: {error.message}.")
            if error.status == 403:
                return await login_form(request, status=403,
                                        key_error="This key lacks the read scope the console needs.")
            return await login_form(request, f"Cannot sign in now: {error.message}", error.status)
        from medic.authz import parse_key
        if parse_key(key) in console.revoked_here:  # revoked here; the cache may not know yet
            return await login_form(request, status=401, key_error="Not accepted: API key revoked.")
        _, cookie = console.codec.new_session(key)
        response = RedirectResponse(_local(form.get("next"), "/ui/"), status_code=303)
        response.headers.update(SECURITY_HEADERS)
        console.set_cookie(response, request, SESSION_COOKIE, cookie, SESSION_SECONDS)
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        return response

    async def logout(view, form) -> Response:
        response = RedirectResponse("/ui/login?" + urlencode({"signed_out": "1"}), status_code=303)
        response.headers.update(SECURITY_HEADERS)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    async def login_page(request: Request) -> Response:
        message = "You are signed out." if request.query_params.get("signed_out") == "1" else ""
        return await login_form(request, message)

    async def not_found(request: Request) -> Response:
        return console.render("not_found.html", 404, None, what=request.url.path)

    ui = [
        Route("/", page(pages.overview), methods=["GET"]),
        Route("/live", page(pages.overview_live), methods=["GET"]),
        Route("/login", console.measured("login_page", login_page), methods=["GET"]),
        Route("/login", console.measured("login", login), methods=["POST"]),
        Route("/logout", action(logout), methods=["POST"]),
        Route("/services", page(pages.services), methods=["GET"]),
        Route("/services", action(pages.register), methods=["POST"]),
        Route("/services/bulk", action(pages.bulk), methods=["POST"]),
        Route("/services/{service_id:int}", page(pages.service), methods=["GET"]),
        Route("/services/{service_id:int}", action(pages.update_service), methods=["POST"]),
        Route("/services/{service_id:int}/live", page(pages.service_live), methods=["GET"]),
        Route("/services/{service_id:int}/mute", action(pages.mute), methods=["POST"]),
        Route("/services/{service_id:int}/action", action(pages.service_action), methods=["POST"]),
        Route("/alerts", page(pages.alerts), methods=["GET"]),
        Route("/alerts/{alert_id:int}/ack", action(pages.acknowledge), methods=["POST"]),
        Route("/services/{service_id:int}/quiet", action(pages.mute_with_reason), methods=["POST"]),
        Route("/windows", page(pages.windows), methods=["GET"]),
        Route("/windows", action(pages.create_window), methods=["POST"]),
        Route("/windows/{window_id:int}/delete", action(pages.delete_window), methods=["POST"]),
        Route("/deliveries", page(pages.deliveries), methods=["GET"]),
        Route("/deliveries/{delivery_id:int}/retry", action(pages.retry), methods=["POST"]),
        Route("/admin", page(pages.admin), methods=["GET"]),
        Route("/admin/teams", action(pages.create_team), methods=["POST"]),
        Route("/admin/teams/{team_id:int}/delete", action(pages.delete_team), methods=["POST"]),
        Route("/admin/targets", action(pages.create_target), methods=["POST"]),
        Route("/admin/targets/{target_id:int}/delete", action(pages.delete_target), methods=["POST"]),
        Route("/admin/webhooks", action(pages.create_webhook), methods=["POST"]),
        Route("/admin/webhooks/{webhook_id:int}/delete", action(pages.delete_webhook), methods=["POST"]),
        Route("/admin/keys", action(pages.create_key), methods=["POST"]),
        Route("/admin/keys/{key_id}/revoke", action(pages.revoke_key), methods=["POST"]),
        Route("/admin/keys/{key_id}/limits", action(pages.key_limits), methods=["POST"]),
        Route("/audit", page(changes.audit), methods=["GET"]),
        Route("/audit.csv", page(changes.audit_csv), methods=["GET"]),
        Route("/snapshots/{snapshot_id:int}/restore", action(changes.restore), methods=["POST"]),
        Route("/bulk/{bulk_id}/undo", action(changes.undo_bulk), methods=["POST"]),
        Route("/playbooks", page(remediation.playbooks), methods=["GET"]),
        Route("/playbooks", action(remediation.apply), methods=["POST"]),
        Route("/playbooks/{playbook_id:int}/execute",
              action(remediation.execute, counted_as="RemediationService/ExecutePlaybook"), methods=["POST"]),
        Route("/executions", page(remediation.executions), methods=["GET"]),
        Route("/executions/live", page(remediation.executions_live), methods=["GET"]),
        Route("/executions/{execution_id:int}", page(remediation.execution), methods=["GET"]),
        Route("/executions/{execution_id:int}/live", page(remediation.execution_live), methods=["GET"]),
        Route("/executions/{execution_id:int}/{decision}", action(remediation.decide), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="console-static"),
        Route("/{path:path}", not_found, methods=["GET", "POST", "HEAD"]),
    ]
    return [Route("/", root, methods=["GET", "HEAD"]), Route("/ui", root, methods=["GET", "HEAD"]),
            Mount("/ui", routes=ui)]


__all__ = ["routes", "ConsoleError"]
