"""Views of the sample Django people directory."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from ..people import home_html, profile, profile_html, search


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(home_html())


def user(request: HttpRequest, user_id: str) -> HttpResponse:
    person = profile(user_id)
    if person is None:
        return JsonResponse({"error": "no such user"}, status=404)
    if "text/html" in request.headers.get("Accept", ""):
        return HttpResponse(profile_html(person))
    return JsonResponse(person)


def find(request: HttpRequest) -> HttpResponse:
    return JsonResponse(search(request.GET.get("q", "")), safe=False)
