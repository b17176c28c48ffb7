from django.urls import include, path

from tasks.web import views

urlpatterns = [
    path("", include("tasks.web.ops_urls")),
    path("", views.task_list, name="task_list"),
    path("stream/", views.task_list_stream, name="task_list_stream"),
    path("tasks/new/", views.task_new, name="task_new"),
    path("tasks/<int:pk>/", views.task_detail, name="task_detail"),
    path("tasks/<int:pk>/stream/", views.task_stream, name="task_stream"),
    path("tasks/<int:pk>/cancel/", views.task_cancel, name="task_cancel"),
    path("tasks/<int:pk>/retry/", views.task_retry, name="task_retry"),
    path("tasks/<int:pk>/log.txt", views.execution_log, name="task_log"),
    path(
        "tasks/<int:pk>/attempts/<int:number>/answer/",
        views.execution_answer,
        name="execution_answer",
    ),
    path(
        "tasks/<int:pk>/attempts/<int:number>/log.txt",
        views.execution_log,
        name="execution_log",
    ),
]
