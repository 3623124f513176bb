"""Another team's ids, sent by someone who may change things in a team of their own: dave owns "Other lab" and
names Vision's artifact, trial, job and project next to his own. Each comes back as if it did not exist (400 for
a field, 404 for a path), and nothing is queued, kept or written for him."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from deployment.models import Trial
from projects.jobs.models import Job
from projects.jobs.storage import project_dir

from .conftest import make_trial, png_bytes


def image():
    return SimpleUploadedFile("rose.png", png_bytes())


def test_a_try_of_another_teams_model_on_ones_own_project_is_refused(world, client_for):
    dave = client_for("outsider")
    answer = dave.post("/api/trials/", {"project": world.other_project.pk, "artifact": world.artifact.pk,
                                        "image": image()}, format="multipart")
    assert answer.status_code == 400 and "artifact" in answer.json()
    page = Client()
    page.force_login(world.users["dave"])
    form = page.post(f"/projects/{world.other_project.pk}/try/", {"artifact": world.artifact.pk, "image": image()})
    assert form.status_code == 400
    assert not Trial.objects.filter(project=world.other_project).exists()
    assert not (project_dir(world.other_project.pk) / "trials").exists()


def test_filters_naming_another_teams_rows_list_nothing(world, client_for):
    make_trial(world.artifact, world.users["bob"])
    dave = client_for("outsider")
    for url in (f"/api/artifacts/?project={world.project.pk}", f"/api/artifacts/?job={world.failed_job.pk}",
                f"/api/trials/?artifact={world.artifact.pk}", f"/api/trials/?project={world.project.pk}",
                "/api/artifacts/?triable=true"):
        answer = dave.get(url)
        assert answer.status_code == 200 and answer.json()["count"] == 0, url
    # The model Try it offers Vision is listed for Vision's owner, not for dave.
    triable = client_for("owner").get("/api/artifacts/?triable=true").json()["results"]
    assert [a["id"] for a in triable] == [world.artifact.pk]


def test_another_teams_jobs_cannot_be_started_or_accepted(world, client_for):
    dave = client_for("outsider")
    jobs = Job.objects.count()
    assert dave.post(f"/api/projects/{world.project.pk}/stages/convert/run/").status_code == 404
    assert dave.post(f"/api/projects/{world.project.pk}/pipeline/run/").status_code == 404
    assert dave.post(f"/api/conversions/{world.failed_job.pk}/accept/", {"reason": "mine now"},
                     format="json").status_code == 404
    assert dave.post("/api/model-imports/", {"project": world.project.pk, "file": SimpleUploadedFile(
        "m.onnx", b"x")}, format="multipart").status_code == 400
    assert Job.objects.count() == jobs


MARKUP = '<img src=x onerror="alert(1)">'


def test_a_teammates_words_reach_the_try_pages_as_text(world):
    """Labels (a dataset's folder names), an upload's file name and a project's name are a teammate's words: the
    try page, its htmx fragment and the import page show them escaped."""
    world.project.name = f"Flowers {MARKUP}"
    world.project.save(update_fields=["name"])
    trial = make_trial(world.artifact, world.users["bob"])
    trial.image_name = f"{MARKUP}.png"
    trial.result = {"top": [{"label": MARKUP, "index": 0, "probability": 0.9}], "latency_ms": 1.0}
    trial.save()
    alice = Client()
    alice.force_login(world.users["alice"])
    pages = [alice.get(f"/projects/{world.project.pk}/try/"), alice.get(f"/trials/{trial.pk}/"),
             alice.get(f"/trials/{trial.pk}/", HTTP_HX_REQUEST="true"),
             alice.get(f"/projects/{world.project.pk}/import-model/")]
    for page in pages:
        assert page.status_code == 200
        assert MARKUP.encode() not in page.content and b"&lt;img src=x onerror=" in page.content, page.request


def test_a_try_posted_from_another_site_is_refused_for_want_of_the_csrf_token(world):
    """The try page is csrf_exempt so its upload handler is set before the body is read; it checks the token
    itself. A signed-in editor's browser posting from another site (no token) queues nothing."""
    from rest_framework.test import APIClient

    page = Client(enforce_csrf_checks=True)
    page.force_login(world.users["bob"])
    form = page.post(f"/projects/{world.project.pk}/try/", {"artifact": world.artifact.pk, "image": image()})
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(world.users["bob"])
    answer = api.post("/api/trials/", {"project": world.project.pk, "artifact": world.artifact.pk,
                                       "image": image()}, format="multipart")
    assert (form.status_code, answer.status_code) == (403, 403)
    assert not Trial.objects.exists()
