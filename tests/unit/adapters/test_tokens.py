from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from rag.adapters.tokens import JwtTokens
from rag.core.auth import Permission, Principal, Role
from rag.core.errors import Unauthenticated
from rag.settings import load_settings
from tests.unit.test_settings import GOOD

SECRET = "k" * 64  # long enough for the HS512 case too
ALICE = Principal.of("alice", "acme", Role.USER)


def tokens(**kwargs: object) -> JwtTokens:
    return JwtTokens(SECRET, **kwargs)  # type: ignore[arg-type]


def at(moment: datetime) -> JwtTokens:
    return tokens(clock=lambda: moment)


def test_access_token_round_trip_carries_the_principal() -> None:
    issued = tokens().issue_access(ALICE)
    principal = tokens().verify_access(issued.token)
    assert principal == ALICE
    assert principal.can(Permission.GENERATE_EXECUTE)


def test_claims_follow_the_spec() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    access = at(now).issue_access(ALICE)
    refresh = at(now).issue_refresh(ALICE)
    header = jwt.get_unverified_header(access.token)
    claims = jwt.decode(access.token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert claims["iss"] == "rag-system"
    assert claims["aud"] == "rag-users"
    assert claims["sub"] == "alice"
    assert claims["tenant"] == "acme"
    assert claims["role"] == "user"
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 30 * 60
    assert access.expires_at == now + timedelta(minutes=30)
    refresh_claims = jwt.decode(refresh.token, options={"verify_signature": False})
    assert refresh_claims["typ"] == "refresh"
    assert refresh_claims["exp"] - refresh_claims["iat"] == 7 * 24 * 3600
    assert refresh.expires_at == now + timedelta(days=7)
    assert claims["jti"] != refresh_claims["jti"]


def test_settings_configure_lifetimes_issuer_and_audience() -> None:
    settings = load_settings(GOOD | {"JWT_ACCESS_TOKEN_EXPIRE_MINUTES": "5", "JWT_AUDIENCE": "other"})
    codec = JwtTokens.from_settings(settings)
    claims = jwt.decode(codec.issue_access(ALICE).token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 300
    assert claims["aud"] == "other"
    assert codec.verify_access(codec.issue_access(ALICE).token) == ALICE


def test_expired_access_token_is_refused_with_a_hint() -> None:
    old = at(datetime.now(UTC) - timedelta(minutes=31)).issue_access(ALICE)
    with pytest.raises(Unauthenticated, match=r"access token expired: refresh it \(AuthService/Refresh\)"):
        tokens().verify_access(old.token)


def test_token_just_inside_its_lifetime_is_accepted() -> None:
    recent = at(datetime.now(UTC) - timedelta(minutes=29)).issue_access(ALICE)
    assert tokens().verify_access(recent.token) == ALICE


def test_expired_refresh_token_is_refused() -> None:
    old = at(datetime.now(UTC) - timedelta(days=7, minutes=1)).issue_refresh(ALICE)
    with pytest.raises(Unauthenticated, match="refresh token expired: log in again"):
        tokens().verify_refresh(old.token)


def test_forged_signature_is_refused() -> None:
    forged = JwtTokens("f" * 40).issue_access(ALICE)
    with pytest.raises(Unauthenticated, match="bad signature"):
        tokens().verify_access(forged.token)


def test_tampered_payload_is_refused() -> None:
    header, payload, signature = (
        tokens().issue_access(Principal.of("ro", "acme", Role.READONLY)).token.split(".")
    )
    admin_payload = tokens().issue_access(Principal.of("ro", "acme", Role.ADMIN)).token.split(".")[1]
    with pytest.raises(Unauthenticated, match="bad signature"):
        tokens().verify_access(f"{header}.{admin_payload}.{signature}")
    assert payload != admin_payload


def test_wrong_audience_is_refused() -> None:
    other = tokens(audience="someone-else").issue_access(ALICE)
    with pytest.raises(Unauthenticated, match="another audience than 'rag-users'"):
        tokens().verify_access(other.token)


def test_wrong_issuer_is_refused() -> None:
    other = tokens(issuer="evil-corp").issue_access(ALICE)
    with pytest.raises(Unauthenticated, match="another issuer than 'rag-system'"):
        tokens().verify_access(other.token)


def test_refresh_token_does_not_work_as_an_access_token() -> None:
    refresh = tokens().issue_refresh(ALICE)
    with pytest.raises(Unauthenticated, match="a refresh token cannot be used as an access token"):
        tokens().verify_access(refresh.token)
    assert tokens().verify_refresh(refresh.token) == ALICE


def test_access_token_does_not_work_as_a_refresh_token() -> None:
    with pytest.raises(Unauthenticated, match="an access token cannot be used as a refresh token"):
        tokens().verify_refresh(tokens().issue_access(ALICE).token)


def _signed(claims: dict[str, object], algorithm: str = "HS256") -> str:
    return jwt.encode(claims, SECRET, algorithm=algorithm)


def _claims(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": "alice",
        "tenant": "acme",
        "role": "user",
        "typ": "access",
        "iss": "rag-system",
        "aud": "rag-users",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "typ", "tenant", "role"])
def test_every_required_claim_must_be_present(claim: str) -> None:
    with pytest.raises(Unauthenticated, match=f"the '{claim}' claim is missing"):
        tokens().verify_access(_signed(_claims(**{claim: None})))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role": "root"}, "unknown role or tenant"),
        ({"tenant": "Not A Tenant"}, "unknown role or tenant"),
        ({"sub": ""}, "malformed sub, tenant or role claim"),
        ({"role": ["admin"]}, "malformed sub, tenant or role claim"),
        ({"typ": "id"}, "a foreign token cannot be used as an access token"),
        ({"iat": datetime.now(UTC) + timedelta(hours=1)}, "malformed or not yet valid"),
        ({"ver": -1}, "malformed ver claim"),
        ({"ver": "3"}, "malformed ver claim"),
        ({"ver": True}, "malformed ver claim"),
    ],
)
def test_malformed_claims_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        tokens().verify_access(_signed(_claims(**overrides)))


