from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404

from .http import artifact_download_response
from .selectors import artifacts_for


@login_required
def artifact_download(request, artifact_id: int):
    return artifact_download_response(get_object_or_404(artifacts_for(request.user), pk=artifact_id))
