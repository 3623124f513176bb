"""The network editor page. Edits go through the API (/api/architectures/); the layer form checks what the user
types as they type it (htmx posts the form here, the answer shows under it before anything is applied)."""

import json

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from projects.access import can_edit, projects_for

from .models import Architecture
from .services import NetworkError, base_model_for, chosen_architecture, edited_graph


@login_required
def editor(request, project_id: int):
    project = get_object_or_404(projects_for(request.user), pk=project_id)
    chosen = chosen_architecture(project)
    try:
        base_model = chosen.base_model if chosen else base_model_for(project)
        problem = ""
    except NetworkError as exc:
        base_model, problem = "", str(exc)
    return render(request, "visualizer/editor.html", {
        "project": project, "can_edit": can_edit(request.user, project.team), "base_model": base_model,
        "problem": problem, "chosen": chosen, "versions": Architecture.objects.filter(project=project),
        "start": {"project": project.pk, "base_model": base_model, "edits": chosen.edits if chosen else [],
                  "version": chosen.version if chosen else None},
    })


@login_required
@require_POST
def layer_check(request, project_id: int):
    """What applying the layer form would do, before it is applied: a value the layer refuses, or what it breaks
    further on (the node and the mismatch), or how the parameters and FLOPs move."""
    project = get_object_or_404(projects_for(request.user), pk=project_id)
    node_id = request.POST.get("node", "")
    try:
        edits = json.loads(request.POST.get("edits") or "[]")
        base_model = request.POST.get("base_model") or base_model_for(project)
        _, graph = edited_graph(project=project, base_model=base_model, edits=edits)
        node = next((n for n in graph["nodes"] if n["id"] == node_id and n["kind"] == "module"), None)
        if node is None:
            raise NetworkError(f"No layer {node_id!r} in this network.")
        changed = {}
        for key, value in node["params"].items():
            if isinstance(value, bool):
                typed = key in request.POST
            else:
                raw = request.POST.get(key, "")
                try:
                    typed = json.loads(raw)
                except ValueError:
                    typed = raw
            if typed != value:
                changed[key] = typed
        if not changed:
            return render(request, "visualizer/_layer_check.html", {"state": "same"})
        _, after = edited_graph(project=project, base_model=base_model,
                                edits=[*edits, {"op": "set", "node": node_id, "params": changed}])
    except (NetworkError, ValueError) as exc:
        return render(request, "visualizer/_layer_check.html", {"state": "refused", "message": str(exc)})
    if after["errors"]:
        return render(request, "visualizer/_layer_check.html", {"state": "breaks",
                                                                 "message": after["errors"][0]["message"]})
    return render(request, "visualizer/_layer_check.html", {
        "state": "fits", "params": f"{(after['totals']['params'] - graph['totals']['params']) / 1e6:+.3f}",
        "flops": f"{(after['totals']['flops'] - graph['totals']['flops']) / 1e9:+.3f}"})
