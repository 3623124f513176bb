"""The API's sign-in: a username and password for a token, throttled by django-axes like the login page."""

from rest_framework.authtoken.views import ObtainAuthToken


class TokenObtainView(ObtainAuthToken):
    """DRF's own view, but authentication sees Django's request rather than DRF's wrapper around it.

    django-axes marks a locked-out attempt on the request it is given and its middleware reads the mark from
    Django's request; marked on the wrapper, the lockout would be lost and a guesser would simply get 400s."""

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "request": self.request._request}
