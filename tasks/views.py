from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def task_list(request: HttpRequest) -> HttpResponse:
    return render(request, "tasks/task_list.html", {})
