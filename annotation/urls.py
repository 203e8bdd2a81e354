"""Web pages (server-rendered). The API lives under /api/ (annotation/api/urls.py)."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from annotation.views import home

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", home.home, name="home"),
    path("", include("annotation.views.labeling_urls")),
    path("manage/", include("annotation.views.manage_urls")),
]
