"""Across processes, a training job is cancelled and resumed from its checkpoint; a training job whose worker is
SIGKILLed ends failed within a stated bound with the reason in its console, and its retry resumes from the
checkpoint with no log line and no artifact lost.

These tests share two cores with everything else a CI machine runs, so every wait is generous but bounded: each
has its own limit, the test as a whole has one (pytest-timeout, above the sum of its waits), and a wait that runs
out says what it waited for and shows the job's console and the worker's output."""

import re
import time

import pytest
import torch

from projects.jobs.log import JobLog
from projects.jobs.models import Job, JobLogLine, JobStatus
from projects.jobs.runner import job_execute
from projects.jobs.services import job_cancel, job_enqueue, job_retry
from projects.jobs.storage import absolute, job_dir
from projects.tests import factories
from projects.tests.live import start_worker, worker_ready
from tango_common.hashing import sha256_file
from training.engine.zoo import build_model
from training.models import TrainingRun
from training.services import train_stage

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout, what, job=None, worker=None):
    """Poll predicate (a database read) gently — 0.1 s, then longer pauses up to 1 s — until it holds or timeout."""
    deadline = time.monotonic() + timeout
    pause = 0.1
    while not predicate():
        if time.monotonic() >= deadline:
            details = ""
            if job is not None:
                lines = JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True)
                details += f"\njob: {Job.objects.filter(pk=job.pk).values('status', 'error').first()}"
                details += "\nconsole (last 20 lines):\n" + "\n".join(list(lines)[-20:])
            if worker is not None:
                details += "\nworker output (end):\n" + worker.output()[-3000:]
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{details}")
        time.sleep(pause)
        pause = min(1.0, pause * 1.5)


def status(job) -> str:
    return Job.objects.get(pk=job.pk).status


def has_line(job, prefix) -> bool:
    return JobLogLine.objects.filter(job=job, text__startswith=prefix).exists()


def recommended_project(epochs, worker):
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, epochs=epochs)
    recommend = job_enqueue(project=project, stage_key="recommend")
    wait_for(lambda: status(recommend) == JobStatus.SUCCEEDED, 120, "the recommendation", recommend, worker)
    return project


@pytest.mark.timeout(900)  # above the sum of the waits below
def test_a_cancelled_training_resumes_from_its_checkpoint_on_retry(portal):
    worker = portal["worker"]
    project = recommended_project(epochs=4, worker=worker)
    job = job_enqueue(project=project, stage_key="train")
    wait_for(lambda: has_line(job, "epoch 2/4 "), 240, "the second epoch", job, worker)
    job_cancel(job=Job.objects.get(pk=job.pk))
    wait_for(lambda: status(job) == JobStatus.CANCELLED, 120, "the cancellation", job, worker)

    job_retry(job=Job.objects.get(pk=job.pk))
    wait_for(lambda: status(job) == JobStatus.SUCCEEDED, 300, "the resumed run", job, worker)
    assert has_line(job, "resuming after epoch")
    history = TrainingRun.objects.get(job=job).history
    assert [record["epoch"] for record in history] == [1, 2, 3, 4], "every epoch once"


EPOCH_LINE = re.compile(r"epoch (\d+)/\d+  train loss")  # an epoch's closing line, not its progress bar
# Kill to failed: the heartbeat goes stale after TANGO_JOB_STALE_SECONDS (4 s here, live.child_env) and beat reaps
# every second, so about 5 s; the rest is room for a busy two-core machine. (Production defaults: 30 s stale,
# 10 s reaping, so at most ~40 s.)
FAILED_WITHIN_SECONDS = 20


def console(job) -> list[tuple[int, str]]:
    return list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("seq", "text"))


def epochs_logged(lines) -> list[int]:
    return [int(match.group(1)) for _, text in lines if (match := EPOCH_LINE.match(text))]


def loads_into_resnet18(path) -> bool:
    build_model("resnet18", num_classes=3, input_size=16).load_state_dict(
        torch.load(path, map_location="cpu", weights_only=True))  # strict: every tensor present and shaped
    return True


