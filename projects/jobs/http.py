"""HTTP answers the job pages and the API give alike."""

from django.http import StreamingHttpResponse

from .selectors import log_download


def log_download_response(job) -> StreamingHttpResponse:
    """The whole log as a text file, streamed from the database as it is sent (never built in memory)."""
    filename, text = log_download(job)
    response = StreamingHttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
