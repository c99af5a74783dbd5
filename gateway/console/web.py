"""The console's request plumbing: session, CSRF, authorization, rendering.

Every console page goes through ``Console.page`` (GET) or ``Console.action``
(POST). Both open the session cookie, authorize the key at the edge (through
the gateway's authorizer and its cache, so a revoked key is refused on its next
request and its cookie dropped), and give the handler a ``Backend`` that makes
RPCs as that key. A page counts as one request of the console rate-limit class,
an action as one management request, or one of the class of the RPC it stands
for where that RPC has its own (running a playbook): what the API call would
cost. ``action`` also checks the form's CSRF token before anything else.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from medic import contracts
from medic.authz import parse_key
from medic.errors import MedicError
from medic.logs import REQUEST_ID_HEADER, clean_request_id, request_id_var
from medic.v1 import options_pb2
from gateway.console import present
from gateway.console.backend import ENTRY_RPC, Backend, CallLog, ConsoleError, from_medic_error
from gateway.console.session import (COOKIE_PATH, FLASH_COOKIE, SESSION_COOKIE, CookieCodec, Session,
                                     same_token)

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
# Only this origin's scripts, styles and images; nothing inline but SVG markup.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
                    "Cache-Control": "no-store"}
SIGNED_OUT_MESSAGE = "Your session ended: the key was revoked or expired, or no longer has the read scope."
MAX_FORM_BYTES = 65536


@dataclass
class View:
    """What a handler gets: the request, its session and the backend acting for it."""
    request: Request
    session: Session
    backend: Backend
    flash: tuple[str, str, str] | None = None  # message, kind ("ok", "error"), undo path
    cookies: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def can_write(self) -> bool:
        return self.backend.allowed("write")

    @property
    def is_admin(self) -> bool:
        return self.backend.allowed("admin")


class Console:
    def __init__(self, gw):
        self.gw = gw
        self.codec = CookieCodec(gw.settings.service_token or None)
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                      trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
        present.install(self.env)
        self.entry_policy = contracts.policy_for(ENTRY_RPC)  # sign-in and actions: management
        self.page_policy = dataclasses.replace(self.entry_policy,
                                               rate_limit_class=options_pb2.RATE_LIMIT_CLASS_CONSOLE)
        # Keys revoked through this console: their sessions end at once, without
        # waiting for the authorization cache entry to expire.
        self.revoked_here: set[str] = set()

    # --- rendering --------------------------------------------------------------

    def render(self, template: str, status: int = 200, view: View | None = None, **context) -> HTMLResponse:
        context.setdefault("page", "")
        html = self.env.get_template(template).render(view=view, csrf=view.session.csrf if view else "",
                                                      flash=view.flash if view else None, **context)
        response = HTMLResponse(html, status_code=status)
        self._finish(response, view)
        return response

    def _finish(self, response: Response, view: View | None) -> None:
        response.headers.update(SECURITY_HEADERS)
        if view is not None:
            if view.flash is not None:
                response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
            response.headers["Server-Timing"] = view.backend.log.header()

    def redirect(self, url: str, view: View | None = None, *, flash: str = "", kind: str = "ok",
                 undo: str = "") -> Response:
        response = RedirectResponse(url, status_code=303)
        response.headers.update(SECURITY_HEADERS)
        if flash:
            self.set_cookie(response, view.request if view else None, FLASH_COOKIE,
                            self.codec.flash(flash, kind, undo), 60)
        return response

    async def attempt(self, view: View, back: str, call: Awaitable, refusals: tuple[int, ...] = (400, 404)
                      ) -> tuple[Any, Response | None]:
        """(the RPC's answer, None), or (None, a redirect to ``back`` with the refusal as its
        message) when the service refuses with one of ``refusals``; other errors propagate."""
        try:
            return await call, None
        except ConsoleError as err:
            if err.status not in refusals:
                raise
            return None, self.redirect(back, view, flash=err.message, kind="error")

    @staticmethod
    def secure(request: Request | None) -> bool:
        if request is None:
            return False
        return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"

    def set_cookie(self, response: Response, request: Request | None, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True,
                            samesite="strict", secure=self.secure(request))

    # --- authorization ----------------------------------------------------------

    async def open_view(self, request: Request, policy: contracts.MethodPolicy) -> View | Response:
        """The request's View, or a response that ends it (to the login page)."""
        session = self.codec.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return self.to_login(request)
        if parse_key(session.key) in self.revoked_here:
            return self.to_login(request, SIGNED_OUT_MESSAGE, end_session=True)
        try:
            decision = await self.gw.authorizer.authorize(
                policy, {"authorization": f"Bearer {session.key}"}, client_ip(request))
        except MedicError as err:
            error = from_medic_error(err)
            if error.status in (401, 403):
                return self.to_login(request, SIGNED_OUT_MESSAGE, end_session=True)
            return self.error_page(error, None)
        backend = Backend(self.gw, decision.identity, decision.metadata, CallLog())
        flash = self.codec.read_flash(request.cookies.get(FLASH_COOKIE))
        return View(request=request, session=session, backend=backend, flash=flash)

    def to_login(self, request: Request, message: str = "", end_session: bool = False) -> Response:
        query = {"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
        if message:
            query["ended"] = "1"
        if request.headers.get("hx-request"):
            # A partial refresh cannot follow a redirect to a whole page: ask htmx to.
            response = Response(status_code=204, headers={"HX-Redirect": "/ui/login?" + urlencode(query)})
        else:
            response = RedirectResponse("/ui/login?" + urlencode(query), status_code=303)
        response.headers.update(SECURITY_HEADERS)
        if end_session:
            response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    def error_page(self, error: ConsoleError, view: View | None) -> HTMLResponse:
        return self.render("error.html", error.status if error.status >= 400 else 500, view, error=error)

    # --- handler wrappers -------------------------------------------------------

    def page(self, handler: Callable[[View], Awaitable[Response]]):
        return self.measured(handler.__name__, lambda request: self._serve(request, handler, self.page_policy,
                                                                           check_csrf=False))

    def action(self, handler: Callable[[View, FormData], Awaitable[Response]], counted_as: str = ""):
        """A POST: the CSRF token is checked before the handler sees the form. ``counted_as``: the
        RPC ("RemediationService/ExecutePlaybook") whose rate-limit class the form counts in, as
        its API route does, instead of management."""
        policy = self.entry_policy
        if counted_as:
            policy = dataclasses.replace(policy, rate_limit_class=contracts.policy_for(
                "/medic.v1." + counted_as).rate_limit_class)
        return self.measured(handler.__name__, lambda request: self._serve(request, handler, policy,
                                                                           check_csrf=True))

    @staticmethod
    def measured(name: str, serve: Callable[[Request], Awaitable[Response]]):
        """Counts and times the endpoint in the gateway's HTTP metrics (route ``/ui:<name>``)."""
        from gateway.app import latency_of, requests_of  # the app imports this package

        route = f"/ui:{name}"

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            response = await serve(request)
            requests_of(route, request.method, str(response.status_code)).inc()
            latency_of(route, request.method).observe(time.perf_counter() - started)
            return response
        return endpoint

    async def _serve(self, request: Request, handler, policy: contracts.MethodPolicy, check_csrf: bool) -> Response:
        token = request_id_var.set(clean_request_id(request.headers.get(REQUEST_ID_HEADER)))
        view: View | None = None
        try:
            form = None
            if check_csrf:
                form = await read_form(request)
                if form is None:
                    return self.render("error.html", 413, None,
                                       error=ConsoleError(413, "The form is too large."))
            opened = await self.open_view(request, policy)
            if not isinstance(opened, View):
                return opened
            view = opened
            if check_csrf:
                presented = form.get("csrf") or request.headers.get("x-csrf-token")
                if not same_token(view.session.csrf, presented):
                    return self.error_page(ConsoleError(
                        403, "This form is out of date or did not come from the console (CSRF token "
                             "missing or wrong). Reload the page and try again."), view)
                response = await handler(view, form)
            else:
                response = await handler(view)
            return response
        except ConsoleError as err:
            if err.signed_out:
                return self.to_login(request, SIGNED_OUT_MESSAGE, end_session=True)
            return self.error_page(err, view)
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.url.path)
            return self.error_page(ConsoleError(500, "Something failed on the gateway; it is logged."), view)
        finally:
            request_id_var.reset(token)


async def read_form(request: Request) -> FormData | None:
    """The urlencoded form, or None when it is larger than MAX_FORM_BYTES."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_FORM_BYTES:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    from urllib.parse import parse_qsl
    return FormData(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def query(request: Request, name: str, default: str = "") -> str:
    return request.query_params.get(name, default).strip()


def with_query(path: str, **params: Any) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    return path + ("?" + urlencode(clean, doseq=True) if clean else "")
