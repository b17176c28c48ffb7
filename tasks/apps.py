from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks"

    def ready(self) -> None:
        from events import audience, types
        from tasks import access, event_types, receivers  # noqa: F401  (receivers: transition -> event)

        types.register(*event_types.ALL)
        # Who receives which events: the hub matches each event's audience against each
        # subscriber's grant; `/events/?task=N` for an invisible task is a 404.
        audience.policy_register(
            grant_for=access.event_grant, topic_visible=access.event_topic_visible
        )
