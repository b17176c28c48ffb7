from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "tasks.api"
    label = "api"
    verbose_name = "API"
