"""Before training, a user sees which model will train and roughly how long it will take on this server; while it
runs, how long is left. Through the job machinery with the real runners (recommend times the model on the worker)."""

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from projects.tests import factories
from projects.tests.stage_runs import run_stage
from recommender.models import Device
from training.models import TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def small_project():
    """72 training images and a budget every candidate meets: the ranking's top is a big network that 72 images
    cannot train from scratch."""
    team = factories.team_with("Vision", alice="owner")
    target = Device.objects.filter(name="Odroid_N2").first() or factories.device(
        "Odroid_N2", accelerator_kind="mali_gpu", engines=["pytorch", "onnxruntime"])
    data = factories.image_dataset(team, name="small", per_class=24, val_per_class=6)
    return factories.project(team, name="small", device=target, dataset=data, input_size=16,
                             latency_budget_ms=100_000, options={"train": {"epochs": 2}})


def test_the_recommendation_names_the_model_that_trains_and_the_page_says_how_long_training_will_take(
        small_project):
    recommend = run_stage(small_project, "recommend")
    result = recommend.result
    top = result["ranking"]["top"]
    assert top["params"] > 12e6, "the budget lets a big network top the ranking"
    assert result["model"] != top["key"] and result["ranked_top"] == top["key"]
    assert "72 training images" in result["reason"] and top["label"] in result["reason"]
    # The line comparing with the paper's model names the model that trains too, as the card's headline does.
    assert (f"the data-driven choice is {result['model_label']}, the ranking's top ({top['label']}) sized to the "
            f"dataset" in result["comparison"]) or result["comparison"].startswith("The paper's rule and the data "
                                                                                 "agree"), result["comparison"]
    assert f"choice is {top['label']}" not in result["comparison"]
    log = list(recommend.log_lines.values_list("text", flat=True))
    assert f"Recommended: {result['model_label']}." in log, "the log names the model that trains, not the top one"
    assert any(line.startswith(f"Timed {result['model_label']} at 16 px on this worker") for line in log)
    cost = result["training_cost"]
    assert cost["model"] == result["model"] and cost["train_s"] > 0 and cost["eval_s"] > 0 and cost["load_s"] > 0

    client = Client()
    client.force_login(small_project.team.memberships.get().user)
    page = client.get(f"/projects/{small_project.pk}/").content.decode()
    card = re.search(r'data-testid="training-uses">(.*?)</span>', page, re.S).group(1)
    assert result["model_label"] in card and "sized to the dataset" in card
    assert "Expected top-1 %</th>" in page and "Expected accuracy is top-1 in %" in page
    marked = re.search(r'r="7" fill="#2563eb"[^<]*/>\s*(?:<rect[^>]*>\s*)?<text[^>]*>([^<]+)</text>', page)
    assert marked and marked.group(1) == result["model_label"], "the chart marks the model that trains"
    assert re.search(r"expected \d+\.\d% top-1 \(", top["reason"]), "the reason's figure has its unit"
    preview = re.search(r'data-testid="preview-train">(.*?)</p>', page, re.S).group(1)
    assert re.search(rf"Training {re.escape(result['model_label'])} at 16 px for 2 epochs \(set on the project\) "
                     r"should take about \d+ (s|min)", preview), preview

    api = APIClient()
    api.force_authenticate(small_project.team.memberships.get().user)
    stages = {s["key"]: s for s in api.get(f"/api/projects/{small_project.pk}/").json()["stages"]}
    assert stages["train"]["preview"] and "should take about" in stages["train"]["preview"]
    recommendation = api.get(f"/api/projects/{small_project.pk}/recommendation/").json()
    assert recommendation["chosen"] == result["model"] and "72 training images" in recommendation["why"]

    # With no epochs set, the count comes from the dataset, and the line says so.
    small_project.options = {}
    small_project.save()
    page = client.get(f"/projects/{small_project.pk}/").content.decode()
    assert "(chosen for 72 training images) should take about" in page

    # What trains is what the card named.
    small_project.options = {"train": {"epochs": 2}}
    small_project.save()
    train = run_stage(small_project, "train")
    assert TrainingRun.objects.get(job=train).model_name == result["model"]


def test_recommend_still_recommends_where_the_datasets_images_cannot_be_loaded_and_says_there_is_no_estimate():
    # A dataset whose files are not on this server (a restored database, a data folder moved): the training-time
    # estimate is a side line of the recommendation, so it is skipped with the reason instead of failing the stage.
    team = factories.team_with("Vision", alice="owner")
    project = factories.project(team, name="no-files", latency_budget_ms=100_000)
    recommend = run_stage(project, "recommend")
    assert recommend.result["model"] and "training_cost" not in recommend.result
    log = list(recommend.log_lines.values_list("text", flat=True))
    assert any(line.startswith("No estimate of the training time: The dataset has no images") for line in log), log


