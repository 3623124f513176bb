"""What the upload-refusal tests share (projects/tests/test_dataset_upload_refusals.py,
deployment/tests/test_upload_refusals.py): a Django that cannot keep an upload without failing the request, and
the data folder's files to compare before and after.

FILE_UPLOAD_MAX_MEMORY_SIZE is lowered to 1 KB, so Django writes any file it keeps to a temporary file in
FILE_UPLOAD_TEMP_DIR, which points at a folder that does not exist: keeping a byte of a larger file fails the request.
Where a file passes the name check and is dropped for its size, `django_temp_folder` makes the folder, to be checked
empty afterwards.
"""

from django.test import Client


def uploads_unkept(settings, tmp_path):
    """Django may keep no upload (and MEDIA_ROOT is the test's own)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "no-such-folder")


def django_temp_folder(settings, tmp_path):
    folder = tmp_path / "django-tmp"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


def files_under(root):
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def page_client(user, url):
    """A browser whose POSTs are CSRF-checked, as a real one's are (the check is what read the body first), with the
    token `url` gave it."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    client.get(url)
    return client, client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""
