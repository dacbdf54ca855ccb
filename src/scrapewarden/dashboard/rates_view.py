"""Requests per second over time on the Overview, and ``/api/rates`` (viewer) with its part of
the OpenAPI document. The samples come from the dashboard's ``RateSampler``; the figures from
``rate_series`` (pure); the chart from ``charts.stacked_area`` (SVG, no script)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import charts
from .live_metrics import live_figure
from .rate_series import MIN_POINTS, Point, steps
from .web import Visit, api, dashboard_of

if TYPE_CHECKING:
    from .app import Dashboard

MAX_STEPS = 180
"""At most this many steps are drawn (an hour of 5 s points is 720: four to a step)."""


def rates_context(dash: Dashboard) -> dict[str, Any]:
    """The Overview's live figures (``live``) and the series chart (``rates``...)."""
    sampler = dash.sampler
    series = sampler.series()
    span = series.end - series.start
    shown = f"{max(1, round(span))} s" if span < 120 else f"{round(span / 60)} min"
    chart = (
        charts.stacked_area(
            steps(series.points, MAX_STEPS),
            series.actions,
            start=series.start,
            end=series.end,
            title=f"Requests per second by action, last {shown}",
            html_id="rates-chart",
        )
        if series.enough
        else None
    )
    return {
        "live": live_figure(sampler.current()),
        "rates": series,
        "rates_chart": chart,
        "rates_legend": charts.legend(series.actions),
        "rates_span": shown,
        "rates_min_points": MIN_POINTS,
        "sampling": sampler.running,
    }


def _point_json(point: Point) -> dict[str, Any]:
    return {
        "at": point.at,
        "seconds": point.seconds,
        "per_second": point.per_second,
        "rates": dict(point.rates),
        "missing": list(point.missing),
    }


@api("viewer")
def rates(request: Request, visit: Visit, body: Any) -> Response:
    dash: Dashboard = dashboard_of(request)
    sampler = dash.sampler
    series = sampler.series()
    now = live_figure(sampler.current())
    return JSONResponse(
        {
            "sampling": sampler.running,
            "interval": series.interval,
            "window": series.window,
            "start": series.start,
            "end": series.end,
            "actions": series.actions,
            "points": [_point_json(p) for p in series.points],
            "sources": [
                {
                    "name": s.name,
                    "ok": s.ok,
                    "error": s.error,
                    "per_second": s.per_second,
                    "seconds": s.seconds,
                }
                for s in now.sources
            ],
        }
    )


def rates_routes() -> list[Route]:
    return [Route("/api/rates", rates)]


_NUMBER_OR_NULL = {"type": ["number", "null"]}
_POINT = {
    "type": "object",
    "required": ["at", "seconds", "per_second", "rates", "missing"],
    "properties": {
        "at": {"type": "number", "description": "end of the interval (epoch seconds)"},
        "seconds": {"type": "number", "description": "length of the interval"},
        "per_second": {"type": "number", "description": "all decisions per second, allowed included"},
        "rates": {"type": "object", "additionalProperties": {"type": "number"}},
        "missing": {
            "type": "array",
            "items": {"type": "string"},
            "description": "metrics sources not counted in this point (not read at one end)",
        },
    },
}


def describe(openapi: dict[str, Any]) -> None:
    """Add ``/api/rates`` to the API's OpenAPI document."""

    def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    error = {"$ref": "#/components/schemas/Error"}
    openapi["components"]["schemas"]["RatePoint"] = _POINT
    openapi["paths"]["/api/rates"] = {
        "get": {
            "summary": "requests per second by action over the last hour, sampled from the doors' metrics",
            "responses": {
                "200": json_body(
                    {
                        "type": "object",
                        "required": [
                            "sampling",
                            "interval",
                            "window",
                            "start",
                            "end",
                            "actions",
                            "points",
                            "sources",
                        ],
                        "properties": {
                            "sampling": {
                                "type": "boolean",
                                "description": "false: no metrics source, or served without its lifespan",
                            },
                            "interval": {"type": "number", "description": "seconds between samples"},
                            "window": {"type": "number", "description": "seconds of points kept"},
                            "start": {"type": "number"},
                            "end": {"type": "number"},
                            "actions": {"type": "array", "items": {"type": "string"}},
                            "points": {"type": "array", "items": {"$ref": "#/components/schemas/RatePoint"}},
                            "sources": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["name", "ok", "error", "per_second", "seconds"],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "ok": {"type": "boolean"},
                                        "error": {"type": "string"},
                                        "per_second": _NUMBER_OR_NULL,
                                        "seconds": _NUMBER_OR_NULL,
                                    },
                                },
                            },
                        },
                    },
                    "the series, oldest point first, and each source's state now",
                ),
                "401": json_body(error, "no valid session or bearer token"),
            },
        }
    }
