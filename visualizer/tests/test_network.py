"""The editor's API and the train stage: edits previewed with costs on the project's device, wrong edits named,
versions saved and chosen by editors only, and the chosen version is what the train stage trains and the convert
stage exports."""

import pytest
import torch
from django.utils import timezone
from rest_framework.test import APIClient

from projects.jobs.models import Job, JobStatus
from projects.tests import factories
from projects.tests.stage_runs import run_stage
from training.hooks import trained_model
from training.models import TrainingRun
from visualizer.models import Architecture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def project():
    team = factories.team_with("Vision", alice="owner", bob="editor", carol="viewer")
    return factories.training_project(team, epochs=1, quality_gate=False)  # one epoch: mechanics, not accuracy


def client(project, username):
    api = APIClient()
    api.force_login(project.team.members.get(username=username))
    return api


def preview(api, project, edits):
    return api.post("/api/architectures/preview/", {"project": project.pk, "edits": edits}, format="json")


def test_preview_shows_the_graph_the_mismatch_and_the_costs_moving(project):
    bob = client(project, "bob")
    base = preview(bob, project, [])
    assert base.status_code == 200, base.data
    assert base.data["base_model"] == "resnet18" and len(base.data["graph"]["blocks"]) == 8
    assert base.data["costs"]["latency_ms"] > 0 and base.data["costs"]["device"] == "Odroid_N2"

    broken = preview(bob, project, [{"op": "set", "node": "layer3_1_conv1", "params": {"out_channels": 64}}])
    assert broken.data["errors"] == [{"node": "layer3_1_bn1", "message": "layer3.1.bn1 expects 256 channels, gets 64"}]
    assert broken.data["costs"]["latency_ms"] is None

    fixed = preview(bob, project, [{"op": "set", "node": "layer3_1_conv1", "params": {"out_channels": 64}},
                                   {"op": "set", "node": "layer3_1_bn1", "params": {"num_features": 64}},
                                   {"op": "set", "node": "layer3_1_conv2", "params": {"in_channels": 64}}])
    assert fixed.data["errors"] == []
    assert fixed.data["costs"]["params"] < base.data["costs"]["params"]
    assert fixed.data["costs"]["latency_ms"] < base.data["costs"]["latency_ms"]
    assert "~ layer3.1.conv1: out_channels 256 → 64" in fixed.data["changes"]

    refused = preview(bob, project, [{"op": "remove", "node": "layer1_0_add"}])
    assert refused.status_code == 400 and "no node 'layer1_0_add'" in refused.data["edits"][0]
    assert client(project, "carol").post("/api/architectures/preview/", {"project": project.pk},
                                         format="json").status_code == 200  # viewers look, they do not save


def test_a_subnet_the_supernet_search_chose_opens_in_the_editor(project):
    name = "ofa-w16-32-64-128-d2131-e50-75-100-50-k3553"  # what the search names a subnet it adopts
    project.options = {**project.options, "model": name}
    project.save()
    bob = client(project, "bob")
    opened = preview(bob, project, [])
    assert opened.status_code == 200, opened.data
    assert opened.data["base_model"] == name and opened.data["errors"] == []
    assert len([b for b in opened.data["graph"]["blocks"] if b["type"] == "SubnetBlock"]) == 2 + 1 + 3 + 1
    assert opened.data["costs"]["latency_ms"] > 0
    for wrong in ("ofa-w16-32-d24-e50-50-k33", "ofa-w16-d1-e50-k3x"):  # a depth outside the space; not a name
        refused = bob.post("/api/architectures/preview/", {"project": project.pk, "base_model": wrong}, format="json")
        assert refused.status_code == 400 and "not a zoo model or a searched subnet" in refused.data["edits"][0]


