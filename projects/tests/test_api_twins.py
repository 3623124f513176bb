"""The API does everything the pages do: every page action (a URL name of the pages) has the API operation that
does the same. A new page without its API twin fails here until the API offers it and this table names it."""

from django.urls import URLPattern, URLResolver, get_resolver

# page URL name -> (HTTP method, API URL name) of the operation that does the same.
PAGE_TO_API = {
    "projects:list": ("GET", "project-list"),
    "projects:create": ("POST", "project-list"),
    "projects:detail": ("GET", "project-detail"),
    "projects:edit": ("PATCH", "project-detail"),
    "projects:delete": ("DELETE", "project-detail"),
    "projects:weights": ("POST", "project-weights"),
    "projects:pipeline": ("GET", "project-detail"),  # the stages, their latest jobs and what blocks them
    "projects:pipeline_run": ("POST", "project-run-pipeline"),
    "projects:stage_run": ("POST", "project-run-stage"),
    "projects:demo": ("POST", "project-demo"),
    "projects:dataset_list": ("GET", "dataset-list"),
    "projects:dataset_upload": ("POST", "dataset-list"),
    "projects:dataset_detail": ("GET", "dataset-detail"),
    "projects:job_detail": ("GET", "job-log"),  # the job's state and its log, page by page
    "projects:job_cancel": ("POST", "job-cancel"),
    "projects:job_retry": ("POST", "job-retry"),
    "projects:job_log_download": ("GET", "job-log-text"),
    "projects:tokens": ("POST", "token-list"),  # the page lists the user's tokens and creates one
    "projects:token_revoke": ("DELETE", "token-detail"),
    "projects:team_audit": ("GET", "team-audit-list"),
    "deployment:artifact_download": ("GET", "artifact-download"),
    "deployment:try_page": ("POST", "trial-list"),  # the page lists the project's tries and queues one
    "deployment:trial_detail": ("GET", "trial-detail"),
    "deployment:trial_image": ("GET", "trial-image"),
    "deployment:model_import": ("POST", "model-import-list"),
    "training:search_adopt": ("POST", "search-adopt"),
    "deployment:convert_accept": ("POST", "conversion-accept"),
    "visualizer:editor": ("POST", "architecture-preview"),  # the graph, its errors, flags and costs after edits
    "visualizer:layer_check": ("POST", "architecture-preview"),  # the same preview, for one layer's new values
    "visualizer:layer_form": ("POST", "architecture-preview"),  # the edit goes into the edits the API previews/saves
    "recommender:device_list": ("GET", "device-list"),
    "recommender:device_detail": ("GET", "device-records"),  # its records, predicted against measured
    "recommender:device_calibrate": ("POST", "device-calibrate"),  # staff: this server measures itself (a job)
    "recommender:host_measurements": ("GET", "device-records"),  # this server's panel, reloaded after calibration
    "recommender:project_model_choose": ("POST", "project-recommendation-choice"),
}
NOT_PAGES = ("admin:", "api", "login", "logout", "password_")  # the admin, the API itself, Django's auth views


def named_patterns(patterns, prefix="", route="") -> dict[str, tuple[str, URLPattern]]:
    """Every named URL pattern, by its full name (namespace:name), with its route."""
    found = {}
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            namespace = f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix
            found |= named_patterns(pattern.url_patterns, namespace, route + str(pattern.pattern))
        elif pattern.name:
            found[prefix + pattern.name] = (route + str(pattern.pattern), pattern)
    return found


def test_every_page_action_has_an_api_twin():
    pages = {name for name, (route, _) in named_patterns(get_resolver().url_patterns).items()
             if not route.startswith(("admin/", "api/", "accounts/")) and not name.startswith(NOT_PAGES)}
    assert pages == set(PAGE_TO_API), "name the new page's API twin in PAGE_TO_API (and build it)"


def test_each_twin_is_an_api_operation_with_that_method():
    api = {name: pattern for name, (route, pattern) in named_patterns(get_resolver().url_patterns).items()
           if route.startswith("api/")}
    for page, (method, name) in PAGE_TO_API.items():
        assert name in api, f"{page}: no API operation named {name!r}"
        assert method.lower() in api[name].callback.actions, f"{page}: {name} does not take {method}"
