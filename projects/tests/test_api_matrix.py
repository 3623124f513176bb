"""Who may do what, endpoint by endpoint: the access rules of the REST API as one table.

Outsiders (and staff, who are no team's members) get 404 for a team's rows, never 403: they must not learn that
the rows exist. Viewers read and get 403 on writes. Anonymous requests get 401 with a `WWW-Authenticate: Token`
challenge (token authentication is listed first in REST_FRAMEWORK).
"""

import re

import pytest
from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.generators import SchemaGenerator

from projects.jobs.models import JobStatus
from projects.tokens import api_token_create
from recommender.models import Device
from visualizer.models import Architecture

from . import factories
from .conftest import make_job, make_trial, png_bytes
from .test_api_datasets import upload_body

PERSONAS = ("owner", "editor", "viewer", "outsider", "staff", "anonymous")


def device_body(name):
    return {
        "name": name, "tier": "on_device", "cpu_arch": "aarch64", "accelerator_kind": "nvidia_gpu",
        "peak_fp32_gflops": 470.0, "memory_bandwidth_gbps": 25.6, "memory_mb": 4096, "os": "JetPack 4.6",
        "engines": ["tensorrt", "onnxruntime"],
    }


def weights_body(w):
    import io

    import torch
    from django.core.files.uploadedfile import SimpleUploadedFile

    buffer = io.BytesIO()
    torch.save({"fc.weight": torch.zeros(2, 4), "fc.bias": torch.zeros(2)}, buffer)
    return {"file": SimpleUploadedFile("pretrained.pt", buffer.getvalue())}


def architecture_body(w):
    # A small input keeps the graph quick to build; the project's own size is what the page uses.
    w.project.input_size = 32
    w.project.save(update_fields=["input_size"])
    return {"project": w.project.pk, "base_model": "resnet18", "edits": [
        {"op": "insert", "after": "layer1_0_relu", "layer": "Dropout"}]}


def trial_body(w):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"project": w.project.pk, "artifact": w.artifact.pk, "image": SimpleUploadedFile("rose.png", png_bytes())}


def import_body(w):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"project": w.project.pk, "file": SimpleUploadedFile("model.onnx", b"not an onnx model")}


def calibrate_body(w):
    """No other calibration queued (one at a time): the world's queued one is cancelled first."""
    from projects.jobs.models import Job

    Job.objects.filter(pk=ids(w)["queued_catalog_job"]).update(status=JobStatus.CANCELLED)
    return {"quick": True}


def project_body(w, name):
    return {"team": w.team.pk, "name": name, "task": "classification", "dataset": w.dataset.pk,
            "device": w.device.pk, "engine": "pytorch", "latency_budget_ms": 50}


