"""JSON Web Tokens with PyJWT (SPEC §4): HS256, issuer and audience checked, typed claims.

Claims: ``sub`` (username), ``tenant``, ``role``, ``typ`` (``access`` or ``refresh``), ``iss``,
``aud``, ``iat``, ``exp``, a random ``jti`` and ``ver``, the account's token version (see
:mod:`rag.core.authentication`). Every one of them but ``ver`` is required on decode; a token
without ``ver`` (issued before versions existed) has version 0. A token of the other ``typ``
is refused, so a refresh token never works as an access token.
PyJWT errors become :class:`~rag.core.errors.Unauthenticated` with a message for the caller.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from cachetools import LRUCache

from rag.core.auth import Principal, Role, validate_tenant
from rag.core.authentication import IssuedToken
from rag.core.errors import InvalidInput, Unauthenticated
from rag.settings import Settings

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]
_ARTICLE = {"access": "an access", "refresh": "a refresh"}
_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "typ", "tenant", "role"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class JwtTokens:
    """Issues and verifies the access and refresh tokens of one deployment."""

    def __init__(
        self,
        secret: str,
        *,
        issuer: str = "rag-system",
        audience: str = "rag-users",
        access_ttl: timedelta = timedelta(minutes=30),
        refresh_ttl: timedelta = timedelta(days=7),
        leeway: timedelta = timedelta(seconds=10),
        clock: Callable[[], datetime] = _utcnow,
        verified_cache_size: int = 4096,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters")
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._ttl: dict[TokenType, timedelta] = {"access": access_ttl, "refresh": refresh_ttl}
        self._leeway = leeway
        self._clock = clock
        # Access tokens already verified, until they expire: every RPC carries one, and
        # verifying the HMAC and the claims again was ~4 % of the API's CPU. Only verified
        # tokens enter; an entry never outlives its token's exp (plus the leeway decode allows).
        self._verified: LRUCache[str, tuple[Principal, datetime]] = LRUCache(maxsize=verified_cache_size)
        self._verified_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtTokens:
        return cls(
            settings.JWT_SECRET_KEY.get_secret_value(),
            issuer=settings.JWT_ISSUER,
            audience=settings.JWT_AUDIENCE,
            access_ttl=timedelta(minutes=settings.JWT_ACCESS_TOKEN_EXPIRE_MINUTES),
            refresh_ttl=timedelta(days=settings.JWT_REFRESH_TOKEN_EXPIRE_DAYS),
        )

    def issue_access(self, principal: Principal) -> IssuedToken:
        return self._issue(principal, "access")

    def issue_refresh(self, principal: Principal) -> IssuedToken:
        return self._issue(principal, "refresh")

    def verify_access(self, token: str) -> Principal:
        now = self._clock()
        with self._verified_lock:
            hit = self._verified.get(token)
        if hit is not None and now < hit[1]:
            return hit[0]
        principal, claims = self._verify_claims(token, "access")
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        with self._verified_lock:
            self._verified[token] = (principal, expires)
        return principal

    def verify_refresh(self, token: str) -> Principal:
        return self._verify(token, "refresh")

    def _issue(self, principal: Principal, typ: TokenType) -> IssuedToken:
        # Whole seconds: the JWT NumericDate the token carries is what the caller is told.
        now = self._clock().replace(microsecond=0)
        expires_at = now + self._ttl[typ]
        claims = {
            "sub": principal.username,
            "tenant": principal.tenant,
            "role": principal.role.value,
            "typ": typ,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "exp": expires_at,
            "jti": uuid.uuid4().hex,
            "ver": principal.token_version,
        }
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires_at)

    def _verify(self, token: str, typ: TokenType) -> Principal:
        return self._verify_claims(token, typ)[0]

    def _verify_claims(self, token: str, typ: TokenType) -> tuple[Principal, dict[str, Any]]:
        claims = self._decode(token, typ)
        if claims["typ"] != typ:
            other = _ARTICLE.get(str(claims["typ"]), "a foreign")
            raise Unauthenticated(f"{other} token cannot be used as {_ARTICLE[typ]} token")
        username, tenant, role = claims["sub"], claims["tenant"], claims["role"]
        if not all(isinstance(value, str) and value for value in (username, tenant, role)):
            raise Unauthenticated(f"invalid {typ} token: malformed sub, tenant or role claim")
        version = claims.get("ver", 0)
        if type(version) is not int or version < 0:
            raise Unauthenticated(f"invalid {typ} token: malformed ver claim")
        try:
            return Principal.of(username, validate_tenant(tenant), Role(role), token_version=version), claims
        except (ValueError, InvalidInput):
            raise Unauthenticated(f"invalid {typ} token: unknown role or tenant") from None

    def _decode(self, token: str, typ: TokenType) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError:
            hint = "refresh it (AuthService/Refresh) or log in again" if typ == "access" else "log in again"
            raise Unauthenticated(f"{typ} token expired: {hint}") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"{typ} token is for another audience than {self._audience!r}") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"{typ} token has another issuer than {self._issuer!r}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"invalid {typ} token: the {exc.claim!r} claim is missing") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated(f"invalid {typ} token: bad signature") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated(f"invalid {typ} token: malformed or not yet valid") from None
        return claims
