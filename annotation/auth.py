"""Authentication: log-in lockout on the form and the token endpoint, expiring and revocable API tokens.

- The log-in form and ``POST /api/auth/token/`` share one lockout (``config.lockout``): after
  ``LOGIN_FAILURE_LIMIT`` failures for a username from one address, or ``LOGIN_IP_FAILURE_LIMIT``
  failures from one address, every attempt they cover is refused for ``LOGIN_LOCKOUT_SECONDS``.
- API tokens (DRF's ``Token``, one per user) expire ``TOKEN_TTL_HOURS`` after they were issued
  (0: never); an expired token is deleted on use and a new one is issued on the next log-in.
- A user revokes their own token (``DELETE /api/auth/token/``); an admin revokes anyone's
  (``DELETE /api/users/<id>/token/``, the users page, or the Django admin's Tokens list).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from annotation.permissions import IsAdminRole
from annotation.tokens import ExpiringTokenAuthentication, token_expires_at, token_issue, token_revoke
from config.lockout import client_ip, lockout_message, login_failed, login_locked, login_succeeded

# --- log-in form -------------------------------------------------------------------------------


class LockoutAuthenticationForm(AuthenticationForm):
    """Django's log-in form, refusing every attempt while the username or the address is locked out."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request)
        if login_locked(username, ip):
            raise forms.ValidationError(lockout_message(), code="locked_out")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                login_failed(username, ip)
            raise
        login_succeeded(username, ip)
        return cleaned


class LockoutLoginView(LoginView):
    """The log-in page with the lockout form."""

    form_class = LockoutAuthenticationForm


# --- token API ---------------------------------------------------------------------------------


class LoginRateThrottle(AnonRateThrottle):
    """Requests to the token endpoint per client address (``API_THROTTLE_LOGIN``), on top of the lockout."""

    scope = "login"


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True, help_text="null when tokens do not expire.")

    class Meta:
        ref_name = "AuthToken"


class TokenObtainApi(APIView):
    """POST: exchange a username and password for your API token. DELETE: revoke your token (log out).

    Send the token as ``Authorization: Token <key>``. Failed attempts count towards the log-in lockout
    (shared with the log-in page): while locked out, every attempt gets 429, the right password too.
    """

    authentication_classes = [ExpiringTokenAuthentication, SessionAuthentication]
    throttle_classes = [LoginRateThrottle]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})

        class Meta:
            ref_name = "AuthTokenRequest"

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_throttles(self) -> list[Any]:
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        tags=["auth"],
        request=InputSerializer,
        responses={
            200: TokenOutputSerializer,
            400: OpenApiResponse(description="Wrong username or password, or a malformed request."),
            429: OpenApiResponse(description="Locked out after too many failures, or too many requests."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        from django.contrib.auth import authenticate

        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        ip = client_ip(request)
        if login_locked(username, ip):
            raise exceptions.Throttled(wait=int(settings.LOGIN_LOCKOUT_SECONDS), detail=lockout_message())
        user = authenticate(request=request._request, username=username, password=serializer.validated_data["password"])
        if user is None or not user.is_active:
            login_failed(username, ip)
            raise exceptions.ValidationError(
                {"non_field_errors": ["Unable to log in with the username and password given."]}
            )
        login_succeeded(username, ip)
        token = token_issue(user=user)
        return Response(TokenOutputSerializer({"token": token.key, "expires_at": token_expires_at(token)}).data)

    @extend_schema(tags=["auth"], request=None, responses={204: OpenApiResponse(description="Revoked.")})
    def delete(self, request: Request) -> Response:
        token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserTokenRevokeApi(APIView):
    """DELETE: revoke a user's API token (admins). Their requests with it get 401 from then on."""

    authentication_classes = [ExpiringTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, IsAdminRole]

    @extend_schema(
        tags=["auth"],
        request=None,
        responses={
            204: OpenApiResponse(description="Revoked (or the user had no token)."),
            403: OpenApiResponse(description="Only admins may do this."),
            404: OpenApiResponse(description="No such user."),
        },
    )
    def delete(self, request: Request, user_id: int) -> Response:
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is None:
            raise exceptions.NotFound("No such user.")
        token_revoke(user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)