# endpoint: (method, path, body). Paths are filled from the world: {team}, {project}, … are ids.
REQUESTS = {
    "list teams": ("GET", "/api/teams/", None),
    "create team": ("POST", "/api/teams/", {"name": "Night shift"}),
    "read team": ("GET", "/api/teams/{team}/", None),
    "list members": ("GET", "/api/teams/{team}/members/", None),
    "add member": ("POST", "/api/teams/{team}/members/", {"username": "frank", "role": "viewer"}),
    "change member role": ("PATCH", "/api/teams/{team}/members/{member}/", {"role": "editor"}),
    "remove member": ("DELETE", "/api/teams/{team}/members/{member}/", None),
    "list devices": ("GET", "/api/devices/", None),
    "read device": ("GET", "/api/devices/{device}/", None),
    "read device records": ("GET", "/api/devices/{device}/records/", None),
    "read device choices": ("GET", "/api/devices/{device}/choices/", None),
    "delete device record": ("DELETE", "/api/devices/{device}/records/{record}/", None),
    "delete a team's device record": ("DELETE", "/api/devices/{device}/records/{team_record}/", None),
    "create device": ("POST", "/api/devices/", device_body("Jetson_Test")),
    "replace device": ("PUT", "/api/devices/{spare_device}/", device_body("Spare_Board")),
    "change device": ("PATCH", "/api/devices/{device}/", {"notes": "Measured in the lab."}),
    "delete device": ("DELETE", "/api/devices/{spare_device}/", None),
    "calibrate this server": ("POST", "/api/devices/{host_device}/calibrate/", lambda w: calibrate_body(w)),
    # Only the device that is this server measures itself: staff are told so for any other (409).
    "calibrate another device": ("POST", "/api/devices/{device}/calibrate/", {"quick": True}),
    "list engines": ("GET", "/api/engines/", None),
    "read engine": ("GET", "/api/engines/{engine}/", None),
    "list datasets": ("GET", "/api/datasets/", None),
    "read dataset": ("GET", "/api/datasets/{dataset}/", None),
    "upload dataset": ("POST", "/api/datasets/", upload_body),
    "delete dataset": ("DELETE", "/api/datasets/{spare_dataset}/", None),
    "list projects": ("GET", "/api/projects/", None),
    "create project": ("POST", "/api/projects/", lambda w: project_body(w, "Second try")),
    "review project": ("POST", "/api/projects/review/", lambda w: project_body(w, "Second try")),
    "read project": ("GET", "/api/projects/{project}/", None),
    "replace project": ("PUT", "/api/projects/{project}/", lambda w: project_body(w, "Renamed")),
    "change project": ("PATCH", "/api/projects/{project}/", {"description": "Sorts flowers."}),
    "delete project": ("DELETE", "/api/projects/{spare_project}/", None),
    "list project jobs": ("GET", "/api/projects/{project}/jobs/", None),
    "run stage": ("POST", "/api/projects/{project}/stages/{stage}/run/", None),
    "run pipeline": ("POST", "/api/projects/{project}/pipeline/run/", None),
    "read recommendation": ("GET", "/api/projects/{project}/recommendation/", None),
    # No recommend stage has succeeded in this world: editors get past access and are told to run it (400).
    "choose model": ("POST", "/api/projects/{project}/recommendation/choice/", {"model": "resnet18"}),
    "upload weights": ("POST", "/api/projects/{project}/weights/", weights_body),
    "clear weights": ("DELETE", "/api/projects/{project}/weights/", None),
    "list jobs": ("GET", "/api/jobs/", None),
    "read job": ("GET", "/api/jobs/{failed_job}/", None),
    "read job log": ("GET", "/api/jobs/{failed_job}/log/", None),
    "download job log": ("GET", "/api/jobs/{failed_job}/log.txt", None),
    "cancel job": ("POST", "/api/jobs/{queued_job}/cancel/", None),
    "retry job": ("POST", "/api/jobs/{failed_job}/retry/", None),
    "read catalog job": ("GET", "/api/jobs/{catalog_job}/", None),
    "read catalog job log": ("GET", "/api/jobs/{catalog_job}/log/", None),
    "download catalog job log": ("GET", "/api/jobs/{catalog_job}/log.txt", None),
    "cancel catalog job": ("POST", "/api/jobs/{queued_catalog_job}/cancel/", None),
    # Another calibration is queued in this world: staff get past access and are told so (409).
    "retry catalog job": ("POST", "/api/jobs/{catalog_job}/retry/", None),
    "list artifacts": ("GET", "/api/artifacts/", None),
    "list triable artifacts": ("GET", "/api/artifacts/?triable=true", None),
    "read artifact": ("GET", "/api/artifacts/{artifact}/", None),
    "download artifact": ("GET", "/api/artifacts/{artifact}/download/", None),
    "list trials": ("GET", "/api/trials/", None),
    "create trial": ("POST", "/api/trials/", trial_body),
    "read trial": ("GET", "/api/trials/{trial}/", None),
    "read trial image": ("GET", "/api/trials/{trial}/image/", None),
    "import model": ("POST", "/api/model-imports/", import_body),
    "list searches": ("GET", "/api/searches/", None),
    "read search": ("GET", "/api/searches/{search_job}/", None),
    "adopt search": ("POST", "/api/searches/{search_job}/adopt/", {}),
    "accept conversion": ("POST", "/api/conversions/{failed_job}/accept/", {"reason": "close enough"}),
    "list architectures": ("GET", "/api/architectures/", None),
    "read architecture": ("GET", "/api/architectures/{architecture}/", None),
    "save architecture": ("POST", "/api/architectures/", lambda w: architecture_body(w)),
    "preview architecture": ("POST", "/api/architectures/preview/", lambda w: architecture_body(w)),
    "choose architecture": ("POST", "/api/architectures/{architecture}/choose/", {}),
    "list tokens": ("GET", "/api/tokens/", None),
    "create token": ("POST", "/api/tokens/", {"name": "CI"}),
    "revoke token": ("DELETE", "/api/tokens/{bobs_token}/", None),
    "read team audit": ("GET", "/api/teams/{team}/audit/", None),
}

