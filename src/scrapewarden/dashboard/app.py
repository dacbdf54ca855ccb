"""The dashboard app: ``create_app(warden or state URL)`` gives a Starlette ASGI app.

Pages (server-rendered Jinja2, autoescaped; htmx for the small live parts):

=================  ==========  ===============================================================
path               role        what
=================  ==========  ===============================================================
/login, /logout    anyone      sign in (rate-limited by the engine) and out
/                  viewer      overview: requests/s, decisions by action over time, top actors,
                               active campaigns, records protected vs exposed, solve rate
/actors            viewer      search an actor; its timeline with every reason; ban, allow or lift
/bans              viewer      list, filter, export; operator allows in force; add and lift need analyst
/users             admin       users and roles
/incidents         viewer      evidence, people, assessment, drafts, letters; changes and export: analyst
/policy            viewer      policy in force, versions, replay of a draft; editing needs admin
/audit             viewer      the audit log with its verification status
/api/...           see api.py  JSON, bearer tokens or session; /api/openapi.json describes it
=================  ==========  ===============================================================
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..core.policy import Policy
from ..state.base import ROLES, StateStore
from ..warden import Warden
from . import accounts, allows_view, audit_view, charts, incidents_view, policy_view, sessions, views
from .bans import EXPORT_FORMATS, TTL_CHOICES, BanInputError, check_target, export, order_from_form
from .live_metrics import LiveRates, sources_for
from .login_guard import LoginBudget, LoginGuard
from .policy_reload import PolicyFollower, follow_policy
from .rate_sampler import DEFAULT_INTERVAL, RateSampler
from .rates_view import rates_context, rates_routes
from .sessions import COOKIE, DEFAULT_MAX_AGE, Session, SessionCodec, stored_key
from .web import SecurityHeaders, Visit, bearer_visit, client_address, page, safe_next

STATIC = Path(__file__).parent / "static"
HOURS_CHOICES = (1, 6, 24, 168)
FIRST_ADMIN_HINT = "scrapewarden users add NAME --role admin --state URL"


class Dashboard:
    """What every request handler needs: the store, the Warden's pseudonyms, sessions, templates."""

    def __init__(
        self,
        warden: Warden,
        *,
        secure_cookies: bool | None = None,
        session_seconds: int = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.time,
        login_budget: LoginBudget | None = None,
        owns_warden: bool = False,
        policy_path: Path | None = None,
        live: LiveRates | None = None,
        access_logs: Sequence[Path] = (),
        rate_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.warden = warden
        self.live = live or LiveRates([])
        """Where the Overview's requests per second come from (``live_metrics``)."""
        self.sampler = RateSampler(self.live, interval=rate_interval)
        """Reads them every ``rate_interval`` seconds while the app runs (``rate_sampler``)."""
        self.access_logs: tuple[Path, ...] = tuple(access_logs)
        """Access logs the Policy page may replay a draft over (``--access-log``)."""
        self.policy_path = policy_path
        """The policy file given (``--policy``): shown on the Policy page, and where publishing writes."""
        self.policy_follower = PolicyFollower(policy_path)
        """Reloads the Warden's policy when that file changes (``policy_reload``)."""
        self.store: StateStore = warden.store
        self.clock = clock
        self.secure_cookies = secure_cookies
        self.codec = SessionCodec(stored_key(self.store), max_age=session_seconds)
        self.guard = LoginGuard(
            login_budget,
            network=warden.policy.network,
            clock=clock,
            shared=self.store,
            name=warden.pseudonymizer.generic,
        )
        self.owns_warden = owns_warden
        self.templates = Environment(
            loader=PackageLoader("scrapewarden.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["when"] = _when
        self.templates.filters["sha256"] = policy_view.sha256
        self.templates.filters["ago"] = lambda ts: _ago(ts, self.clock())
        self.templates.filters["until"] = lambda ban: _until(ban, self.clock())

    # -- who is asking -----------------------------------------------------------------------

    def visit(self, request: Request) -> Visit:
        follow_policy(self)
        now = self.clock()
        session = self.codec.load(request.cookies.get(COOKIE), now=now)
        if session is None:
            return Visit(self.codec.new(now=now), None, fresh=True)
        user = None
        if session.user is not None:
            user = self.store.get_user(session.user)
            if (
                user is None
                or user.password_changed != session.password_changed
                or sessions.revoked(self.store, session, now=now)
            ):
                # Removed, the password changed, logged out or ended by an admin: it is over.
                return Visit(self.codec.new(now=now), None, fresh=True)
        return Visit(session, user)

    def api_visit(self, request: Request) -> Visit | None:
        now = self.clock()
        if request.headers.get("authorization"):
            follow_policy(self)
            return bearer_visit(self, request, now)
        visit = self.visit(request)
        return None if visit.fresh else visit

    def set_cookie(self, request: Request, response: Response, session: Session) -> None:
        secure = self.secure_cookies if self.secure_cookies is not None else request.url.scheme == "https"
        response.set_cookie(
            COOKIE,
            self.codec.dump(session),
            max_age=self.codec.max_age,
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )

    # -- rendering ---------------------------------------------------------------------------

    def render(
        self, request: Request, visit: Visit, name: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        template = self.templates.get_template(name)
        html = template.render(
            user=visit.user,
            csrf=self.codec.csrf_token(visit.session),
            path=request.url.path,
            can=lambda role: visit.user is not None and accounts.allows(visit.user.role, role),
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def error(self, request: Request, visit: Visit, status: int, message: str) -> HTMLResponse:
        return self.render(request, visit, "error.html", status=status, status_code=status, message=message)

    def close(self) -> None:
        self.sampler.stop()
        self.guard.close()
        if self.owns_warden:
            self.warden.close()


# -- login and logout ---------------------------------------------------------------------------


@page(None)
def login_page(request: Request, visit: Visit) -> Response:
    dash: Dashboard = request.app.state.dashboard
    target = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if visit.user is not None:
            return RedirectResponse(target, status_code=303)
        return _login_form(dash, request, visit, target)
    name = visit.form.get("name", "").strip()
    password = visit.form.get("password", "")
    target = safe_next(visit.form.get("next"))
    decision = dash.guard.check(peer=client_address(request), name=name, headers=request.headers.raw)
    if dash.guard.refused(decision):
        response = _login_form(
            dash, request, visit, target, status=429, error="Too many attempts. Wait a minute and try again."
        )
        response.headers["retry-after"] = str(decision.retry_after or 60)
        return response
    user = dash.store.get_user(name) if accounts.USER_NAME.fullmatch(name) else None
    if not accounts.verify_password(user, password) or user is None:
        return _login_form(dash, request, visit, target, status=401, error="Wrong user name or password.")
    now = dash.clock()
    if accounts.needs_rehash(user):
        accounts.set_password(dash.store, user.name, password, now=user.password_changed)
        user = dash.store.get_user(user.name) or user
    # A new session id at login: a session id planted before login is worth nothing after.
    visit.session = dash.codec.new(user.name, now=now, password_changed=user.password_changed)
    visit.user = user
    visit.fresh = True
    return RedirectResponse(target, status_code=303)


def _login_form(
    dash: Dashboard, request: Request, visit: Visit, target: str, *, status: int = 200, error: str = ""
) -> HTMLResponse:
    first_run = not dash.store.list_users()
    return dash.render(
        request,
        visit,
        "login.html",
        status,
        next=target,
        error=error,
        first_run=first_run,
        hint=FIRST_ADMIN_HINT,
    )


@page(None)
def logout(request: Request, visit: Visit) -> Response:
    dash: Dashboard = request.app.state.dashboard
    if visit.user is not None:
        # Revoked in the store: a copy of the old cookie is refused by every dashboard process.
        sessions.revoke(dash.store, visit.session, max_age=dash.codec.max_age, now=dash.clock())
    visit.session = dash.codec.new(now=dash.clock())
    visit.user = None
    visit.fresh = True
    return RedirectResponse("/login", status_code=303)


# -- overview -----------------------------------------------------------------------------------


def _hours(request: Request) -> int:
    try:
        hours = int(request.query_params.get("hours", "1"))
    except ValueError:
        return 1
    return hours if hours in HOURS_CHOICES else 1


def _overview_context(dash: Dashboard, request: Request) -> dict[str, Any]:
    hours = _hours(request)
    data = views.overview(dash.store, now=dash.clock(), hours=hours)
    chart = charts.stacked_bars(
        data.series.buckets,
        data.series.starts,
        data.series.actions,
        title=f"Decisions by action, last {hours} h",
        stamp="%a %H:%M" if hours > 24 else "%H:%M",
    )
    return {
        "hours": hours,
        "hours_choices": HOURS_CHOICES,
        "data": data,
        "chart": chart,
        "legend": charts.legend(data.series.actions),
        "solve_rate": data.summary.solve_rate,
        **rates_context(dash),
    }


@page("viewer")
def overview(request: Request, visit: Visit) -> Response:
    dash: Dashboard = request.app.state.dashboard
    return dash.render(request, visit, "overview.html", **_overview_context(dash, request))


@page("viewer")
def overview_live(request: Request, visit: Visit) -> Response:
    """The overview's figures alone, which htmx swaps in every few seconds."""
    dash: Dashboard = request.app.state.dashboard
    return dash.render(request, visit, "overview_live.html", **_overview_context(dash, request))


# -- actors -------------------------------------------------------------------------------------


@page("viewer")
def actors(request: Request, visit: Visit) -> Response:
    dash: Dashboard = request.app.state.dashboard
    kind = request.query_params.get("kind", "ip")
    typed = request.query_params.get("q", "")
    context: dict[str, Any] = {
        "kinds": views.ACTOR_KINDS,
        "kind": kind if kind in views.ACTOR_KINDS else "ip",
        "q": typed,
        "ttl_choices": TTL_CHOICES,
        "done": request.query_params.get("done", ""),
        "pseudonymised": dash.warden.pseudonymizer.enabled,
    }
    status = 200
    if typed:
        try:
            search = views.search_keys(
                kind,
                typed,
                dash.warden.pseudonymizer,
                v4_prefix=dash.warden.policy.network.ipv4_network_prefix,
            )
            context["view"] = views.actor(dash.store, search)
        except views.SearchError as exc:
            context["error"] = str(exc)
            status = 400
    return dash.render(request, visit, "actors.html", status, **context)


@page("analyst")
def actor_ban(request: Request, visit: Visit) -> Response:
    dash: Dashboard = request.app.state.dashboard
    back = {"kind": visit.form.get("kind", ""), "q": visit.form.get("q", "")}
    try:
        order = order_from_form(visit.form, dash.warden.pseudonymizer)
    except BanInputError as exc:
        return dash.error(request, visit, 400, str(exc))
    assert visit.user is not None
    user = visit.user.name
    dash.warden.ban(order.kind, order.value, ttl=order.ttl, reason=order.signed(user), by=user)
    return RedirectResponse("/actors?" + urlencode({**back, "done": "banned"}), status_code=303)


# -- bans ---------------------------------------------------------------------------------------


@page("viewer")
def bans_page(request: Request, visit: Visit) -> Response:
    dash: Dashboard = request.app.state.dashboard
    q = request.query_params
    show_all = q.get("show") == "all"
    now = dash.clock()
    context: dict[str, Any]
    listed = dash.store.list_bans(None if show_all else now)
    shown = views.filter_bans(listed, text=q.get("q", ""), kind=q.get("kind", ""), source=q.get("source", ""))
    context = {
        "bans": list(reversed(shown)),
        "total": len(listed),
        "q": q.get("q", ""),
        "kind": q.get("kind", ""),
        "source": q.get("source", ""),
        "show_all": show_all,
        "kinds": ("ip", "network", "account", "session", "fingerprint"),
        "formats": EXPORT_FORMATS,
        "ttl_choices": TTL_CHOICES,
        "done": q.get("done", ""),
        "allows": allows_view.in_force(request),
    }
    name = "bans_table.html" if request.headers.get("hx-request") else "bans.html"
    return dash.render(request, visit, name, **context)


@page("analyst")
def bans_add(request: Request, visit: Visit) -> Response:
    dash: Dashboard = request.app.state.dashboard
    try:
        order = order_from_form({**visit.form, "expect": ""}, dash.warden.pseudonymizer)
    except BanInputError as exc:
        return dash.error(request, visit, 400, str(exc))
    assert visit.user is not None
    user = visit.user.name
    dash.warden.ban(order.kind, order.value, ttl=order.ttl, reason=order.signed(user), by=user)
    return RedirectResponse("/bans?done=added", status_code=303)


@page("analyst")
def bans_lift(request: Request, visit: Visit) -> Response:
    dash: Dashboard = request.app.state.dashboard
    form = visit.form
    try:
        kind, value = check_target(form.get("kind", ""), form.get("value", ""))
    except BanInputError as exc:
        return dash.error(request, visit, 400, str(exc))
    removed = dash.store.remove_ban(kind, value)
    if removed and visit.user is not None:
        audit_view.write(dash.store, dash.clock(), visit.user.name, "ban.remove", f"{kind}:{value}")
    # The Warden of this process drops it now; serving Wardens reload bans every two seconds.
    dash.warden.engine.bans.remove(kind, value)
    back = safe_next(form.get("back")) if form.get("back") else "/bans"
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}done={'lifted' if removed else 'not-found'}", status_code=303)


@page("viewer")
def bans_export(request: Request, visit: Visit) -> Response:
    dash: Dashboard = request.app.state.dashboard
    fmt = request.query_params.get("format", "json")
    now = dash.clock()
    try:
        body, media = export(dash.store.list_bans(now), fmt, now=now)
    except BanInputError as exc:
        return dash.error(request, visit, 400, str(exc))
    suffix = "json" if fmt == "json" else "txt"
    return Response(
        body,
        media_type=media,
        headers={"content-disposition": f'attachment; filename="scrapewarden-bans-{fmt}.{suffix}"'},
    )


# -- users --------------------------------------------------------------------------------------


@page("admin")
def users_page(request: Request, visit: Visit) -> Response:
    dash: Dashboard = request.app.state.dashboard
    return _users(dash, request, visit)


def _users(
    dash: Dashboard, request: Request, visit: Visit, *, status: int = 200, error: str = ""
) -> Response:
    tokens: dict[str, int] = {}
    for token in dash.store.list_tokens():
        tokens[token.user] = tokens.get(token.user, 0) + 1
    return dash.render(
        request,
        visit,
        "users.html",
        status,
        users=dash.store.list_users(),
        roles=ROLES,
        tokens=tokens,
        error=error,
        done=request.query_params.get("done", ""),
        min_password=accounts.MIN_PASSWORD_LENGTH,
    )


@page("admin")
def users_change(request: Request, visit: Visit) -> Response:
    """Add a user, change a role, or remove a user (``action`` field)."""
    dash: Dashboard = request.app.state.dashboard
    form = visit.form
    action = form.get("action", "")
    name = form.get("name", "").strip()
    assert visit.user is not None
    try:
        if action == "add":
            accounts.add_user(
                dash.store, name, form.get("role", ""), form.get("password", ""), now=dash.clock()
            )
        elif action == "role":
            if name == visit.user.name:
                raise accounts.AccountError("you cannot change your own role (ask another admin)")
            accounts.set_role(dash.store, name, form.get("role", ""))
        elif action == "logout":
            if dash.store.get_user(name) is None:
                raise accounts.AccountError(f"no user {name!r}")
            sessions.end_all(dash.store, name, now=dash.clock())
        elif action == "remove":
            if name == visit.user.name:
                raise accounts.AccountError("you cannot remove yourself (ask another admin)")
            if not dash.store.remove_user(name):
                raise accounts.AccountError(f"no user {name!r}")
        else:
            raise accounts.AccountError("unknown action")
    except accounts.AccountError as exc:
        return _users(dash, request, visit, status=400, error=str(exc))
    details = {"role": form.get("role", "")} if action in ("add", "role") else {}
    audit_view.write(dash.store, dash.clock(), visit.user.name, f"user.{action}", name, **details)
    return RedirectResponse(f"/users?done={action}", status_code=303)


# -- the app ------------------------------------------------------------------------------------


def create_app(
    target: Warden | StateStore | str | None = None,
    *,
    policy: Policy | str | Path | None = None,
    secure_cookies: bool | None = None,
    session_seconds: int = DEFAULT_MAX_AGE,
    clock: Callable[[], float] = time.time,
    login_budget: LoginBudget | None = None,
    metrics_urls: Sequence[str] = (),
    metrics_hosts: Sequence[str] = (),
    access_logs: Sequence[str | Path] = (),
    rate_interval: float = DEFAULT_INTERVAL,
) -> Starlette:
    """The dashboard over a running ``Warden``'s store, or over a state store / URL (a Warden
    is then made with ``policy``, for its pseudonymisation key and ban handling).

    Requests per second on the Overview come from this process's metrics when ``target`` is a
    Warden deciding requests here, and from the doors' ``/metrics`` at ``metrics_urls``
    (loopback, or a host in ``metrics_hosts``; a bad URL raises ``MetricsUrlError``), read
    every ``rate_interval`` seconds while the app runs (started and stopped by its lifespan).

    ``secure_cookies``: None sets the Secure flag when the request came over https (behind a
    TLS proxy, run uvicorn with --proxy-headers); True or False forces it.
    """
    from .api import routes as api_routes

    owns = not isinstance(target, Warden)
    warden = target if isinstance(target, Warden) else Warden(policy, state=target, clock=clock)
    dashboard = Dashboard(
        warden,
        secure_cookies=secure_cookies,
        session_seconds=session_seconds,
        clock=clock,
        login_budget=login_budget,
        owns_warden=owns,
        policy_path=Path(policy).resolve() if isinstance(policy, str | Path) else None,
        live=LiveRates(sources_for(metrics_urls, metrics_hosts, local=not owns)),
        access_logs=[Path(log).resolve() for log in access_logs],
        rate_interval=rate_interval,
    )
    dashboard.live.prime()
    routes = [
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", overview),
        Route("/overview/live", overview_live),
        Route("/actors", actors),
        Route("/actors/ban", actor_ban, methods=["POST"]),
        Route("/bans", bans_page),
        Route("/bans/add", bans_add, methods=["POST"]),
        Route("/bans/lift", bans_lift, methods=["POST"]),
        Route("/bans/export", bans_export),
        Route("/users", users_page),
        Route("/users/change", users_change, methods=["POST"]),
        *incidents_view.routes(),
        *policy_view.routes(),
        *audit_view.routes(),
        *allows_view.routes(),
        *rates_routes(),
        *api_routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=_sampling(dashboard))
    app.state.dashboard = dashboard
    app.add_middleware(SecurityHeaders, hsts=bool(secure_cookies))
    return app


def _sampling(dashboard: Dashboard) -> Callable[[Starlette], Any]:
    """The app's lifespan: the metrics sampler runs while the app is served."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dashboard.sampler.start()
        try:
            yield
        finally:
            await run_in_threadpool(dashboard.sampler.stop)

    return lifespan


# -- template helpers ---------------------------------------------------------------------------


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    return _duration(now - ts) + " ago" if now >= ts else "in " + _duration(ts - now)


def _until(ban: Any, now: float) -> Markup | str:
    if ban.expires is None:
        return "never"
    if ban.expires <= now:
        return "expired " + _duration(now - ban.expires) + " ago"
    return "in " + _duration(ban.expires - now)


def _duration(seconds: float) -> str:
    total = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= size:
            rest = total % size
            small = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}[unit]
            tail = f" {rest // small[1]}{small[0]}" if rest >= small[1] else ""
            return f"{total // size}{unit}{tail}"
    return f"{total}s"
