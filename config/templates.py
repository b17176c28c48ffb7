"""Django's template backend, with renders that can always be served.

A lone surrogate (U+D800-U+DFFF) in a rendered page cannot be encoded as UTF-8, so one
such character anywhere in a task (written before the checks existed, or by a function
into a field that is shown) would make its page a permanent 500. Input refuses it
(tasks.bounds); here each rendered template turns any that got through into U+FFFD.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest
from django.template import TemplateDoesNotExist
from django.template.backends.django import DjangoTemplates, Template, reraise
from django.utils.safestring import SafeString, mark_safe

_SURROGATE = re.compile("[\ud800-\udfff]")


class SafeTextTemplate(Template):
    def render(
        self, context: dict[str, Any] | None = None, request: HttpRequest | None = None
    ) -> SafeString:
        html = mark_safe(super().render(context, request))
        if _SURROGATE.search(html) is not None:
            return mark_safe(_SURROGATE.sub("\ufffd", html))
        return html


class Templates(DjangoTemplates):
    def from_string(self, template_code: str) -> SafeTextTemplate:
        return SafeTextTemplate(self.engine.from_string(template_code), self)

    def get_template(self, template_name: str) -> SafeTextTemplate:
        try:
            return SafeTextTemplate(self.engine.get_template(template_name), self)
        except TemplateDoesNotExist as exc:
            reraise(exc, self)
