"""The project creation wizard, end to end with htmx (fragments, HX-Redirect) and without (full pages, 302)."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from projects.models import Project

from .pages_fixtures import *  # noqa: F403

URL = reverse("projects:create")


def basics(team, **extra):
    return {"step": "basics", "team": team.pk, "name": "pets-on-odroid", "description": "", "task": "classification",
            **extra}


def environment(**extra):
    return {"engine": "onnxruntime", "precision": "int8", "input_size": 224, "latency_budget_ms": "",
            "memory_limit_mb": "512", "run_mode": "auto", **extra}


def answers(team, dataset, device, **extra):
    """Everything the wizard has collected by the review step."""
    data = {**basics(team), "dataset": dataset.pk, "device": device.pk, **environment()}
    data.update(extra)
    return data


def post(client, data, headers=None):
    return client.post(URL, {"action": "next", **data}, headers=headers or {})


def test_wizard_with_htmx_swaps_fragments_and_redirects_to_the_project(client, owner, team, digits, odroid, htmx):
    client.force_login(owner)
    page = client.get(URL)
    assert b'id="wizard"' in page.content and b"<html" in page.content

    step2 = post(client, basics(team), htmx)
    assert b"<html" not in step2.content, "htmx gets the wizard fragment, not the page"
    assert b'name="step" value="dataset"' in step2.content
    assert digits.name.encode() in step2.content

    step3 = post(client, {**basics(team), "step": "dataset", "dataset": digits.pk}, htmx)
    assert b'name="step" value="device"' in step3.content
    assert odroid.name.encode() in step3.content and b"Mali-G52" in step3.content

    step4 = post(client, {**basics(team), "step": "device", "dataset": digits.pk, "device": odroid.pk}, htmx)
    assert b'name="step" value="environment"' in step4.content
    # Optional and empty: the device's typical budget shows as the placeholder and applies if left empty.
    assert b'placeholder="250"' in step4.content and b"Empty: 250 ms" in step4.content
    assert not re.search(rb'id="id_latency_budget_ms"[^>]*value=', step4.content)
    assert b'value="tensorrt"' not in step4.content, "only the device's engines are offered"

    review = post(client, {**answers(team, digits, odroid), "step": "environment"}, htmx)
    assert b'name="step" value="review"' in review.content
    assert b"ONNX Runtime" in review.content and b"250 ms" in review.content
    assert b"Paper rules: ResNet-34" in review.content, "the Review step says which model the recommender picks"

    created = client.post(URL, {**answers(team, digits, odroid), "step": "review", "action": "create"},
                          headers=htmx)
    project = Project.objects.get(name="pets-on-odroid")
    assert created.status_code == 200
    assert created["HX-Redirect"] == reverse("projects:detail", args=[project.pk])
    assert (project.team, project.dataset, project.device, project.engine) == (team, digits, odroid, "onnxruntime")
    assert (project.precision, project.latency_budget_ms, project.memory_limit_mb, project.run_mode) == (
        "int8", 250.0, 512, "auto")
    assert project.created_by == owner


def test_wizard_without_javascript_renders_pages_and_redirects(client, editor, team, digits, jetson):
    client.force_login(editor)
    step2 = post(client, basics(team))
    assert b"<html" in step2.content and b'name="step" value="dataset"' in step2.content
    review = post(client, {**answers(team, digits, jetson, engine="tensorrt", precision="fp16"), "step": "environment"})
    assert b"<html" in review.content and b"TensorRT" in review.content

    created = client.post(URL, {**answers(team, digits, jetson, engine="tensorrt", precision="fp16"),
                                "step": "review", "action": "create"})
    project = Project.objects.get(name="pets-on-odroid")
    assert created.status_code == 302
    assert created.url == reverse("projects:detail", args=[project.pk])


def test_engine_the_device_cannot_run_shows_project_validates_message_next_to_the_field(
        client, owner, team, digits, odroid, htmx):
    client.force_login(owner)
    response = post(client, {**answers(team, digits, odroid, engine="tensorrt"), "step": "environment"}, htmx)
    body = response.content.decode()
    assert 'name="step" value="environment"' in body, "the step stays put"
    field = body[body.index('id="field-engine"'):]
    field = field[:field.index("</div>", field.index("<select"))]
    assert "Test_Odroid_N2 does not run TensorRT" in field
    assert not Project.objects.exists()


def test_changing_the_engine_redraws_the_step_with_its_precisions(client, owner, team, digits, jetson, htmx):
    client.force_login(owner)
    data = {**answers(team, digits, jetson, engine="pytorch", precision="int8"), "step": "environment"}
    response = client.post(URL, {**data, "action": "refresh"}, headers=htmx)
    body = response.content.decode()
    assert 'name="step" value="environment"' in body
    assert 'value="int8"' not in body[body.index('id="field-precision"'):], "PyTorch offers no INT8"
    assert "PyTorch does not support int8" in body


def test_refresh_does_not_nag_about_fields_not_filled_yet(client, owner, team, digits, htmx):
    client.force_login(owner)
    response = client.post(URL, {**basics(team), "step": "dataset", "action": "refresh"}, headers=htmx)
    assert b"This field is required" not in response.content
    assert digits.name.encode() in response.content


def test_the_dataset_step_offers_only_the_teams_datasets_of_the_task(
        client, owner, team, digits, cars, outsider_team, htmx):
    from projects.tests import factories

    theirs = factories.dataset(outsider_team, name="their-pets")
    client.force_login(owner)
    body = post(client, basics(team), htmx).content.decode()
    assert digits.name in body
    assert cars.name not in body, "a detection dataset for a classification project"
    assert theirs.name not in body


def test_a_tampered_dataset_from_another_team_sends_the_user_back_to_the_dataset_step(
        client, owner, team, odroid, outsider_team, htmx):
    from projects.tests import factories

    theirs = factories.dataset(outsider_team, name="their-pets")
    client.force_login(owner)
    response = post(client, {**answers(team, theirs, odroid), "step": "environment"}, htmx)
    assert b'name="step" value="dataset"' in response.content
    assert b"Select a valid choice" in response.content


def test_a_team_the_user_only_views_cannot_be_chosen(client, outsider, team, htmx):
    client.force_login(outsider)
    response = post(client, basics(team), htmx)
    assert b'name="step" value="basics"' in response.content
    assert b"Select a valid choice" in response.content


def test_a_taken_name_is_reported_on_the_first_step(client, owner, team, project, htmx):
    client.force_login(owner)
    response = post(client, basics(team, name=project.name), htmx)
    assert b'name="step" value="basics"' in response.content
    assert b"already has a project named" in response.content


def test_a_name_taken_meanwhile_goes_back_to_the_first_step_at_create(
        client, owner, team, digits, jetson, odroid, htmx):
    from projects.tests import factories

    client.force_login(owner)
    data = {**answers(team, digits, odroid), "step": "review", "action": "create"}
    factories.project(team, name=data["name"], dataset=digits, device=jetson)
    response = client.post(URL, data, headers=htmx)
    assert "HX-Redirect" not in response
    assert b'name="step" value="basics"' in response.content
    assert b"already has a project named" in response.content


def test_back_keeps_the_answers_of_the_step_left(client, owner, team, digits, odroid, htmx):
    client.force_login(owner)
    data = {**answers(team, digits, odroid, input_size="320"), "step": "environment", "action": "back"}
    body = client.post(URL, data, headers=htmx).content.decode()
    assert 'name="step" value="device"' in body
    assert '<input type="hidden" name="input_size" value="320">' in body
    assert f'name="device" value="{odroid.pk}" checked' in body


@pytest.mark.parametrize("hx", [True, False])
def test_viewer_cannot_post_to_the_wizard(client, viewer, team, hx):
    client.force_login(viewer)
    response = post(client, basics(team), {"HX-Request": "true"} if hx else None)
    assert response.status_code == 403


# --- what a new user meets (issue 9) ----------------------------------------------------------------------------


def test_a_dataset_is_uploaded_and_picked_inside_the_wizard(client, owner, team, htmx, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from projects.datasets.digits import make_digits_zip

    settings.MEDIA_ROOT = tmp_path / "media"
    archive = make_digits_zip(tmp_path / "digits.zip", upscale=1).read_bytes()
    client.force_login(owner)
    step = post(client, basics(team), htmx).content.decode()
    assert "The team has no image classification dataset yet: upload one here." in step
    assert 'data-testid="wizard-upload" open' in step, "with nothing to pick, the upload is open"

    response = client.post(URL, {**basics(team), "step": "dataset", "action": "upload", "upload-name": "digits",
                                 "upload-file": SimpleUploadedFile("digits.zip", archive)}, headers=htmx)
    body = response.content.decode()
    from projects.models import Dataset

    dataset = Dataset.objects.get(team=team, name="digits")
    assert 'name="step" value="dataset"' in body, "the user stays on the step, with the new dataset"
    assert f'name="dataset" value="{dataset.pk}" checked' in body
    assert "Uploaded digits: 1797 images, 10 classes" in body and dataset.created_by == owner

    step4 = post(client, {**basics(team), "step": "dataset", "dataset": dataset.pk}, htmx)
    assert b'name="step" value="device"' in step4.content


def test_a_refused_upload_in_the_wizard_shows_why_next_to_the_file(client, owner, team, digits, htmx):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(owner)
    body = client.post(URL, {**basics(team), "step": "dataset", "action": "upload", "upload-name": "notes",
                             "upload-file": SimpleUploadedFile("notes.txt", b"hi")}, headers=htmx).content.decode()
    field = body[body.index('id="field-upload-file"'):]
    assert "notes.txt is not a .zip archive" in field[:field.index("</div>")]
    assert "This field is required" not in body, "no nagging about the dataset not picked yet"
    assert 'name="step" value="dataset"' in body


def test_devices_are_grouped_by_class_and_searchable(client, owner, team, digits, jetson, odroid, htmx):
    from projects.tests import factories

    factories.device("Test_Galaxy", accelerator_kind="adreno_gpu", os="Android 12", engines=["onnxruntime"])
    client.force_login(owner)
    body = post(client, {**basics(team), "step": "dataset", "dataset": digits.pk}, htmx).content.decode()
    titles = [t.split("<")[0].strip() for t in body.split('class="device-group-title">')[1:]]
    assert titles == ["Cloud", "Kubernetes", "PC and servers", "Jetson", "Phones", "Boards"]
    assert "data-device-search" in body
    card = body[body.index(f'value="{odroid.pk}"') - 400:body.index(f'value="{odroid.pk}"')]
    assert "Boards Test_Odroid_N2" in card and "Mali-G52" in card, "the search reads name, class and specs"


def test_input_size_and_memory_limit_are_checked_on_their_own_step(client, owner, team, digits, odroid, htmx):
    client.force_login(owner)
    for field, value, message in (("input_size", 0, "Input size must be between 8 and 2048 pixels."),
                                  ("memory_limit_mb", 999_999, "Test_Odroid_N2 has 4096 MiB")):
        body = post(client, {**answers(team, digits, odroid, **{field: value}), "step": "environment"},
                    htmx).content.decode()
        assert 'name="step" value="environment"' in body, f"{field}={value} stops the step it is on"
        where = body[body.index(f'id="field-{field}"'):]
        assert message in where[:where.index("</div>", where.index("<input"))]
        assert "autofocus" in where[:where.index(">", where.index("<input"))], "the cursor goes to the error"


def test_the_input_size_defaults_to_the_datasets_image_size(client, owner, team, odroid, htmx):
    from projects.tests import factories

    small = factories.dataset(team, name="small-photos", classes=("a", "b", "c"))
    small.stats = {"common_sizes": [{"width": 64, "height": 64, "count": 270}]}
    small.save()
    client.force_login(owner)
    data = {**basics(team), "step": "device", "dataset": small.pk, "device": odroid.pk}
    body = post(client, data, htmx).content.decode()
    assert 'name="input_size" value="64"' in body and "images are about 64 px" in body


def test_choices_the_pipeline_cannot_build_are_disabled_with_the_reason(client, owner, team, digits, odroid, htmx,
                                                                       tmp_path, monkeypatch):
    monkeypatch.setenv("TANGO_VENV_ROOT", str(tmp_path / "no-side-envs"))  # TFLite's environment not installed
    client.force_login(owner)
    data = {**basics(team), "step": "device", "dataset": digits.pk, "device": odroid.pk}
    body = post(client, data, htmx).content.decode()
    engine = body[body.index('id="field-engine"'):body.index('id="field-precision"')]
    assert 'value="tflite" disabled title="TensorFlow Lite needs its own environment, which is not installed' in engine
    assert 'value="onnxruntime" selected' in engine or 'value="pytorch" selected' in engine
    assert "<strong>TensorFlow Lite</strong>: TensorFlow Lite needs its own environment, which is not" in engine

    refused = post(client, {**answers(team, digits, odroid, engine="tflite"), "step": "environment"}, htmx)
    assert b'name="step" value="environment"' in refused.content
    assert b"TensorFlow Lite needs its own environment, which is not installed" in refused.content


def test_detection_offers_only_what_its_convert_stage_builds(client, owner, team, cars, jetson, htmx):
    client.force_login(owner)
    data = {**basics(team, task="detection"), "step": "device", "dataset": cars.pk, "device": jetson.pk}
    body = post(client, data, htmx).content.decode()
    engine = body[body.index('id="field-engine"'):body.index('id="field-precision"')]
    assert 'value="tensorrt" disabled' not in engine and 'value="tensorrt"' in engine
    assert 'value="tvm" disabled' in engine  # TVM builds classifiers only
    precision = body[body.index('id="field-precision"'):body.index('id="field-input_size"')]
    assert 'value="fp16" disabled' not in precision and 'value="fp16"' in precision


@pytest.fixture
def tiny(team):
    """Six training images in one class, forty in the other, each 32 px: every warning the Review step has."""
    from projects.tests import factories

    tiny = factories.dataset(team, name="tiny", classes=("a", "b"))
    tiny.stats = {"class_counts": {"a": {"train": 6, "val": 2}, "b": {"train": 40, "val": 8}},
                  "common_sizes": [{"width": 32, "height": 32, "count": 56}]}
    tiny.save()
    return tiny


def review_page(client, owner, team, tiny, odroid, htmx) -> str:
    client.force_login(owner)
    return post(client, {**answers(team, tiny, odroid, precision="fp32"), "step": "environment"},
                htmx).content.decode()


def test_review_warns_about_a_tiny_dataset_and_names_the_model(client, owner, team, tiny, odroid, htmx):
    body = review_page(client, owner, team, tiny, odroid, htmx)
    warnings = body[body.index('data-testid="review-warnings"'):]
    assert "A small dataset: 6 training images in class &#x27;a&#x27;" in warnings
    assert "Imbalanced classes" in warnings and "enlarges them 7.0×" in warnings
    assert 'data-testid="review-model">Paper rules: ResNet-34' in body


def test_a_small_dataset_of_even_classes_is_not_blamed_on_one_class():
    """A walk's 4 classes of 16 training images each read "16 training images in class 'astronaut'", as if that class
    were short; an even dataset is small in every class."""
    from projects.dataset_stats import dataset_warnings

    even = {"class_counts": {c: {"train": 16, "val": 4} for c in ("astronaut", "camera", "cat", "coffee")}}
    assert dataset_warnings(even)[0].startswith("A small dataset: 16 training images in each class. ")


def test_the_api_reviews_a_project_as_the_wizard_does_and_saves_nothing(client, owner, team, tiny, odroid, htmx):
    from html import unescape

    from rest_framework.test import APIClient

    body = review_page(client, owner, team, tiny, odroid, htmx)
    page_model = unescape(re.search(r'data-testid="review-model">([^<]*)<', body).group(1))
    listed = body[body.index('data-testid="review-warnings"'):]
    page_warnings = [unescape(w) for w in re.findall(r"<li>([^<]*)</li>", listed[:listed.index("</ul>")])]

    api = APIClient()
    api.force_login(owner)
    project = {"team": team.pk, "name": "pets-on-odroid", "task": "classification", "dataset": tiny.pk,
               "device": odroid.pk, "engine": "onnxruntime", "precision": "fp32", "input_size": 224,
               "memory_limit_mb": 512}
    review = api.post("/api/projects/review/", project, format="json")
    assert review.status_code == 200, review.data
    assert review.data == {"model": page_model, "warnings": page_warnings}
    assert page_model.startswith("Paper rules: ResNet-34") and len(page_warnings) >= 3
    assert not Project.objects.filter(name="pets-on-odroid").exists(), "a review saves nothing"
    refused = api.post("/api/projects/review/", {**project, "input_size": 4}, format="json")
    assert refused.status_code == 400 and "between 8 and 2048" in str(refused.data["input_size"])


def test_create_in_automatic_mode_starts_the_pipeline(client, owner, team, digits, odroid, htmx):
    from projects.jobs.models import Job

    client.force_login(owner)
    response = client.post(URL, {**answers(team, digits, odroid, precision="fp32"), "step": "review",
                                 "action": "create"}, headers=htmx)
    project = Project.objects.get(name="pets-on-odroid")
    assert response["HX-Redirect"] == reverse("projects:detail", args=[project.pk])
    assert list(Job.objects.filter(project=project).values_list("stage", "status")) == [("recommend", "queued")]
    page = client.get(response["HX-Redirect"]).content.decode()
    assert "Automatic mode: Recommend is queued" in page
    assert 'data-testid="run-pipeline" disabled title="A run is in progress: Recommend is queued.' in page


def test_step_by_step_mode_waits_on_create(client, owner, team, digits, odroid, htmx):
    client.force_login(owner)
    client.post(URL, {**answers(team, digits, odroid, precision="fp32", run_mode="step"), "step": "review",
                      "action": "create"}, headers=htmx)
    assert not Project.objects.get(name="pets-on-odroid").jobs.exists()


def test_the_environment_step_takes_advanced_training_options_into_the_project(client, owner, team, digits, odroid,
                                                                                htmx):
    client.force_login(owner)
    step = post(client, {**basics(team), "step": "device", "dataset": digits.pk, "device": odroid.pk},
                htmx).content.decode()
    assert 'data-testid="training-options"' in step and 'name="train_epochs"' in step

    refused = post(client, {**answers(team, digits, odroid, precision="fp32"), "train_epochs": "0",
                            "step": "environment"}, htmx).content.decode()
    assert 'name="step" value="environment"' in refused and 'data-testid="training-options" open' in refused

    data = {**answers(team, digits, odroid, precision="fp32", run_mode="step"), "train_epochs": "3"}
    review = post(client, {**data, "step": "environment"}, htmx).content.decode()
    assert 'name="train_epochs" value="3"' in review, "carried to the Review step"
    assert "epochs 3" in review
    client.post(URL, {**data, "step": "review", "action": "create"}, headers=htmx)
    assert Project.objects.get(name="pets-on-odroid").options == {"train": {"epochs": 3}}


# --- a reload or the browser's Back keeps the answers (projects.wizard.Drafts) ------------------------------------

def draft_of(response) -> tuple[str, str]:
    """(draft id, step) from the URL htmx was told to show."""
    url = response.get("HX-Push-Url") or response.get("HX-Replace-Url")
    match = re.fullmatch(re.escape(URL) + r"\?draft=([\w-]+)&step=(\w+)", url or "")
    assert match, url
    return match.group(1), match.group(2)


def test_a_reload_mid_wizard_redraws_the_step_with_the_answers_given(client, owner, team, digits, odroid, htmx):
    client.force_login(owner)
    first = client.get(URL).content.decode()
    draft = re.search(r'name="draft" value="([\w-]+)"', first).group(1)
    assert f'data-wizard-url="{URL}?draft={draft}&amp;step=basics"' in first  # tango.js puts it in the address bar
    step2 = post(client, {**basics(team, description="cats and dogs"), "draft": draft}, htmx)
    assert draft_of(step2) == (draft, "dataset") and "HX-Push-Url" in step2, "a new step is a new history entry"
    step3 = post(client, {**basics(team, description="cats and dogs"), "step": "dataset", "dataset": digits.pk,
                          "draft": draft}, htmx)
    assert draft_of(step3) == (draft, "device")

    # The reload: a plain GET of the URL the page shows, with no answers posted.
    reloaded = client.get(URL, {"draft": draft, "step": "device"}).content.decode()
    assert "<html" in reloaded and 'name="step" value="device"' in reloaded
    assert '<input type="hidden" name="name" value="pets-on-odroid">' in reloaded
    assert f'<input type="hidden" name="dataset" value="{digits.pk}">' in reloaded
    # Back to the first step: its fields are filled in, the later answers carried.
    back = client.get(URL, {"draft": draft, "step": "basics"}).content.decode()
    assert 'name="step" value="basics"' in back
    assert 'value="pets-on-odroid"' in back and "cats and dogs</textarea>" in back
    assert f'<input type="hidden" name="dataset" value="{digits.pk}">' in back
    # Not past the furthest step reached (a URL typed or kept from an old draft).
    assert 'name="step" value="device"' in client.get(URL, {"draft": draft, "step": "review"}).content.decode()
    # The draft id alone redraws the step last shown.
    assert 'name="step" value="device"' in client.get(URL, {"draft": draft}).content.decode()

    # htmx's Back to a step it pushed asks for the whole page (it keeps no snapshot of the wizard)
    restored = client.get(URL, {"draft": draft, "step": "dataset"},
                          headers={**htmx, "HX-History-Restore-Request": "true"}).content.decode()
    assert "<html" in restored and f'name="dataset" value="{digits.pk}" checked' in restored

    # Create drops the draft: its URL starts a new project.
    created = client.post(URL, {**answers(team, digits, odroid), "step": "review", "action": "create",
                                "draft": draft}, headers=htmx)
    assert "HX-Redirect" in created
    fresh = client.get(URL, {"draft": draft, "step": "device"}).content.decode()
    assert 'name="step" value="basics"' in fresh and 'value="pets-on-odroid"' not in fresh


def test_a_draft_is_the_users_own_and_checked_again_when_redrawn(client, owner, editor, team, digits, htmx):
    client.force_login(owner)
    step3 = post(client, {**basics(team), "step": "dataset", "dataset": digits.pk, "draft": "mine"}, htmx)
    assert draft_of(step3) == ("mine", "device")
    # Another user (another session) who learns the URL gets an empty wizard.
    other = Client()
    other.force_login(editor)
    theirs = other.get(URL, {"draft": "mine", "step": "device"}).content.decode()
    assert 'name="step" value="basics"' in theirs and 'value="pets-on-odroid"' not in theirs
    # The dataset deleted since: the redraw sends the owner back to the step that picks it, as a POST would.
    digits.delete()
    again = client.get(URL, {"draft": "mine", "step": "device"}).content.decode()
    assert 'name="step" value="dataset"' in again and "Select a valid choice" in again


def test_a_redraw_of_the_same_step_replaces_its_history_entry_and_drafts_are_bounded(client, owner, team, jetson,
                                                                                        digits, htmx):
    from projects.wizard import Drafts

    client.force_login(owner)
    refresh = post(client, {**basics(team), "step": "device", "dataset": digits.pk, "device": jetson.pk,
                            "action": "refresh", "draft": "d0"}, htmx)
    assert draft_of(refresh) == ("d0", "device") and "HX-Replace-Url" in refresh and "HX-Push-Url" not in refresh
    for n in range(1, Drafts.KEEP + 2):
        post(client, {**basics(team), "draft": f"d{n}"}, htmx)
    kept = client.session[Drafts.KEY]
    assert list(kept) == [f"d{n}" for n in range(2, Drafts.KEEP + 2)], "the newest five"