def test_unsigned_and_other_algorithms_are_refused() -> None:
    unsigned = jwt.encode(_claims(), key=None, algorithm="none")  # type: ignore[arg-type]  # alg none: no key
    with pytest.raises(Unauthenticated, match="invalid access token"):
        tokens().verify_access(unsigned)
    hs512 = jwt.encode(_claims(), SECRET, algorithm="HS512")
    with pytest.raises(Unauthenticated, match="invalid access token"):
        tokens().verify_access(hs512)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(Unauthenticated, match="invalid access token: malformed"):
        tokens().verify_access(garbage)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        JwtTokens("short")


def test_a_remembered_access_token_still_expires() -> None:
    codec = tokens(access_ttl=timedelta(seconds=1), leeway=timedelta(0))
    issued = codec.issue_access(ALICE)
    assert codec.verify_access(issued.token) == ALICE
    assert codec.verify_access(issued.token) == ALICE  # the second answer comes from memory
    while datetime.now(UTC) < issued.expires_at + timedelta(milliseconds=50):
        time.sleep(0.05)
    with pytest.raises(Unauthenticated, match="access token expired"):
        codec.verify_access(issued.token)


def test_only_verified_tokens_are_remembered() -> None:
    codec = tokens()
    good = codec.issue_access(ALICE).token
    assert codec.verify_access(good) == ALICE
    header, payload, signature = good.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="bad signature"):
            codec.verify_access(forged)


def test_tokens_carry_the_token_version() -> None:
    revoked_twice = Principal.of("alice", "acme", Role.USER, token_version=2)
    access, refresh = tokens().issue_access(revoked_twice), tokens().issue_refresh(revoked_twice)
    assert jwt.decode(access.token, options={"verify_signature": False})["ver"] == 2
    assert tokens().verify_access(access.token).token_version == 2
    assert tokens().verify_refresh(refresh.token).token_version == 2


def test_a_token_from_before_versions_has_version_0() -> None:
    assert tokens().verify_access(_signed(_claims())).token_version == 0