@pytest.mark.timeout(1500)  # above the sum of the waits below
def test_a_killed_workers_training_fails_in_time_and_its_retry_resumes_losing_no_line_or_artifact(
        portal, _portal_processes, tmp_path):
    # Under a second an epoch on an idle machine, over a minute on a CI host shared by several test runs: the kill
    # comes right after the first epoch's line, and the retry trains the other three.
    epochs = 4
    portal["worker"].kill()  # only the workers below consume the queues now
    # As in team mode: beat and the reaper on a cpu worker, training on a gpu worker whose host is lost.
    reaper = start_worker(tmp_path, beat=True, queues="cpu", TANGO_REAP_INTERVAL_SECONDS="1", wait=False)
    doomed = start_worker(tmp_path, queues="gpu", OMP_NUM_THREADS="1", wait=False)  # both start side by side
    successor = None
    try:
        worker_ready(reaper)
        worker_ready(doomed)
        # Recorded rather than run: the recommend stage is not what this test is about, and a fresh worker
        # profiles every candidate first (15-40 s on a loaded two-core host).
        project = factories.training_project(factories.team_with("Vision", alice="owner"), epochs=epochs)
        Job.objects.create(project=project, stage="recommend", status=JobStatus.SUCCEEDED, queue="cpu",
                           result={"model": "resnet18"})
        job = job_enqueue(project=project, stage_key="train")
        deadline = time.monotonic() + 400
        while not epochs_logged(console(job)):  # polled briskly: the kill should land early in the run
            assert time.monotonic() < deadline, f"training never finished an epoch:\n{doomed.output()[-3000:]}"
            time.sleep(0.1)

        doomed.kill()  # SIGKILL to the whole process group: the worker host is gone
        killed_at = time.monotonic()
        # The worker that runs the retry starts now, while the reaper notices the loss: nothing is queued until the
        # retry below (the killed attempt's job is running, then failed, so a stray copy of its message is ignored).
        # It consumes both queues, as the portal's worker, and stays on as that worker for the modules after this.
        successor = start_worker(tmp_path, wait=False)
        before = console(job)  # every line the killed attempt wrote
        last_epoch = epochs_logged(before)[-1]
        assert last_epoch < epochs, "the run ended before the kill: nothing was interrupted"
        wait_for(lambda: status(job) == JobStatus.FAILED, 90, "the reaper", job, reaper)
        failed_after = time.monotonic() - killed_at
        assert failed_after < FAILED_WITHIN_SECONDS, f"failed {failed_after:.0f} s after the kill"

        # The console says why, and the killed attempt's files are whole: the checkpoint holds every epoch whose line
        # was written (one more if the kill fell between saving it and writing the line).
        job.refresh_from_db()
        reaped = console(job)[len(before):]
        assert job.error == f"Worker {job.worker_host} stopped answering."
        assert any(text.startswith(f"Worker {job.worker_host} stopped answering (no heartbeat for 4 s); the job is "
                                   "marked failed. Retry to run it again.") for _, text in reaped), reaped
        folder = job_dir(job, keep=True)
        checkpoint = torch.load(folder / "last.pt", map_location="cpu", weights_only=True)
        assert checkpoint["epoch"] in (last_epoch, last_epoch + 1)
        assert loads_into_resnet18(folder / "best.pt")

        worker_ready(successor)
        job_retry(job=Job.objects.get(pk=job.pk))
        wait_for(lambda: status(job) == JobStatus.SUCCEEDED, 600, "the retry to finish", job, successor)

        after = console(job)
        assert after[:len(before)] == before, "every line written before the kill is kept, where it was"
        assert [seq for seq, _ in after] == list(range(1, len(after) + 1)), "no gap in the numbering"
        assert epochs_logged(after) == list(range(1, epochs + 1)), "each epoch's line once, in order"
        retry = [text for _, text in after[len(before):]]
        resumed = [text for text in retry if text.startswith("resuming after epoch ")]
        assert len(resumed) == 1 and resumed[0].startswith(f"resuming after epoch {checkpoint['epoch']}:")
        assert not any(text.startswith("starting: ") for text in retry), "the retry did not start from scratch"
        assert TrainingRun.objects.get(job=job).history[0]["epoch"] == 1
        assert [r["epoch"] for r in TrainingRun.objects.get(job=job).history] == list(range(1, epochs + 1))

        run = TrainingRun.objects.get(job=job)  # the final model and the checkpoints, whole and loadable
        assert absolute(run.weights_path) == folder / "model.pt"
        assert sha256_file(folder / "model.pt") == run.weights_sha256
        assert all(loads_into_resnet18(folder / name) for name in ("model.pt", "best.pt"))
        assert torch.load(folder / "last.pt", map_location="cpu", weights_only=True)["epoch"] == epochs
        _portal_processes["worker"] = successor  # the portal's worker from now on (the session ends it)
        successor = None
    finally:
        for worker in (reaper, doomed, successor):
            if worker is not None:
                worker.kill()


class DiesAtLine:
    """A report callback whose process dies (SystemExit: no handler of the stage's runs) when it is about to write
    a line that starts with `fatal`: as a worker SIGKILLed after it saved the epoch's checkpoint, before its line."""

    def __init__(self, job, fatal: str):
        self.log, self.fatal = JobLog(job.pk), fatal

    def __call__(self, line=None, progress=None, message=None):
        if line is not None:
            if line.startswith(self.fatal):
                raise SystemExit("killed")
            self.log.write(line)

    def publish_result(self, result):
        pass


def test_a_worker_killed_between_an_epochs_checkpoint_and_its_line_leaves_no_epoch_out_of_the_console(monkeypatch):
    monkeypatch.setattr("projects.jobs.services._dispatch", lambda *args: None)  # the retry is run here, below
    project = factories.training_project(factories.team_with("Vision", alice="owner"), epochs=3)
    Job.objects.create(project=project, stage="recommend", status=JobStatus.SUCCEEDED, result={"model": "resnet18"})
    job = Job.objects.create(project=project, stage="train", queue="gpu", status=JobStatus.RUNNING)
    with pytest.raises(SystemExit):
        train_stage(job, DiesAtLine(job, "epoch 2/3  train loss"))
    assert torch.load(job_dir(job, keep=True) / "last.pt", weights_only=True)["epoch"] == 2
    assert epochs_logged(console(job)) == [1]

    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED)
    job_retry(job=Job.objects.get(pk=job.pk))
    job_execute(job_id=job.pk, attempt=2)
    assert status(job) == JobStatus.SUCCEEDED
    lines = console(job)
    assert epochs_logged(lines) == [1, 2, 3]
    texts = [text for _, text in lines]
    restored = next(i for i, text in enumerate(texts) if text.startswith("epoch 2/3  train loss"))
    assert texts[restored].endswith("(from the checkpoint: the stopped attempt saved this epoch but not its line)")
    assert texts[restored + 1].startswith("resuming after epoch 2:")
