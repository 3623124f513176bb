"""HTTP answers the deployment page and the API give alike."""

from django.http import FileResponse, Http404

from projects.jobs.storage import absolute

from .models import Artifact


def artifact_download_response(artifact: Artifact) -> FileResponse:
    """The artifact's file as an attachment, streamed from disk."""
    path = absolute(artifact.path)
    if not path.is_file():
        raise Http404("The file is gone from the server.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=artifact.file_name)
