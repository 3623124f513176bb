"""The API does everything the pages do: every page action (a URL name of the pages, and the actions inside a page:
a button's name, an htmx redraw, a wizard step) and what staff do in the admin has the API operation that does the
same, or, for the admin, the reason it has none. A new page or admin action without its API twin fails here until
the API offers it and these tables name it."""

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

# Actions inside one page (a button's name or value, an htmx redraw, a form's step) -> the API operation that does
# the same. Each is checked against the view or template that has it, so a renamed action fails here too.
PAGE_ACTIONS = {
    ("projects:create", "action=upload"): ("POST", "dataset-list"),  # the dataset step's own upload
    ("projects:create", "action=refresh"): ("GET", "device-choices"),  # engines and precisions redrawn for a device
    ("projects:create", "step=review"): ("POST", "project-review"),  # the pick and the warnings, before Create
    ("projects:create", "run_mode"): ("POST", "project-list"),  # Create in automatic mode queues the pipeline
    ("projects:edit", "action=refresh"): ("GET", "device-choices"),
    ("projects:weights", "clear"): ("DELETE", "project-weights"),
    ("projects:delete", "confirm"): ("DELETE", "project-detail"),
    ("recommender:project_model_choose", "use_pick"): ("POST", "project-recommendation-choice"),
    ("recommender:device_calibrate", "quick"): ("POST", "device-calibrate"),
    ("training:search_adopt", "device"): ("POST", "search-adopt"),  # adopt a catalog device's subnet
    ("deployment:try_page", "artifact"): ("GET", "artifact-list"),  # the models offered: ?triable=true
    ("deployment:try_page", "top_k"): ("POST", "trial-list"),
}
WHERE = {  # where each page's actions are read: its view's module and the templates that post them
    "projects": ["projects/views.py", "projects/wizard.py", "projects/forms.py",
                 "projects/templates/projects/_environment_fields.html", "projects/templates/projects/_wizard.html"],
    "recommender": ["recommender/views.py"], "training": ["training/views.py"], "deployment": ["deployment/views.py"],
}

# The admin (staff) -> the API operation that does the same, or why it stays the admin's alone.
ADMIN_TO_API = {
    ("recommender.device", "add"): ("POST", "device-list"),
    ("recommender.device", "change"): ("PATCH", "device-detail"),
    ("recommender.device", "delete"): ("DELETE", "device-detail"),
    ("recommender.benchmarkrecord", "delete"): ("DELETE", "device-record"),
}
ADMIN_ONLY = {
    ("recommender.benchmarkrecord", "add"): "a record's costs are measured from the built model, which the web "
                                            "process never builds: records come from calibration and benchmarks",
    ("recommender.benchmarkrecord", "change"): "a measurement is removed, not rewritten, over the API",
    ("projects.apitoken", "delete"): "staff revoke anyone's token in the admin; over the API a token is its "
                                     "owner's alone",
    ("visualizer.architecture", "delete"): "a saved network version is history the train stage may have used",
}


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


def test_each_action_inside_a_page_has_its_api_twin():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    api = {name: pattern for name, (route, pattern) in named_patterns(get_resolver().url_patterns).items()
           if route.startswith("api/")}
    for (page, action), (method, name) in PAGE_ACTIONS.items():
        assert page in PAGE_TO_API, f"{page}: not a page"
        key, _, value = action.partition("=")
        sources = "".join((root / path).read_text() for path in WHERE[page.split(":")[0]])
        assert f'"{key}"' in sources and (not value or f'"{value}"' in sources), f"{page}: no action {action!r}"
        assert name in api and method.lower() in api[name].callback.actions, f"{page} {action}: no {method} {name}"


def test_what_staff_do_in_the_admin_has_an_api_twin_or_a_reason():
    from types import SimpleNamespace

    from django.contrib import admin

    staff = SimpleNamespace(request=None, user=SimpleNamespace(is_active=True, is_staff=True, is_superuser=True,
                                                             has_perm=lambda *args: True))
    found = set()
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in ("projects", "recommender", "training", "deployment", "visualizer"):
            continue
        label = model._meta.label_lower
        editable = {f.name for f in model._meta.fields if f.editable} - set(model_admin.readonly_fields)
        found |= {(label, op) for op, allowed in (
            ("add", model_admin.has_add_permission(staff)),
            ("change", model_admin.has_change_permission(staff) and bool(editable - {"id"})),
            ("delete", model_admin.has_delete_permission(staff))) if allowed}
    assert found == set(ADMIN_TO_API) | set(ADMIN_ONLY), "name the admin action's API twin, or why it has none"
    api = {name: pattern for name, (route, pattern) in named_patterns(get_resolver().url_patterns).items()
           if route.startswith("api/")}
    for (label, op), (method, name) in ADMIN_TO_API.items():
        assert name in api and method.lower() in api[name].callback.actions, f"{label} {op}: no {method} {name}"
