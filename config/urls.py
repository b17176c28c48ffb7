from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("events.urls")),
    path("", include("tasks.api.urls")),
    path("", include("tasks.web.urls")),
]

# A refusal is one line; with htmx, a message and nothing else changed (tasks.web.views).
handler403 = "tasks.web.views.permission_denied"