def test_a_worker_times_a_models_steps_once_and_each_datasets_loading_on_its_own_images(dataset, tmp_path):
    from training.engine.timing import _step_seconds, time_training

    data_dir, classes = dataset
    _step_seconds.cache_clear()
    first = time_training("resnet18", data_dir=data_dir, class_names=classes, input_size=16, device="cpu")
    again = time_training("resnet18", data_dir=data_dir, class_names=classes, input_size=16, device="cpu")
    assert (again.train_s, again.eval_s) == (first.train_s, first.eval_s), "the steps are timed once per process"
    assert _step_seconds.cache_info().hits == 1 and first.load_s > 0 and again.load_s > 0
    with pytest.raises(ValueError, match="no images"):  # a dataset without images fails before any model is built
        time_training("resnet18", data_dir=tmp_path, class_names=classes, input_size=24, device="cpu")
    assert _step_seconds.cache_info().currsize == 1


def test_a_network_edited_from_the_rankings_top_is_what_the_card_names_what_is_timed_and_what_trains(small_project):
    # The user saves an edit of the ranking's top in the network editor, which then trains (the editor marks it so):
    # the dataset's size no longer swaps in a smaller zoo model, neither on the card nor in the train stage. The
    # training-time estimate times that edited network (it timed the unedited zoo model), and says so.
    from training.engine.zoo import build_model
    from training.hooks import network_source
    from visualizer.services import architecture_save

    top = run_stage(small_project, "recommend").result["ranking"]["top"]
    alice = small_project.team.memberships.get().user
    # a Linear layer as wide as the features after flatten: the edited network has more parameters than the zoo's
    architecture_save(project=small_project, user=alice, base_model=top["key"], edits=[
        {"op": "insert", "after": "flatten", "layer": "Linear"}])
    small_project.refresh_from_db()
    edited = network_source(small_project, top["key"]).build(3, 16)
    zoo = build_model(top["key"], num_classes=3, input_size=16)
    assert sum(p.numel() for p in edited.parameters()) > sum(p.numel() for p in zoo.parameters())

    recommend = run_stage(small_project, "recommend")
    result = recommend.result
    assert result["model"] == top["key"] and "ranked_top" not in result, "the edited network is not sized away"
    cost = result["training_cost"]
    assert cost["model"] == top["key"] and cost["network"] == f"{top['key']}, edited (network version 1)"
    assert cost["params"] == sum(p.numel() for p in edited.parameters()), "the estimate times the edited network"
    what = f"{top['label']}, edited (network version 1)"
    log = list(recommend.log_lines.values_list("text", flat=True))
    assert any(line.startswith(f"Timed {what} at 16 px on this worker ({cost['params'] / 1e6:.2f} M parameters)")
               for line in log), log
    client = Client()
    client.force_login(alice)

    def preview():
        page = client.get(f"/projects/{small_project.pk}/").content.decode()
        return re.search(r'data-testid="preview-train">(.*?)</p>', page, re.S).group(1)

    page = client.get(f"/projects/{small_project.pk}/").content.decode()
    card = re.search(r'data-testid="training-uses">(.*?)</span>', page, re.S).group(1)
    assert top["label"] in card, card
    assert preview().startswith(f"Training {what} at 16 px for 2 epochs (set on the project) should take"), preview()

    small_project.options["train"] = {"epochs": 1, "quality_gate": False}  # 72 images do not train it: not the point
    small_project.save()
    run = TrainingRun.objects.get(job=run_stage(small_project, "train"))
    assert run.model_name == top["key"] and run.architecture["network"]["version"] == 1

    # a second version saved after the recommendation: its timing is not the one the estimate has
    architecture_save(project=small_project, user=alice, base_model=top["key"], edits=[
        {"op": "insert", "after": "flatten", "layer": "Dropout", "params": {"p": 0.1}}])
    small_project.refresh_from_db()
    assert preview() == (f"Run Recommend again to time {top['label']}, edited (network version 2) at 16 px on this "
                         f"server (it timed {what} at 16 px)."), preview()


def test_a_model_picked_on_the_project_is_named_as_people_read_it_on_the_card_and_in_the_estimate(small_project):
    from recommender.services import project_model_choose

    run_stage(small_project, "recommend")
    project_model_choose(project=small_project, model_name="resnet18")
    client = Client()
    client.force_login(small_project.team.memberships.get().user)

    def shown():
        page = client.get(f"/projects/{small_project.pk}/").content.decode()
        return (re.search(r'data-testid="training-uses">(.*?)</span>', page, re.S).group(1),
                re.search(r'data-testid="preview-train">(.*?)</p>', page, re.S).group(1))

    card, preview = shown()
    assert "ResNet-18 (picked)" in card, card
    assert preview.startswith("Run Recommend again to time ResNet-18 at 16 px on this server (it timed "), preview
    assert "resnet18" not in card + preview

    run_stage(small_project, "recommend")  # now it times the picked model
    card, preview = shown()
    assert preview.startswith("Training ResNet-18 at 16 px for 2 epochs (set on the project) should take"), preview


