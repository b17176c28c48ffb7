"""Two people watch the task list at once, each in their own browser context: each sees
only their own rows appear live, and counts of their own; someone who sees every task
(alice: view_all) watches beside them and sees all of it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create, create_task_cli, screenshot, wait_live
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUICK = {"steps": 1, "delay": 0.1}


def row(page, task_id: int):
    return page.locator(f"#task-{task_id}")


def test_two_people_each_see_only_their_own_rows_appear_live(
    server, open_page, django_user_model, user
):
    ann = django_user_model.objects.create_user("ann", "ann@example.com", PASSWORD)
    bob = django_user_model.objects.create_user("bob", "bob@example.com", PASSWORD)
    pages = {name: open_page(server, username=name) for name in ("ann", "bob", "alice")}
    for page in pages.values():
        wait_live(page)
    a, b, everyone = pages["ann"], pages["bob"], pages["alice"]

    ann_first = create(title="Ann's report", kwargs=QUICK, created_by=ann)
    bob_first = create(title="Bob's backup", kwargs=QUICK, created_by=bob)
    system = create_task_cli("Nightly system job", '{"steps": 1, "delay": 0.1}')
    expect(row(a, ann_first.pk).locator(".col-status")).to_have_text("✓Succeeded")
    expect(row(b, bob_first.pk).locator(".col-status")).to_have_text("✓Succeeded")

    # Events reach a page in commit order: once each page shows a later row of its own,
    # anything before it that it did not show, it was never sent.
    ann_later = create(title="Ann's second", kwargs=QUICK, created_by=ann)
    bob_later = create(title="Bob's second", kwargs=QUICK, created_by=bob)
    expect(row(a, ann_later.pk)).to_be_visible()
    expect(row(b, bob_later.pk)).to_be_visible()
    for foreign in (bob_first.pk, bob_later.pk, system):
        expect(row(a, foreign)).to_have_count(0)
    for foreign in (ann_first.pk, ann_later.pk, system):
        expect(row(b, foreign)).to_have_count(0)
    expect(a.locator('.count-n[data-status="all"]')).to_have_text("2")
    expect(b.locator('.count-n[data-status="all"]')).to_have_text("2")

    for task_id in (ann_first.pk, ann_later.pk, bob_first.pk, bob_later.pk, system):
        expect(row(everyone, task_id)).to_be_visible()
    expect(everyone.locator('.count-n[data-status="all"]')).to_have_text("5")
    assert [page.console_errors for page in pages.values()] == [[], [], []]

    # Ann opening Bob's task by its URL: it does not exist for her.
    response = a.goto(f"{server.url}/tasks/{bob_first.pk}/")
    assert response is not None and response.status == 404
    a.goto(f"{server.url}/")
    wait_live(a)
    screenshot(a, "access-list-ann")
    screenshot(b, "access-list-bob")


def test_shared_with_a_group_from_the_form_and_a_viewer_sees_without_buttons(
    server, open_page, django_user_model, user
):
    from django.contrib.auth.models import Group, Permission

    team = Group.objects.create(name="team")
    ann = django_user_model.objects.create_user("ann", "ann@example.com", PASSWORD)
    dave = django_user_model.objects.create_user("dave", "dave@example.com", PASSWORD)
    carol = django_user_model.objects.create_user("carol", "carol@example.com", PASSWORD)
    ann.groups.add(team)
    dave.groups.add(team)
    carol.user_permissions.add(Permission.objects.get(codename="view_all_tasks"))

    watching = open_page(server, username="ann")
    wait_live(watching)
    page = open_page(server, username="dave")
    wait_live(page)
    page.locator("#create-panel summary").click()
    form = page.locator("#create-form")
    form.locator("#id_title").fill("For the team")
    form.locator("#id_kwargs").fill('{"steps": 1, "delay": 0.1, "ask": "Ship it?"}')
    form.locator("#id_group").select_option(label="team")
    screenshot(page, "access-create-shared")
    form.get_by_role("button", name="Create task").click()
    expect(form).to_contain_text("Created task #")
    from tasks.models import Task

    task = Task.objects.get(title="For the team")
    assert task.group == team and task.created_by == dave
    # Ann, in the team, sees it appear on her open list, live.
    expect(row(watching, task.pk).locator(".col-status")).to_have_text("?Waiting for input")

    viewer = open_page(server, f"/tasks/{task.pk}/", username="carol")
    expect(viewer.locator("#task-prompt")).to_contain_text("Ship it?")
    expect(viewer.locator("#task-prompt")).to_contain_text("Its creator or its group")
    expect(viewer.locator("#id_answer")).to_have_count(0)
    expect(viewer.locator("#cancel-button")).to_have_count(0)
    expect(viewer.locator("#task-head")).to_contain_text("team")
    screenshot(viewer, "access-view-only")
    assert viewer.console_errors == [] and watching.console_errors == []
