"""Projects list, detail and edit pages; the device catalog page; sign in and out."""

import re

from django.urls import reverse

from projects.jobs.models import Job, JobStatus
from projects.tests import factories

from .pages_fixtures import *  # noqa: F403


def test_the_list_shows_each_projects_task_device_engine_and_latest_stage(client, viewer, project):
    Job.objects.create(project=project, stage="train", queue="gpu", status=JobStatus.RUNNING, progress=40)
    client.force_login(viewer)
    body = client.get(reverse("projects:list")).content.decode()
    assert project.name in body and "Image classification" in body and project.device.name in body
    row = body[body.index(project.name):]
    row = row[:row.index("</tr>")]
    assert "TensorRT" in row and "tensorrt" not in row, "the engine's name, not its key"
    assert "Train</span>" in row and "badge-running" in row and "40%" in row


def test_the_list_shows_each_projects_best_accuracy_over_its_training_runs(client, viewer, project):
    for top1 in (0.62, 0.871, None):
        result = {"model": "resnet18"} if top1 is None else {"model": "resnet18", "best_top1": top1}
        Job.objects.create(project=project, stage="train", queue="gpu", status=JobStatus.SUCCEEDED, result=result)
    other = factories.project(project.team, name="untrained", dataset=project.dataset, device=project.device)
    client.force_login(viewer)
    body = client.get(reverse("projects:list")).content.decode()
    best = [cell.split("</td>")[0] for cell in body.split('data-testid="best">')[1:]]
    by_name = dict(zip([other.name, project.name], best, strict=True))  # newest first
    assert "87.1%" in by_name[project.name] and "top-1" in by_name[project.name]
    assert "—" in by_name[other.name]


def test_the_best_score_counts_only_numbers_from_the_stages_that_declare_it(client, viewer, project):
    # train declares best_top1; a recommend job's result carrying the same key is no training score, and a value
    # that is not a number counts as none.
    Job.objects.create(project=project, stage="train", queue="gpu", status=JobStatus.SUCCEEDED,
                       result={"best_top1": 0.55})
    Job.objects.create(project=project, stage="train", queue="gpu", status=JobStatus.SUCCEEDED,
                       result={"best_top1": "n/a"})
    Job.objects.create(project=project, stage="recommend", queue="cpu", status=JobStatus.SUCCEEDED,
                       result={"best_top1": 0.99})
    client.force_login(viewer)
    body = client.get(reverse("projects:list")).content.decode()
    best = body.split('data-testid="best">')[1].split("</td>")[0]
    assert "55.0%" in best and "99.0%" not in best


def test_the_list_is_paged_newest_first(client, viewer, project, django_assert_max_num_queries):
    for i in range(30):
        factories.project(project.team, name=f"p{i:02}", dataset=project.dataset, device=project.device)
    client.force_login(viewer)
    with django_assert_max_num_queries(12):  # the same few queries however many projects the team has
        first = client.get(reverse("projects:list")).content.decode()
    assert first.count('data-testid="best"') == 25 and "<strong>p29</strong>" in first
    assert "<strong>p04</strong>" not in first
    assert "Page 1 of 2 · 31 projects" in first
    second = client.get(reverse("projects:list") + "?page=2").content.decode()
    assert second.count('data-testid="best"') == 6 and "<strong>p00</strong>" in second and project.name in second


def test_a_row_shows_what_changed_at_once_though_rendered_rows_are_kept(client, viewer, project):
    # Rows are rendered once per distinct content (projects/templatetags/tango_rows.py): a change is a new row.
    job = Job.objects.create(project=project, stage="train", queue="gpu", status=JobStatus.RUNNING, progress=40)
    client.force_login(viewer)

    def row():
        body = client.get(reverse("projects:list")).content.decode()
        return body[body.index('<a href="' + reverse("projects:detail", args=[project.pk])):].split("</tr>")[0]

    assert "40%" in row()
    Job.objects.filter(pk=job.pk).update(progress=70)
    assert "70%" in row() and "40%" not in row()
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, result={"best_top1": 0.9})
    assert "badge-succeeded" in row() and "90.0%" in row()
    project.team.name = "Renamed team"
    project.team.save()
    project.name = "renamed-project"
    project.save()
    assert "Renamed team" in row() and "renamed-project" in row()


def test_a_project_without_jobs_reads_not_started(client, owner, project):
    project.jobs.all().delete()
    client.force_login(owner)
    assert b"badge-idle" in client.get(reverse("projects:list")).content


