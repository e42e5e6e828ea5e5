"""Bearer-token authentication and SMART ``system/`` scopes.

Tokens are JWTs from the configured issuer, verified against its JWKS (a file or a URL): signature
(RS256, RS384 or ES384; the algorithms SMART Backend Services names), ``iss``, ``aud``, ``exp`` and
``nbf``. Scopes follow SMART App Launch: v1 ``system/Task.read`` / ``.write`` / ``.*`` and v2
``system/Task.rs`` / ``system/ServiceRequest.c`` (letters from ``cruds``); ``system/*.…`` covers
every resource type. A v2 scope with a ``?`` restriction is not honoured (the service cannot
enforce it), so it grants nothing here. Refusals raise 401 (with an RFC 6750 ``WWW-Authenticate``
challenge) or 403.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWTError

from fhir_service.errors import (
    AuthenticationError,
    ForbiddenError,
    SettingsError,
    UnavailableError,
)
from fhir_service.settings import Settings

#: Signature algorithms accepted (SMART Backend Services: RS384 and ES384; RS256 widely used).
ALGORITHMS = ("RS256", "RS384", "ES384")
#: Allowed clock skew for exp/nbf, seconds.
LEEWAY_S = 30
REALM = "cac-fhir"


class Interaction(StrEnum):
    """SMART v2 scope letters (SMART App Launch 2.0 scopes-and-launch-context)."""

    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"


#: SMART v1 permission -> the v2 letters it stands for.
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^system/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<perm>read|write|\*|c?r?u?d?s?)$")


def scope_grants(scopes: Iterable[str], resource_type: str, interaction: Interaction) -> bool:
    """Whether any of ``scopes`` allows ``interaction`` on ``resource_type``.

    Examples
    --------
    >>> scope_grants(["system/ServiceRequest.write"], "ServiceRequest", Interaction.CREATE)
    True
    >>> scope_grants(["system/Task.rs"], "Task", Interaction.SEARCH)
    True
    >>> scope_grants(["system/Task.r"], "Task", Interaction.SEARCH)
    False
    """
    for scope in scopes:
        match = _SCOPE.match(scope)
        if match is None or not match["perm"]:
            continue
        if match["type"] not in ("*", resource_type):
            continue
        letters = _V1.get(match["perm"], match["perm"])
        if interaction.value in letters:
            return True
    return False


def required_scope(resource_type: str, interaction: Interaction) -> str:
    """The SMART v2 scope to ask for (e.g. ``system/ServiceRequest.c``)."""
    return f"system/{resource_type}.{interaction.value}"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    Attributes
    ----------
    subject
        ``client_id`` claim, else ``sub`` (used in AuditEvents; never a patient identifier).
    scopes
        Granted scopes, from ``scope`` (space-separated) or ``scp`` (list).
    """

    subject: str
    scopes: frozenset[str]

    def require(self, resource_type: str, interaction: Interaction) -> None:
        """Raise :class:`ForbiddenError` unless a scope grants the interaction."""
        if not scope_grants(self.scopes, resource_type, interaction):
            raise ForbiddenError(
                f"the token lacks the scope {required_scope(resource_type, interaction)}"
                f" (or a SMART v1 equivalent) needed for this request"
            )


#: The principal used when authentication is disabled (every scope).
ANONYMOUS = Principal("anonymous (authentication disabled)", frozenset({"system/*.*"}))


class KeySource(Protocol):
    """Where verification keys come from."""

    def key_for(self, token: str) -> Any:
        """The public key that should have signed ``token``."""
        ...


class JWKSFileKeys:
    """Keys from a JWKS file, read once at start-up."""

    def __init__(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as handle:
                self._keys = PyJWKSet.from_dict(json.load(handle))
        except (OSError, ValueError, PyJWTError) as exc:
            raise SettingsError(f"CAC_JWKS_FILE {path} is not a readable JWKS: {exc}") from None

    def key_for(self, token: str) -> Any:
        kid = jwt.get_unverified_header(token).get("kid")
        keys: list[PyJWK] = list(self._keys.keys)
        if kid is not None:
            keys = [k for k in keys if k.key_id == kid]
        if len(keys) != 1:
            raise AuthenticationError(
                "the token's key id (kid) matches no key of the configured issuer"
            )
        return keys[0].key


class JWKSURLKeys:
    """Keys fetched from the issuer's JWKS URL and cached (refetched on an unknown kid)."""

    def __init__(self, url: str) -> None:
        self._client = PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)

    def key_for(self, token: str) -> Any:
        try:
            return self._client.get_signing_key_from_jwt(token).key
        except PyJWKClientConnectionError:
            raise UnavailableError("the token issuer's JWKS cannot be fetched right now") from None
        except PyJWKClientError:
            raise AuthenticationError(
                "the token's key id (kid) matches no key of the configured issuer"
            ) from None


class TokenValidator:
    """Validate ``Authorization: Bearer`` headers against the configured issuer."""

    def __init__(self, keys: KeySource, issuer: str, audience: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenValidator:
        """Build the validator; keys from ``CAC_JWKS_FILE`` if set, else ``CAC_JWKS_URL``."""
        if settings.token_issuer is None or settings.token_audience is None:
            raise SettingsError("CAC_TOKEN_ISSUER and CAC_TOKEN_AUDIENCE are required")
        keys: KeySource
        if settings.jwks_file is not None:
            keys = JWKSFileKeys(str(settings.jwks_file))
        elif settings.jwks_url is not None:
            keys = JWKSURLKeys(settings.jwks_url)
        else:
            raise SettingsError("CAC_JWKS_FILE or CAC_JWKS_URL is required")
        return cls(keys, settings.token_issuer, settings.token_audience)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by a valid bearer token.

        Raises
        ------
        AuthenticationError
            Missing, malformed, badly signed, expired, not yet valid, or for another issuer or
            audience (HTTP 401).
        UnavailableError
            The JWKS URL cannot be reached (HTTP 503).
        """
        if not authorization:
            raise AuthenticationError("an Authorization: Bearer <token> header is required")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        try:
            key = self._keys.key_for(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError(
                "the token is not valid yet (nbf/iat in the future)"
            ) from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("the token was issued for another audience") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("the token was issued by another issuer") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("the token signature does not verify") from None
        except jwt.InvalidAlgorithmError:
            raise AuthenticationError(
                "the token is signed with an algorithm this service does not accept"
                f" ({', '.join(ALGORITHMS)})"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"the token lacks the {exc.claim!r} claim") from None
        except (PyJWTError, ValueError, TypeError):
            raise AuthenticationError("the bearer token is not a valid JWT") from None
        raw_scope = claims.get("scope", claims.get("scp", ""))
        if isinstance(raw_scope, str):
            scopes = frozenset(raw_scope.split())
        elif isinstance(raw_scope, list):
            scopes = frozenset(str(s) for s in raw_scope)
        else:
            scopes = frozenset()
        subject = claims.get("client_id") or claims.get("sub") or "unknown client"
        return Principal(str(subject), scopes)


def www_authenticate(error: str | None = None, description: str | None = None) -> str:
    """RFC 6750 section 3 challenge for a 401/403."""
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    if description:
        value += ', error_description="' + description.replace('"', "'") + '"'
    return value