def test_saving_needs_a_network_that_fits_and_an_editor(project):
    edits = [{"op": "resize", "node": "layer2_0_conv1", "channels": 48}]
    viewer = client(project, "carol").post("/api/architectures/", {"project": project.pk, "edits": edits},
                                           format="json")
    assert viewer.status_code == 403
    bob = client(project, "bob")
    broken = bob.post("/api/architectures/", {"project": project.pk, "edits": [
        {"op": "set", "node": "fc", "params": {"in_features": 10}}]}, format="json")
    assert broken.status_code == 400 and "fc expects 10 input features, gets 512" in broken.data["edits"][0]

    saved = bob.post("/api/architectures/", {"project": project.pk, "edits": edits, "note": "narrower"},
                     format="json")
    assert saved.status_code == 201 and saved.data["version"] == 1 and saved.data["chosen"]
    assert saved.data["created_by"] == "bob"
    again = bob.post("/api/architectures/", {"project": project.pk, "edits": []}, format="json")
    assert again.data["version"] == 2
    project.refresh_from_db()
    assert project.options["architecture"] == again.data["id"]
    chosen = bob.post(f"/api/architectures/{saved.data['id']}/choose/", {}, format="json")
    assert chosen.status_code == 200 and chosen.data["chosen"]
    listed = bob.get(f"/api/architectures/?project={project.pk}").data
    assert [a["version"] for a in listed["results" if isinstance(listed, dict) else slice(None)]] == [2, 1]


def test_a_block_named_with_markup_is_not_saved(project):
    """A group's name is rendered into every teammate's editor outline: an editor saved <img onerror=…> as one
    (stored XSS in the owner's browser); the API now refuses it, and a plain name still saves."""
    bob = client(project, "bob")
    markup = bob.post("/api/architectures/", {"project": project.pk, "edits": [
        {"op": "group", "nodes": ["conv1", "bn1"], "name": '<img src=x onerror="alert(document.cookie)">'}]},
        format="json")
    assert markup.status_code == 400 and "letters, digits" in markup.data["edits"][0]
    assert not Architecture.objects.filter(project=project).exists()
    plain = bob.post("/api/architectures/", {"project": project.pk, "edits": [
        {"op": "group", "nodes": ["conv1", "bn1"], "name": "stem block-1.a"}]}, format="json")
    assert plain.status_code == 201, plain.data


@pytest.mark.django_db(transaction=True)  # the job runner commits as it goes
def test_the_train_stage_trains_the_chosen_version(project):
    bob = client(project, "bob")
    saved = bob.post("/api/architectures/", {"project": project.pk, "edits": [
        {"op": "resize", "node": "layer2_0_conv1", "channels": 48},
        {"op": "insert", "after": "layer4_1_relu_1", "layer": "Dropout", "params": {"p": 0.1}}]}, format="json")
    assert saved.status_code == 201, saved.data

    # The recommend stage (tested with the recommender) picked nothing new: the project's own pick stands.
    Job.objects.create(project=project, stage="recommend", status=JobStatus.SUCCEEDED, queue="cpu",
                       result={"model": "resnet18"}, finished_at=timezone.now())
    network = run_stage(project, "network")
    assert network.result["version"] == 1 and network.result["costs"]["latency_ms"] > 0
    train = run_stage(project, "train")
    log = list(train.log_lines.values_list("text", flat=True))
    assert any(line.startswith("Network version 1 from the editor: 5 change(s) to resnet18") for line in log), log
    assert any("resnet18, edited (network version 1)" in line for line in log)
    training_run = TrainingRun.objects.get(job=train)
    assert training_run.architecture["network"]["version"] == 1
    model = trained_model(training_run)
    assert model.get_submodule("layer2.0.conv1").out_channels == 48
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 3)
    assert Architecture.objects.get(pk=saved.data["id"]).summary["changes"]