EXPECTED = {
    #                       owner  editor viewer outsider staff anonymous
    "list teams":           (200,  200,   200,   200,     200,  401),
    "create team":          (201,  201,   201,   201,     201,  401),
    "read team":            (200,  200,   200,   404,     404,  401),
    "list members":         (200,  200,   200,   404,     404,  401),
    "add member":           (202,  403,   403,   404,     404,  401),
    "change member role":   (200,  403,   403,   404,     404,  401),
    "remove member":        (204,  403,   403,   404,     404,  401),
    "list devices":         (200,  200,   200,   200,     200,  401),
    "read device":          (200,  200,   200,   200,     200,  401),
    "read device records":  (200,  200,   200,   200,     200,  401),
    "read device choices":  (200,  200,   200,   200,     200,  401),
    "delete device record": (403,  403,   403,   403,     204,  401),
    # Staff curate the records they can see: another team's does not exist for them.
    "delete a team's device record": (403,  403,   403,   403,     404,  401),
    "create device":        (403,  403,   403,   403,     201,  401),
    "replace device":       (403,  403,   403,   403,     200,  401),
    "change device":        (403,  403,   403,   403,     200,  401),
    "delete device":        (403,  403,   403,   403,     204,  401),
    "calibrate this server":    (403,  403,   403,   403,     202,  401),
    "calibrate another device": (403,  403,   403,   403,     409,  401),
    "list engines":         (200,  200,   200,   200,     200,  401),
    "read engine":          (200,  200,   200,   200,     200,  401),
    "list datasets":        (200,  200,   200,   200,     200,  401),
    "read dataset":         (200,  200,   200,   404,     404,  401),
    # Outsiders (editors of their own team) name a team that is not theirs: the id "does not exist" for them (400).
    # Staff, who edit no team, are refused before the upload is read (403), as viewers are (projects.uploads).
    "upload dataset":       (201,  201,   403,   400,     403,  401),
    "delete dataset":       (204,  204,   403,   404,     404,  401),
    "list projects":        (200,  200,   200,   200,     200,  401),
    "create project":       (201,  201,   403,   400,     400,  401),
    "review project":       (200,  200,   403,   400,     400,  401),
    "read project":         (200,  200,   200,   404,     404,  401),
    "replace project":      (200,  200,   403,   404,     404,  401),
    "change project":       (200,  200,   403,   404,     404,  401),
    "delete project":       (204,  204,   403,   404,     404,  401),
    "list project jobs":    (200,  200,   200,   404,     404,  401),
    "run stage":            (202,  202,   403,   404,     404,  401),
    # A train job is queued in this world: editors get past access and are told a run is in progress (409).
    "run pipeline":         (409,  409,   403,   404,     404,  401),
    "read recommendation":  (200,  200,   200,   404,     404,  401),
    "choose model":         (400,  400,   403,   404,     404,  401),
    "upload weights":       (200,  200,   403,   404,     404,  401),
    "clear weights":        (200,  200,   403,   404,     404,  401),
    "list jobs":            (200,  200,   200,   200,     200,  401),
    "read job":             (200,  200,   200,   404,     404,  401),
    "read job log":         (200,  200,   200,   404,     404,  401),
    "download job log":     (200,  200,   200,   404,     404,  401),
    "cancel job":           (200,  200,   403,   404,     404,  401),
    "retry job":            (202,  202,   403,   404,     404,  401),
    # Catalog jobs (no project: this server measuring itself) are staff's; for anyone else they do not exist.
    "read catalog job":         (404,  404,   404,   404,     200,  401),
    "read catalog job log":     (404,  404,   404,   404,     200,  401),
    "download catalog job log": (404,  404,   404,   404,     200,  401),
    "cancel catalog job":       (404,  404,   404,   404,     200,  401),
    "retry catalog job":        (404,  404,   404,   404,     409,  401),
    # A search that failed cannot be adopted: members who may change the project are told why (409).
    "list searches":        (200,  200,   200,   200,     200,  401),
    "read search":          (200,  200,   200,   404,     404,  401),
    "adopt search":         (409,  409,   403,   404,     404,  401),
    # The failed job is not a conversion that failed parity: editors are told so (409).
    "accept conversion":    (409,  409,   403,   404,     404,  401),
    # Outsiders name a project that is not theirs: it "does not exist" for them (400). Members may preview.
    "list architectures":   (200,  200,   200,   200,     200,  401),
    "read architecture":    (200,  200,   200,   404,     404,  401),
    "save architecture":    (201,  201,   403,   400,     400,  401),
    "preview architecture": (200,  200,   200,   400,     400,  401),
    "choose architecture":  (200,  200,   403,   404,     404,  401),
    # Tokens are their owner's alone: bob's token does not exist for anyone else, staff included.
    "list tokens":          (200,  200,   200,   200,     200,  401),
    "create token":         (201,  201,   201,   201,     201,  401),
    "revoke token":         (404,  204,   404,   404,     404,  401),
    "read team audit":      (200,  403,   403,   404,     404,  401),
    "list artifacts":       (200,  200,   200,   200,     200,  401),
    "list triable artifacts": (200,  200,   200,   200,     200,  401),
    "read artifact":        (200,  200,   200,   404,     404,  401),
    "download artifact":    (200,  200,   200,   404,     404,  401),
    "list trials":          (200,  200,   200,   200,     200,  401),
    # Outsiders name a project that is not theirs: it does not exist for them (400). Staff edit no team: refused
    # before the image is read (403).
    "create trial":         (201,  201,   403,   400,     403,  401),
    "read trial":           (200,  200,   200,   404,     404,  401),
    "read trial image":     (200,  200,   200,   404,     404,  401),
    # A stage of the project is queued in this world: members who may change it are told to wait (409). Staff edit no
    # team: refused before the file is read (403).
    "import model":         (409,  409,   403,   400,     403,  401),
}