def test_the_detail_page_shows_the_record_and_the_pipeline_panel(client, editor, project):
    client.force_login(editor)
    body = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    record = ("TensorRT", "FP16", "224 px", "80 ms", "device memory (4096 MiB)", "Step by step", project.dataset.name)
    for text in record:
        assert text in body
    assert '<div id="pipeline-panel">' in body and 'id="stage-recommend"' in body


def test_an_editor_saves_settings_through_project_update(client, editor, project, odroid, htmx):
    client.force_login(editor)
    data = _edit_data(project, device=odroid.pk, engine="onnxruntime", precision="int8", latency_budget_ms=300)
    response = client.post(reverse("projects:edit", args=[project.pk]), data, headers=htmx)
    assert response["HX-Redirect"] == reverse("projects:detail", args=[project.pk])
    project.refresh_from_db()
    assert (project.device, project.engine, project.precision, project.latency_budget_ms) == (
        odroid, "onnxruntime", "int8", 300)


def test_the_edit_form_shows_project_validates_message_for_an_engine_the_device_cannot_run(
        client, owner, project, odroid, htmx):
    client.force_login(owner)
    data = _edit_data(project, device=odroid.pk, engine="tensorrt")
    body = client.post(reverse("projects:edit", args=[project.pk]), data, headers=htmx).content.decode()
    assert "<html" not in body
    field = body[body.index('id="field-engine"'):]
    assert "Test_Odroid_N2 does not run TensorRT" in field[:field.index('id="field-precision"')]
    project.refresh_from_db()
    assert project.device != odroid


def test_the_edit_form_without_htmx_redirects_after_saving(client, owner, project):
    client.force_login(owner)
    response = client.post(reverse("projects:edit", args=[project.pk]), _edit_data(project, name="renamed"))
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.name == "renamed"


def test_the_catalog_page_shows_device_cards_and_staff_get_the_admin_link(client, viewer, jetson, odroid):
    client.force_login(viewer)
    body = client.get(reverse("recommender:device_list")).content.decode()
    assert jetson.name in body and "Mali-G52" in body and "TensorRT" in body
    assert "Edit in admin" not in body
    viewer.is_staff = True
    viewer.save()
    body = client.get(reverse("recommender:device_list")).content.decode()
    assert reverse("admin:recommender_device_change", args=[jetson.pk]) in body


def test_the_top_bar_links_every_section_and_admin_only_for_staff(client, owner):
    client.force_login(owner)
    body = client.get(reverse("projects:list")).content.decode()
    for url in ("projects:list", "projects:dataset_list", "recommender:device_list"):
        assert f'href="{reverse(url)}"' in body
    assert 'href="/api/docs/"' in body and 'href="/admin/"' not in body
    assert """hx-headers='{"X-CSRFToken": """ in body
    assert "/static/vendor/htmx.min.js" in body and "/static/vendor/htmx-ext-ws.min.js" in body


def test_sign_in_lands_on_the_projects_and_sign_out_on_the_login_page(client, owner):
    owner.set_password("pw")
    owner.save()
    assert b"Sign in to TANGO" in client.get(reverse("login")).content
    response = client.post(reverse("login"), {"username": "alice", "password": "pw"})
    assert response.url == reverse("projects:list")
    response = client.post(reverse("logout"))
    assert response.url == reverse("login")
    assert client.get(reverse("projects:list")).status_code == 302


def test_a_wrong_password_is_reported_on_the_login_page(client, owner):
    body = client.post(reverse("login"), {"username": "alice", "password": "nope"}).content.decode()
    assert 'class="error"' in body and "correct username and password" in body


def _edit_data(project, **changes):
    data = {
        "name": project.name, "description": project.description, "dataset": project.dataset_id,
        "device": project.device_id, "engine": project.engine, "precision": project.precision,
        "input_size": project.input_size, "latency_budget_ms": project.latency_budget_ms,
        "memory_limit_mb": project.memory_limit_mb or "", "run_mode": project.run_mode,
    }
    data.update(changes)
    return data


def test_the_catalog_groups_devices_by_tier_in_the_designs_order(client, viewer):
    from recommender.models import Device, Tier

    client.force_login(viewer)
    for tier in (Tier.ON_DEVICE, Tier.PC, Tier.CLOUD):
        factories.device(f"Test_{tier}", tier=tier)
    body = client.get(reverse("recommender:device_list")).content.decode()
    headings = [body.index(f"<h2>{label} ") for label in ("Cloud", "PC", "On-device")]
    assert headings == sorted(headings)
    assert Device.objects.filter(name__startswith="Test_").count() == 3


