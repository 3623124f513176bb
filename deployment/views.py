from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404

from projects.access import teams_for
from projects.audit import audit_record
from projects.storage import absolute

from .models import Artifact


@login_required
def artifact_download(request, artifact_id: int):
    artifact = get_object_or_404(Artifact.objects.filter(project__team__in=teams_for(request.user)), pk=artifact_id)
    path = absolute(artifact.path)
    if not path.is_file():
        raise Http404("The file is gone from the server.")
    audit_record(actor=request.user, action="downloaded", target=artifact)
    return FileResponse(path.open("rb"), as_attachment=True, filename=artifact.file_name)
