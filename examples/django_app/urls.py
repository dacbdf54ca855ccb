from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home),
    path("users/<str:user_id>", views.user),
    path("search", views.find),
]
