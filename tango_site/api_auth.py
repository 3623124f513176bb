"""The API's sign-in: a username and password for a new API token, throttled by django-axes like the login page."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from projects.tokens import api_token_create


class TokenObtainView(APIView):
    """Sign in with a username and password; the answer is a new API token (listed and revocable at /tokens/).

    Authentication sees Django's request rather than DRF's wrapper around it: django-axes marks a locked-out
    attempt on the request it is given, and its middleware reads the mark from Django's request; marked on the
    wrapper, the lockout would be lost and a guesser would simply get 400s."""

    authentication_classes = []
    permission_classes = [AllowAny]
    serializer_class = AuthTokenSerializer

    @extend_schema(request=AuthTokenSerializer, responses={200: inline_serializer(
        "IssuedToken", {"token": serializers.CharField(help_text="Send as 'Authorization: Token <key>'.")})})
    def post(self, request):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request._request})
        serializer.is_valid(raise_exception=True)
        _, key = api_token_create(user=serializer.validated_data["user"], name="Signed in at /api/auth/token/")
        return Response({"token": key})
