"""API plumbing shared by every app's ``apis.py`` (annotation, curation, rewardmodel).

It lives in ``config`` because rewardmodel may not import annotation: the error shape, the 409
exception and the ``handle_exception`` mapping are the same for every app's API.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import APIView


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ErrorOutputSerializer(serializers.Serializer):
    detail = serializers.CharField()

    class Meta:
        ref_name = "Error"


def error_response(description: str) -> OpenApiResponse:
    """An error response in the schema: ``{"detail": message}``."""
    return OpenApiResponse(response=ErrorOutputSerializer, description=description)


VALIDATION_400 = OpenApiResponse(description="Validation failed: an object mapping each field name to its messages.")
FORBIDDEN_403 = error_response("Your role does not allow this.")


class ServiceApi(APIView):
    """Base view: token or session auth, login required, service errors mapped to HTTP.

    A Django ``ValidationError`` becomes 400 with field errors; an exception listed in
    ``conflict_exceptions`` becomes 409 ``{"detail": message}``. Authentication is the configured
    ``DEFAULT_AUTHENTICATION_CLASSES`` (so token expiry and revocation apply here too), with the
    ones that send a ``WWW-Authenticate`` header (tokens) first, so that an anonymous request gets
    401 with ``WWW-Authenticate: Token`` rather than 403; a browser session still works, with CSRF
    checks on writes.
    """

    permission_classes = [IsAuthenticated]
    conflict_exceptions: tuple[type[Exception], ...] = ()

    def get_authenticators(self) -> list[Any]:
        authenticators = [cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
        # sorted() is stable: header-sending schemes first, otherwise the configured order.
        return sorted(authenticators, key=lambda a: a.authenticate_header(self.request) is None)

    def handle_exception(self, exc: Exception) -> Response:
        if self.conflict_exceptions and isinstance(exc, self.conflict_exceptions):
            exc = Conflict(str(exc))
        elif isinstance(exc, DjangoValidationError):
            exc = exceptions.ValidationError(as_serializer_error(exc))
        return super().handle_exception(exc)


def conflict_from(exc: DjangoValidationError) -> Conflict:
    """A service's non-field ``ValidationError`` about an object's state (e.g. "job is succeeded"), as 409."""
    return Conflict(" ".join(str(m) for m in exc.messages))


def bad_request_from(exc: DjangoValidationError, default_field: str = "non_field_errors") -> exceptions.ValidationError:
    """A service's ``ValidationError`` as a 400 naming a field; a message without one goes under ``default_field``."""
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(as_serializer_error(exc))
    return exceptions.ValidationError({default_field: [str(m) for m in exc.messages]})
