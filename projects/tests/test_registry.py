"""The stage registry and the `tango` command's registry: apps add to them from AppConfig.ready()."""

import io

import pytest
from django.core.management import call_command

from projects import commands
from projects.jobs import registry
from projects.jobs.checks import check_stages
from projects.jobs.registry import Queue, Stage, StageConflict, pipeline_stages, stage_register, stages


@pytest.fixture
def scratch_registries(monkeypatch):
    """Registrations made by a test vanish with it."""
    monkeypatch.setattr(registry, "_stages", dict(registry._stages))
    monkeypatch.setattr(commands, "_subcommands", dict(commands._subcommands))


def test_the_apps_register_the_pipeline_in_order():
    assert [(s.key, s.queue) for s in pipeline_stages()] == [
        ("recommend", Queue.CPU), ("train", Queue.GPU), ("convert", Queue.CPU), ("benchmark", Queue.CPU),
        ("package", Queue.CPU)]
    assert [s.result_template.split("/")[0] for s in pipeline_stages()] == [
        "recommender", "training", "deployment", "deployment", "deployment"]  # each with the app that owns it
    assert {s.key for s in stages() if s.optional} == {"nas", "hpo", "network", "compare", "tvm_tune"}  # on demand
    assert check_stages() == []


def test_a_second_different_stage_under_a_taken_key_is_refused(scratch_registries):
    train = registry.stage_get("train")
    assert stage_register(train) is train  # the same registration again is harmless
    with pytest.raises(StageConflict, match="'train' is registered twice"):
        stage_register(Stage(key="train", label="Other train", runner="elsewhere.run"))


def test_an_unknown_queue_is_refused(scratch_registries):
    with pytest.raises(ValueError, match="unknown queue 'tpu'"):
        stage_register(Stage(key="x", label="X", runner="x.run", queue="tpu"))


def test_the_system_check_names_a_missing_requirement_and_template(scratch_registries):
    stage_register(Stage(key="tune", label="Tune", runner="x.run", requires=("nowhere",), order=18,
                         result_template="automl/results/_tune.html"))
    assert sorted(error.id for error in check_stages()) == ["projects.E001", "projects.E002"]


def say_hello(command, *, name, **_):
    command.stdout.write(f"hello {name}")


def test_an_app_adds_a_tango_subcommand(scratch_registries):
    commands.subcommand_register(commands.Subcommand(
        name="hello", help="Greets.", handler="projects.tests.test_registry.say_hello",
        arguments=lambda parser: parser.add_argument("--name", default="world")))
    out = io.StringIO()
    call_command("tango", "hello", "--name", "TANGO", stdout=out)
    assert out.getvalue().strip() == "hello TANGO"


def test_a_built_in_subcommand_cannot_be_taken_over(scratch_registries):
    with pytest.raises(ValueError, match="built in"):
        commands.subcommand_register(commands.Subcommand(name="serve", help="", handler="x.y"))
