"""The network editor page. Edits are previewed and saved through the API (/api/architectures/); the layer panel is a
server-rendered htmx form: fetched for the clicked node, checked as it is typed, and applied here (the accepted edit
goes back to the page's edit list, where undo and redo walk it)."""

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from projects.access import can_edit, projects_for

from .forms import LayerForm
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


class _Layer:
    """One node of the network as the client's draft edits leave it (the edits travel with every request: the page
    holds them until a version is saved), and its form."""

    def __init__(self, request, project, data, *, bound: bool):
        self.project = project
        self.can_edit = can_edit(request.user, project.team)
        try:
            self.edits = json.loads(data.get("edits") or "[]")
        except ValueError:
            raise NetworkError("The draft edits are not JSON.") from None
        self.base_model = data.get("base_model") or base_model_for(project)
        _, self.graph = edited_graph(project=project, base_model=self.base_model, edits=self.edits)
        node_id = data.get("node", "")
        self.node = next((n for n in self.graph["nodes"] if n["id"] == node_id), None)
        if self.node is None:
            raise NetworkError(f"No layer {node_id!r} in this network.")
        self.form = None
        if self.node["kind"] == "module":
            self.form = LayerForm(self.node, data if bound else None, editable=self.can_edit)

    def check(self) -> dict | None:
        """Validate the form, then let the graph core try the change; the network after it, or None (errors on the
        form)."""
        if not self.form.is_valid():
            return None
        if not self.form.changed:
            return self.graph
        try:
            _, after = edited_graph(project=self.project, base_model=self.base_model, edits=[*self.edits, self.edit])
        except NetworkError as exc:
            self.form.refused(str(exc))
            return None
        return after

    @property
    def edit(self) -> dict:
        return {"op": "set", "node": self.node["id"], "params": self.form.changed}

    def render(self, request, **extra):
        from .graph.layers import PALETTE
        from .graph.yolo import ROW_PALETTE

        node = self.node
        error = next((e["message"] for e in self.graph["errors"] if e["node"] == node["id"]), "")
        palette = list(ROW_PALETTE) if self.graph.get("family") == "yolo" else PALETTE
        return render(request, "visualizer/_layer_form.html", {
            "project": self.project, "node": node, "form": self.form, "can_edit": self.can_edit, "error": error,
            "edits": json.dumps(self.edits), "base_model": self.base_model, "palette": palette,
            "width": node["op"] in ("Conv2d", "Linear"), "mflops": f"{(node.get('flops') or 0) / 1e6:.2f}",
            "shape": json.dumps(node.get("shape") or "?"), **extra})


@login_required
def layer_form(request, project_id: int):
    """The layer panel's form for one node (GET), as the draft edits leave it; POST is Apply: the change validated
    here, and on success handed to the page as an `network-edit` event (HX-Trigger) that joins its edit list, where
    undo and redo walk it; on failure the form comes back with the reasons next to the fields."""
    project = get_object_or_404(projects_for(request.user), pk=project_id)
    post = request.method == "POST"
    if post and not can_edit(request.user, project.team):
        raise PermissionDenied("Viewers cannot change anything in this team.")
    try:
        layer = _Layer(request, project, request.POST if post else request.GET, bound=post)
    except NetworkError as exc:
        return render(request, "visualizer/_layer_check.html", {"state": "refused", "message": str(exc)})
    if not post or layer.form is None:
        return layer.render(request)
    if layer.check() is None:
        return layer.render(request)
    if not layer.form.changed:
        return layer.render(request, note="No change to apply.")
    target = layer.node.get("target") or layer.node["id"]
    response = layer.render(request, note="Applied.")
    response["HX-Trigger"] = json.dumps({"network-edit": {"edit": layer.edit, "message": f"Changed {target}."}})
    return response


@login_required
@require_POST
def layer_check(request, project_id: int):
    """What applying the layer form would do, before it is applied: a value the layer refuses (also next to its
    field), or what it breaks further on (the node and the mismatch), or how the parameters and FLOPs move."""
    project = get_object_or_404(projects_for(request.user), pk=project_id)
    try:
        layer = _Layer(request, project, request.POST, bound=True)
        if layer.form is None:
            raise NetworkError("This node has no parameters to edit.")
    except NetworkError as exc:
        return render(request, "visualizer/_layer_check.html", {"state": "refused", "message": str(exc)})
    after = layer.check()
    context = {"form": layer.form}
    if after is None:
        errors = [e for field_errors in layer.form.errors.values() for e in field_errors]
        context.update(state="refused", message=" ".join(errors))
    elif not layer.form.changed:
        context.update(state="same")
    elif after["errors"]:
        context.update(state="breaks", message=after["errors"][0]["message"])
    else:
        context.update(state="fits",
                       params=f"{(after['totals']['params'] - layer.graph['totals']['params']) / 1e6:+.3f}",
                       flops=f"{(after['totals']['flops'] - layer.graph['totals']['flops']) / 1e9:+.3f}")
    return render(request, "visualizer/_layer_check.html", context)
