"""The job runtime: every pipeline stage runs as a Job, whatever app owns the stage.

models     Job and JobLogLine (the projects app's tables), statuses and queues
registry   the stages, registered by their apps from AppConfig.ready(); the runtime names no stage app
services   writes: job_enqueue, pipeline_start, job_cancel, job_retry
selectors  reads the pages, the API and the websocket consumer share: latest jobs, blockers, log pages
runner     the worker side: job_execute, the report callback handed to a stage
log        JobLog, the one log mechanism (persist, then push), and its logging.Handler
heartbeat  the thread that keeps a running job alive and notices cancellation
reaper     fails jobs whose worker died (run by Celery beat)
consumer   the live console over a websocket; routing wires it
tasks      the Celery tasks; storage: where a job's files go

This package imports nothing at import time: import the module you need.
"""