def test_the_layer_form_is_checked_as_the_user_types_it(project):
    from visualizer.services import base_graph, num_classes_for

    project.options = {**project.options, "model": "resnet18"}
    project.save()
    graph = base_graph("resnet18", num_classes=num_classes_for(project), input_size=project.input_size)
    conv = next(n for n in graph["nodes"] if n.get("target") == "layer2.0.conv1")
    url = f"/projects/{project.pk}/network/check/"
    form = {"edits": "[]", "base_model": "resnet18", "node": conv["id"],
            **{k: str(v) for k, v in conv["params"].items() if not isinstance(v, bool)}}  # bias off: unticked
    alice = client(project, "alice")
    same = alice.post(url, form).content.decode()
    assert 'data-state="same"' in same
    refused = alice.post(url, {**form, "out_channels": "0"}).content.decode()
    assert 'data-state="refused"' in refused and "out_channels must be at least 1" in refused
    breaks = alice.post(url, {**form, "out_channels": "64"}).content.decode()
    assert 'data-state="breaks"' in breaks and "layer2.0.bn1 expects 128 channels, gets 64" in breaks
    fits = alice.post(url, {**form, "kernel_size": "1", "padding": "0"}).content.decode()
    assert 'data-state="fits"' in fits and "M parameters" in fits
    # a carried edit before it: the check starts from the network as edited so far
    resized = alice.post(url, {**form, "edits": f'[{{"op": "resize", "node": "{conv["id"]}", "channels": 64}}]',
                               "out_channels": "64"}).content.decode()
    assert 'data-state="same"' in resized


def test_the_layer_form_is_an_htmx_form_from_the_server_applied_there_for_editors_only(project):
    import json

    from django.test import Client

    from visualizer.services import base_graph, num_classes_for

    project.options = {**project.options, "model": "resnet18"}
    project.save()
    graph = base_graph("resnet18", num_classes=num_classes_for(project), input_size=project.input_size)
    conv = next(n for n in graph["nodes"] if n.get("target") == "layer2.0.conv1")
    url = f"/projects/{project.pk}/network/layer/"
    users = {}
    for name in ("alice", "carol"):
        users[name] = Client()
        users[name].force_login(project.team.members.get(username=name))

    # GET: the node as the draft edits leave it, one typed and bounded field per parameter.
    draft = json.dumps([{"op": "set", "node": conv["id"], "params": {"out_channels": 96}}])
    page = users["alice"].get(url, {"node": conv["id"], "edits": draft, "base_model": "resnet18"}).content.decode()
    assert 'type="number" name="out_channels" value="96"' in page and 'min="1"' in page
    assert 'type="checkbox" name="bias"' in page and "hx-post" in page and 'data-testid="apply-layer"' in page
    assert "layer2.0.bn1 expects 128 channels, gets 96" not in page  # that error is on the next layer, not this one

    form = {"edits": "[]", "base_model": "resnet18", "node": conv["id"],
            **{k: str(v) for k, v in conv["params"].items() if not isinstance(v, bool)}}
    # Apply, valid: the accepted edit comes back as an htmx event for the page's edit list (undo, redo).
    applied = users["alice"].post(url, {**form, "out_channels": "64"})
    event = json.loads(applied["HX-Trigger"])["network-edit"]
    assert event["edit"] == {"op": "set", "node": conv["id"], "params": {"out_channels": 64}}
    assert event["message"] == "Changed layer2.0.conv1."
    # Apply, invalid: the form comes back with the reason next to the field, and no edit.
    wrong = users["alice"].post(url, {**form, "out_channels": "0"})
    assert "HX-Trigger" not in wrong
    html = wrong.content.decode()
    assert 'data-testid="field-error-out_channels">out_channels must be at least 1.</span>' in html
    # typed as it is being typed: the same reason, next to the field (out of band) and under the form
    check = users["alice"].post(f"/projects/{project.pk}/network/check/", {**form, "out_channels": "x"})
    assert 'data-testid="field-error-out_channels" hx-swap-oob="true">out_channels must be a whole number.' in \
        check.content.decode()

    # A viewer sees the form, disabled, and cannot apply; an outsider does not see the project at all.
    seen = users["carol"].get(url, {"node": conv["id"], "base_model": "resnet18"}).content.decode()
    assert "disabled" in seen and "apply-layer" not in seen and "hx-post" not in seen
    assert users["carol"].post(url, {**form, "out_channels": "64"}).status_code == 403
    outsider = Client()
    outsider.force_login(factories.team_with("Other", dave="owner").members.get(username="dave"))
    assert outsider.get(url, {"node": conv["id"]}).status_code == 404
    assert outsider.post(url, {**form, "out_channels": "64"}).status_code == 404