def test_uploaded_weights_keep_the_rankings_top_and_a_pick_wins_over_both(small_project):
    # The uploaded file was made for the top: it is not sized away. A model picked on the project trains whatever
    # the recommendation says; the recommendation itself is unchanged by the pick.
    from projects.services import project_weights_set
    from projects.tests.test_weights import state_dict_file
    from recommender.services import project_model_choose
    from training.services import model_to_train

    project_weights_set(project=small_project, upload=state_dict_file())
    result = run_stage(small_project, "recommend").result
    top = result["ranking"]["top"]["key"]
    assert result["model"] == top and "ranked_top" not in result and result["training_cost"]["model"] == top
    assert model_to_train(small_project, result, result["data_facts"]["n_train"]) == (top, "")

    project_model_choose(project=small_project, model_name="resnet18")
    result = run_stage(small_project, "recommend").result
    assert result["model"] == top and result["chosen"] == "resnet18" and result["training_cost"]["model"] == "resnet18"
    assert model_to_train(small_project, result, result["data_facts"]["n_train"]) == ("resnet18", "")


def test_a_detection_project_is_told_how_long_training_will_take_from_a_short_run_timed_on_the_worker():
    from training.tests.test_detection_stage import detection_project

    project = detection_project(factories.team_with("Vision", alice="owner"))
    recommend = run_stage(project, "recommend")
    cost = recommend.result["training_cost"]
    assert cost["model"] == "yolo11n" and cost["input_size"] == 64 and cost["batch"] == 4
    assert all(cost[key] > 0 for key in ("train_s", "eval_s", "epoch_s", "setup_s"))
    assert recommend.result["data_facts"] == {"n_train": 8, "n_val": 4}
    log = list(recommend.log_lines.values_list("text", flat=True))
    assert any(re.match(r"Timed YOLO11n at 64 px, batch 4, on this worker \(2\.\d\d M parameters\): ", line)
               for line in log), log

    client = Client()
    client.force_login(project.team.memberships.get().user)

    def preview():
        page = client.get(f"/projects/{project.pk}/").content.decode()
        return re.search(r'data-testid="preview-train">(.*?)</p>', page, re.S).group(1)

    assert re.match(r"Training YOLO11n at 64 px for up to 1 epoch \(set on the project\) should take about \d+ s on "
                    r"this server: \d+\.\d s per epoch for 8 training and 4 validation images", preview()), preview()
    project.options["train"] = {**project.options["train"], "batch": 2}  # a batch changes the cost per image
    project.save()
    assert preview().startswith("Run Recommend again to time YOLO11n at 64 px, batch 2 on this server (it timed "
                                "YOLO11n at 64 px, batch 4)."), preview()


def test_a_detector_edited_in_the_visualiser_is_the_one_timed_for_the_estimate():
    # Regression: the recommend stage timed the zoo detector while the train stage trained the edited model dict.
    import copy

    from ultralytics.nn.tasks import DetectionModel

    from recommender.services import model_label
    from training.hooks import network_source
    from training.tests.test_detection_stage import detection_project
    from visualizer.services import architecture_save

    project = detection_project(factories.team_with("Vision", alice="owner"))
    project.options["model"] = "yolov7-tiny"
    project.save()
    architecture_save(project=project, user=None, base_model="yolov7-tiny",
                      edits=[{"op": "set", "node": "2", "params": {"args": [48, 1, 1]}}])  # 32 channels before
    project.refresh_from_db()

    def params(spec) -> int:
        return sum(p.numel() for p in DetectionModel(copy.deepcopy(spec), nc=1, verbose=False).parameters())

    edited = params(network_source(project, "yolov7-tiny").spec)
    recommend = run_stage(project, "recommend")
    cost = recommend.result["training_cost"]
    assert cost["model"] == "yolov7-tiny" and cost["network"] == "yolov7-tiny, edited (network version 1)"
    assert cost["params"] == edited != params(yaml_of("yolov7-tiny")), "the estimate times the edited detector"
    what = f"{model_label('yolov7-tiny')}, edited (network version 1)"
    log = list(recommend.log_lines.values_list("text", flat=True))
    assert any(line.startswith(f"Timed {what} at 64 px, batch 4, on this worker ({edited / 1e6:.2f} M parameters)")
               for line in log), log
    client = Client()
    client.force_login(project.team.memberships.get().user)
    page = client.get(f"/projects/{project.pk}/").content.decode()
    preview = re.search(r'data-testid="preview-train">(.*?)</p>', page, re.S).group(1)
    assert preview.startswith(f"Training {what} at 64 px for up to 1 epoch (set on the project) should take"), preview


def yaml_of(name: str) -> dict:
    from training.engine.yolo.zoo import model_dict

    return model_dict(name, 1)
