"""Creating a task from the dashboard: the command's rules, errors beside their fields."""

import pytest

from tasks.models import Task

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

HTMX = {"HTTP_HX_REQUEST": "true"}
PIPELINE = "tasks.examples.pipeline"
SHELL = "tasks.examples.shell"


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def post(client, **data):
    form = {"function": PIPELINE, "title": "t", "kwargs": "", "description": ""}
    form.update(data)
    return client.post("/tasks/new/", form, **HTMX)


def test_create_with_htmx_returns_a_fresh_form_and_creates(logged_in, user):
    response = post(logged_in, title="Nightly report", kwargs='{"steps": 2, "delay": 0.1}')
    assert response.status_code == 200
    task = Task.objects.get()
    assert (task.title, task.kwargs, task.created_by) == (
        "Nightly report",
        {"steps": 2, "delay": 0.1},
        user,
    )
    html = response.content.decode()
    assert f"task #{task.pk}: Nightly report" in html
    assert html.lstrip().startswith('<form id="create-form"')


def test_create_without_htmx_redirects_to_the_task(logged_in):
    response = logged_in.post("/tasks/new/", {"function": PIPELINE, "title": "plain"})
    task = Task.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/tasks/{task.pk}/"


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"title": ""}, "title", "title must not be empty"),
        ({"title": "x" * 201}, "title", "title is 201 characters long; the most is 200"),
        ({"title": "a\x07b"}, "title", "title must be one line without control characters"),
        ({"kwargs": "{nope"}, "kwargs", "kwargs is not valid JSON"),
        ({"kwargs": "[1, 2]"}, "kwargs", "kwargs must be a JSON object, got list"),
        ({"kwargs": '{"colour": 1}'}, "kwargs", "arguments do not fit tasks.examples.pipeline"),
        ({"function": "os.system"}, "function", "Select a valid choice"),
        ({"function": SHELL, "kwargs": '{"command": "id"}'}, "function", "Select a valid choice"),
    ],
)
def test_each_error_beside_its_field_and_nothing_created(logged_in, data, field, message):
    response = post(logged_in, **data)
    assert response.status_code == 422
    html = response.content.decode()
    assert f'id="id_{field}-error">{message}' in html
    assert f'aria-describedby="id_{field}-error"' in html
    assert Task.objects.count() == 0


def test_every_error_at_once(logged_in):
    html = post(logged_in, title="", kwargs="{oops").content.decode()
    assert 'id="id_title-error"' in html and 'id="id_kwargs-error"' in html
    assert Task.objects.count() == 0


def test_staff_only_functions_are_hidden_from_others(logged_in, client, staff_user):
    assert SHELL not in logged_in.get("/tasks/new/").content.decode()
    client.force_login(staff_user)
    assert f'value="{SHELL}"' in client.get("/tasks/new/").content.decode()
    response = post(client, function=SHELL, kwargs='{"command": "true"}', title="sh")
    assert response.status_code == 200 and Task.objects.get().function == SHELL


def test_the_list_page_offers_the_form(logged_in):
    html = logged_in.get("/").content.decode()
    assert 'id="create-form"' in html and 'name="csrfmiddlewaretoken"' in html
    # The function's arguments as a hint.
    assert "pipeline: steps=3, delay=1.0, fail_at=null, ask=null" in html


def test_created_title_is_escaped_in_the_confirmation(logged_in):
    html = post(logged_in, title="<script>alert(1)</script>").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
