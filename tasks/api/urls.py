from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from asgiref.sync import iscoroutinefunction
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import URLPattern, include, path, re_path

from tasks.api import views
from tasks.api.api import api

View = Callable[..., HttpResponseBase]


def _json_405(view: View) -> View:
    """ninja answers an unsupported method with a plain-text 405: the contract's shape."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            allowed = response.get("Allow", "")
            replaced = JsonResponse(
                {"detail": f"method {request.method} not allowed here; use {allowed}"},
                status=405,
            )
            replaced["Allow"] = allowed
            return replaced
        return response

    return wrapped


_patterns, _app_name, _namespace = api.urls
for _pattern in _patterns:
    if isinstance(_pattern, URLPattern):
        callback = cast(View, _pattern.callback)
        if not iscoroutinefunction(callback):  # every operation here is sync
            callback = _json_405(callback)
        # The API answers 401 in JSON itself: never a redirect to the login page.
        _pattern.callback = login_not_required(callback)

urlpatterns = [
    path("api/", views.api_index, name="api_index"),
    path("api/", include((_patterns, _app_name), namespace=_namespace)),
    re_path(r"^api/(?P<rest>.*)$", views.api_not_found),
    path("tokens/", views.tokens_page, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke_view, name="token_revoke"),
]
