from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404

from projects.audit import audit_record

from .http import artifact_download_response
from .selectors import artifacts_for


@login_required
def artifact_download(request, artifact_id: int):
    artifact = get_object_or_404(artifacts_for(request.user), pk=artifact_id)
    audit_record(actor=request.user, action="downloaded", target=artifact)
    return artifact_download_response(artifact)