def test_the_edit_form_disables_engines_this_server_cannot_build_with_the_reason(client, owner, project, odroid,
                                                                                 tmp_path, monkeypatch):
    monkeypatch.setenv("TANGO_VENV_ROOT", str(tmp_path / "no-side-envs"))  # TFLite's environment not installed
    project.device, project.engine, project.precision = odroid, "onnxruntime", "fp32"  # Odroid runs TFLite
    project.save()
    client.force_login(owner)
    body = client.get(reverse("projects:edit", args=[project.pk])).content.decode()
    engine = body[body.index('id="field-engine"'):body.index('id="field-precision"')]
    assert 'value="tflite" disabled title="TensorFlow Lite needs its own environment, which is not installed' in engine
    assert 'value="onnxruntime" selected' in engine and 'value="onnxruntime" disabled' not in engine


def _options(body: str, field: str) -> list[str]:
    select = body[body.index(f'id="id_{field}"'):]
    return re.findall(r'<option value="([^"]*)"', select[:select.index("</select>")])


def test_the_edit_form_offers_the_devices_engines_and_redraws_them_when_the_device_changes(
        client, owner, project, odroid, htmx):
    """As the wizard does (one mechanism: forms.offer_environment, redrawn through _environment_fields.html): the
    settings page used to offer every engine and precision and only refuse a wrong one on save."""
    client.force_login(owner)
    url = reverse("projects:edit", args=[project.pk])
    body = client.get(url).content.decode()
    assert _options(body, "engine") == ["pytorch", "onnxruntime", "tensorrt", "tvm"], "the Jetson's engines only"
    assert "int8" in _options(body, "precision") and "fp16" in _options(body, "precision")  # TensorRT's
    assert 'hx-trigger="change from:#id_engine, change from:#id_device"' in body

    # The device changes to the Odroid, which has no TensorRT: the redraw offers its engines and moves the engine
    # to one it runs, with that engine's precisions; nothing is saved.
    redraw = client.post(url, {**_edit_data(project, device=odroid.pk), "action": "refresh"}, headers=htmx)
    body = redraw.content.decode()
    assert "<html" not in body and 'id="project-form"' in body
    assert _options(body, "engine") == ["pytorch", "onnxruntime", "tvm", "tflite"]
    assert 'value="tensorrt"' not in body and 'value="pytorch" selected' in body
    assert "error" not in body[body.index('id="field-engine"'):body.index('id="field-input_size"')]
    project.refresh_from_db()
    assert project.device != odroid and project.engine == "tensorrt"


def test_a_redraw_of_the_settings_keeps_the_training_options_typed_so_far(client, editor, project, odroid, htmx):
    """Changing the device redraws the form from what was typed, not from what is saved: the advanced options
    showed the saved values again, losing the user's edits."""
    project.options = {"model": "resnet18", "train": {"epochs": 7, "batch_size": 16}}
    project.save()
    client.force_login(editor)
    url = reverse("projects:edit", args=[project.pk])
    typed = {**_edit_data(project, device=odroid.pk), "train_epochs": "12", "train_batch_size": "", "action": "refresh"}
    body = client.post(url, typed, headers=htmx).content.decode()
    epochs = body[body.index('name="train_epochs"'):]
    batch = body[body.index('name="train_batch_size"'):]
    assert 'value="12"' in epochs[:epochs.index(">")]
    assert "value=" not in batch[:batch.index(">")], "a cleared option stays cleared"
    project.refresh_from_db()
    assert project.options["train"] == {"epochs": 7, "batch_size": 16}, "a redraw saves nothing"


def test_the_settings_page_edits_the_advanced_training_options_within_their_bounds(client, editor, project, htmx):
    project.options = {"model": "resnet18", "train": {"epochs": 7, "seed": 3}}
    project.save()
    client.force_login(editor)
    url = reverse("projects:edit", args=[project.pk])
    body = client.get(url).content.decode()
    assert "Advanced training options" in body and 'name="train_epochs"' in body and 'value="7"' in body
    for name in ("train_batch_size", "train_lr", "train_optimizer", "train_augmentation", "train_patience"):
        assert f'name="{name}"' in body

    body = client.post(url, _edit_data(project, train_epochs=0, train_lr=9), headers=htmx).content.decode()
    assert "Ensure this value is greater than or equal to 1." in body and "less than or equal to 5" in body
    project.refresh_from_db()
    assert project.options["train"]["epochs"] == 7

    data = _edit_data(project, train_epochs="", train_batch_size=16, train_optimizer="adamw",
                      train_augmentation="strong", train_patience=4)
    assert client.post(url, data, headers=htmx)["HX-Redirect"]
    project.refresh_from_db()
    assert project.options == {"model": "resnet18", "train": {"seed": 3, "batch_size": 16, "optimizer": "adamw",
                                                              "augmentation": "strong", "patience": 4}}
