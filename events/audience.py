"""Who may receive an event: the event's audience tokens against a subscriber's grant.

As in Mercure's private updates, the hub decides visibility from what each event carries
and what each subscriber was granted, with no query per subscriber. The app that emits
decides what the tokens mean (tasks: "u:<creator id>", "g:<group id>", "staff"); this
module only stores and matches them.

events knows nothing of who may see what: the emitting app registers a policy
(`policy_register`, from its AppConfig.ready) that turns a user into a `Grant` and says
whether a topic (`task=`/`execution=` of `/events/`) exists for that user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


def audience_text(tokens: Iterable[str]) -> str:
    """The stored form: space-delimited with a space at each end (" u:5 g:3 "), so that a
    containment query on " u:5 " cannot match " u:55 "."""
    clean = sorted({t.strip() for t in tokens if t and t.strip()})
    for token in clean:
        if " " in token:
            raise ValueError(f"an audience token has no spaces: {token!r}")
    return f" {' '.join(clean)} " if clean else ""


@dataclass(frozen=True)
class Grant:
    """What a subscriber may receive: everything, or events sharing one of `tokens`."""

    everything: bool = False
    tokens: frozenset[str] = frozenset()

    def allows(self, audience: str) -> bool:
        if self.everything:
            return True
        return any(f" {token} " in audience for token in self.tokens)

    @property
    def key(self) -> str:
        """A stable text naming this grant: subscribers with equal keys see the same
        events, so a render keyed by it can be shared among them."""
        return "*" if self.everything else ",".join(sorted(self.tokens))


EVERYTHING = Grant(everything=True)
NOTHING = Grant()

GrantFor = Callable[[Any], Grant]
TopicVisible = Callable[[Any, int | None, int | None], bool]


def _superusers_only(user: Any) -> Grant:
    return EVERYTHING if getattr(user, "is_superuser", False) else NOTHING


def _every_topic(user: Any, task_id: int | None, execution_id: int | None) -> bool:
    return True


_policy: dict[str, Any] = {"grant_for": _superusers_only, "topic_visible": _every_topic}


def policy_register(*, grant_for: GrantFor, topic_visible: TopicVisible) -> None:
    """The emitting app says who receives what. Until one does, only superusers receive
    anything (secure by default)."""
    _policy["grant_for"] = grant_for
    _policy["topic_visible"] = topic_visible


def grant_for(user: Any) -> Grant:
    """The grant of `user`'s streams (sync: it may query)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return NOTHING
    grant: Grant = _policy["grant_for"](user)
    return grant


def topic_visible(user: Any, task_id: int | None, execution_id: int | None) -> bool:
    """Whether the topics a stream asks for exist for `user` (sync: it may query)."""
    visible: bool = _policy["topic_visible"](user, task_id, execution_id)
    return visible