# Operations outside the persona table, each with its own tests.
NOT_IN_MATRIX = {
    ("POST", "/api/auth/token/"),  # username and password, no session: test_api_auth
    ("POST", "/api/projects/demo/"),  # builds a 1797-image dataset per call: test_api_projects
}

CASES = [
    pytest.param(endpoint, persona, status, id=f"{endpoint} as {persona}")
    for endpoint, statuses in EXPECTED.items()
    for persona, status in zip(PERSONAS, statuses, strict=True)
]


def ids(w):
    if not hasattr(w, "bobs_token"):
        w.bobs_token, _ = api_token_create(user=w.users["bob"], name="bob's laptop")
        w.search_job = make_job(w.project, "hpo", JobStatus.FAILED, ["Search queued.", "No trial finished."])
        w.architecture = Architecture.objects.create(project=w.project, version=1, base_model="resnet18",
                                                     input_size=w.project.input_size, num_classes=2)
        w.trial = make_trial(w.artifact, w.users["bob"])
        w.host_device = Device.objects.get(is_host=True)
        w.catalog_job = make_job(None, "calibrate", JobStatus.FAILED, ["Calibrate queued.", "Boom."])
        w.queued_catalog_job = make_job(None, "calibrate", JobStatus.QUEUED, ["Calibrate queued."])
        w.record = factories.benchmark_record(w.device)
        w.team_record = factories.benchmark_record(w.device, team=w.team)
    return {
        "team": w.team.pk, "member": "carol", "device": w.device.pk, "spare_device": w.spare_device.pk,
        "engine": "onnxruntime", "dataset": w.dataset.pk, "spare_dataset": w.spare_dataset.pk,
        "project": w.project.pk, "spare_project": w.spare_project.pk, "stage": "recommend",
        "failed_job": w.failed_job.pk, "queued_job": w.queued_job.pk, "artifact": w.artifact.pk,
        "bobs_token": w.bobs_token.pk, "search_job": w.search_job.pk, "trial": w.trial.pk,
        "architecture": w.architecture.pk, "host_device": w.host_device.pk, "catalog_job": w.catalog_job.pk,
        "queued_catalog_job": w.queued_catalog_job.pk, "record": w.record.pk,
        "team_record": w.team_record.pk,
    }


@pytest.mark.parametrize(("endpoint", "persona", "expected"), CASES)
def test_access_matrix(endpoint, persona, expected, world, client_for):
    method, path, body = REQUESTS[endpoint]
    body = body(world) if callable(body) else body
    multipart = any(isinstance(value, UploadedFile) for value in (body or {}).values())
    send = getattr(client_for(persona), method.lower())
    response = send(path.format(**ids(world)), body, format="multipart" if multipart else "json")
    assert response.status_code == expected, getattr(response, "data", response.content)


def test_the_matrix_covers_every_operation_of_the_schema():
    def shape(path):
        return re.sub(r"\{[^}]+\}", "{}", path.split("?")[0])

    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {(method.upper(), shape(path)) for path, ops in schema["paths"].items() for method in ops}
    tested = {(method, shape(path)) for method, path, _ in REQUESTS.values()} | NOT_IN_MATRIX
    assert documented == tested
    assert EXPECTED.keys() == REQUESTS.keys()
