from django.urls import path

from tasks.web import ops_views

urlpatterns = [
    path("workers/", ops_views.workers, name="workers"),
    path("workers/stream/", ops_views.workers_stream, name="workers_stream"),
    path("inbox/", ops_views.inbox, name="inbox"),
    path("inbox/stream/", ops_views.inbox_stream, name="inbox_stream"),
    path("inbox/<int:execution_id>/answer/", ops_views.inbox_answer, name="inbox_answer"),
    path("tasks/bulk/", ops_views.tasks_bulk, name="tasks_bulk"),
    path("tasks/<int:pk>/rerun/", ops_views.task_rerun, name="task_rerun"),
    path("tasks/<int:pk>/events/", ops_views.task_events, name="task_events"),
    path("tasks/<int:pk>/events/stream/", ops_views.task_events_stream, name="task_events_stream"),
    path("header/stream/", ops_views.chrome_stream, name="chrome_stream"),
]
