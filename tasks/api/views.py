"""The /tokens/ page (make, list with last use, revoke) and the /api/ odds and ends that
are not API operations (its index, and a JSON 404 for unknown API paths)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tasks.api.auth import bearer_secret
from tasks.api.models import NAME_MAX_LENGTH
from tasks.api.tokens import (
    TokenInputError,
    token_authenticate,
    token_create,
    token_name_clean,
    token_revoke,
    tokens_of,
)


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=NAME_MAX_LENGTH,
        strip=False,
        help_text="What will use it, e.g. “nightly import runner”.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs.update(autocomplete="off", maxlength=str(NAME_MAX_LENGTH))

    def clean_name(self) -> str:
        try:
            return token_name_clean(self.cleaned_data.get("name", ""))
        except TokenInputError as exc:
            raise forms.ValidationError(str(exc)) from None


@require_http_methods(["GET", "POST"])
def tokens_page(request: HttpRequest) -> HttpResponse:
    """GET: your tokens. POST: a new one, whose secret this response shows once."""
    form = TokenForm(request.POST if request.method == "POST" else None)
    secret = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            made = token_create(user=request.user, name=form.cleaned_data["name"])
            secret = made.secret
            status = 201
            form = TokenForm()
        else:
            status = 422
    response = render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "secret": secret,
            "tokens": tokens_of(request.user),
            "base_url": request.build_absolute_uri("/").rstrip("/"),
        },
        status=status,
    )
    # The page that shows a secret must not be kept by any cache (nor the list with it).
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = tokens_of(request.user).filter(pk=pk).first() if 0 < pk < 2**63 else None
    if token is None:
        raise Http404("No such token.")
    already = token.revoked_at is not None
    token_revoke(token=token)
    if already:
        messages.info(request, f"Token “{token.name}” was already revoked.")
    else:
        messages.success(
            request, f"Revoked “{token.name}”: requests and open streams using it stop."
        )
    return HttpResponseRedirect(reverse("tokens"))


def _caller_known(request: HttpRequest) -> bool:
    secret = bearer_secret(request)
    if secret is not None:
        return token_authenticate(secret) is not None
    return bool(request.user.is_authenticated)


@login_not_required  # answers 401 in JSON itself
@require_GET
def api_index(request: HttpRequest) -> JsonResponse:
    if not _caller_known(request):
        return JsonResponse(
            {"detail": "authentication required: a session or Authorization: Bearer"},
            status=401,
        )
    return JsonResponse({"openapi": "/api/openapi.json", "docs": "/api/docs", "events": "/events/"})


@login_not_required
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    return JsonResponse({"detail": f"no such API endpoint: {request.path[:200]}"}, status=404)
