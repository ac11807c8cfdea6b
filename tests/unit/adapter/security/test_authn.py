"""Delegated authentication: front proxy, client certificates, TokenReview, the ConfigMap."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Sequence

import pytest
from cryptography import x509

from adapter.security.authn import (
    AuthenticationConfig,
    AuthenticationConfigError,
    AuthenticationResult,
    DelegatingAuthenticator,
    RequestHeaderConfig,
    TokenReviewAuthenticator,
    UserInfo,
    parse_authentication_configmap,
    verify_client_chain,
)
from tests.unit.adapter.security.certs import DAY, NOW, Issued, make_ca, make_leaf
from tests.unit.adapter.security.fakes import TOKEN_REVIEWS, FakeClock, FakeKube

PROXY_CA = make_ca("front-proxy-ca")
CLIENT_CA = make_ca("client-ca")
STRANGER_CA = make_ca("stranger-ca")
PROXY = make_leaf(PROXY_CA, "front-proxy-client")
OTHER_PROXY_NAME = make_leaf(PROXY_CA, "not-the-aggregator")
ALICE_CERT = make_leaf(CLIENT_CA, "alice", organizations=("team-a", "team-b"))
STRANGER = make_leaf(STRANGER_CA, "front-proxy-client")


def configmap_data(**overrides: str) -> dict[str, str]:
    """The ConfigMap as kube-apiserver writes it with the usual aggregation flags."""
    data = {
        "client-ca-file": CLIENT_CA.pem.decode(),
        "requestheader-client-ca-file": PROXY_CA.pem.decode(),
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    }
    data.update(overrides)
    return data


def headers(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in pairs]


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def authenticator(
    config: AuthenticationConfig | None = None,
    *,
    kube: FakeKube | None = None,
    clock: FakeClock | None = None,
    client_certificates: bool = True,
) -> DelegatingAuthenticator:
    tokens = None
    if kube is not None:
        tokens = TokenReviewAuthenticator(kube.api(), clock=clock or FakeClock())
    return DelegatingAuthenticator(
        None,
        token_authenticator=tokens,
        config=config or parse_authentication_configmap(configmap_data()),
        client_certificates=client_certificates,
        now=lambda: NOW,
    )


def authenticate(
    auth: DelegatingAuthenticator,
    request_headers: list[tuple[bytes, bytes]],
    chain: Sequence[Issued] = (),
) -> AuthenticationResult:
    return run(auth.authenticate(request_headers, tuple(c.certificate for c in chain)))


# ---------------------------------------------------------------------- the ConfigMap


def test_the_configmap_is_read_as_kube_apiserver_writes_it() -> None:
    config = parse_authentication_configmap(configmap_data())
    assert config.request_header == RequestHeaderConfig(
        client_cas=(PROXY_CA.certificate,),
        allowed_names=("front-proxy-client",),
        username_headers=("X-Remote-User",),
        uid_headers=(),
        group_headers=("X-Remote-Group",),
        extra_header_prefixes=("X-Remote-Extra-",),
    )
    assert config.client_cas == (CLIENT_CA.certificate,)
    trusted = config.trusted_ca_pem()
    assert CLIENT_CA.pem in trusted
    assert PROXY_CA.pem in trusted


def test_without_a_front_proxy_ca_there_is_no_request_header_authentication() -> None:
    data = configmap_data()
    del data["requestheader-client-ca-file"]
    config = parse_authentication_configmap(data)
    assert config.request_header is None
    assert config.client_cas == (CLIENT_CA.certificate,)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("requestheader-allowed-names", "front-proxy-client", "not a JSON list of strings"),
        ("requestheader-group-headers", '{"a": 1}', "not a JSON list of strings"),
        ("requestheader-username-headers", '["X-Remote-User", 3]', "not a JSON list of strings"),
        ("requestheader-username-headers", '["  "]', "empty header name"),
        ("requestheader-client-ca-file", "-----BEGIN CERTIFICATE-----\nxx", "requestheader-client"),
        ("client-ca-file", "hello", "'client-ca-file'"),
    ],
)
def test_a_malformed_configmap_value_is_named(key: str, value: str, message: str) -> None:
    with pytest.raises(AuthenticationConfigError, match=message) as caught:
        parse_authentication_configmap(configmap_data(**{key: value}))
    assert key in str(caught.value)


# ---------------------------------------------------------------------- chain verification


INTERMEDIATE = make_ca("intermediate", issuer=PROXY_CA)
VIA_INTERMEDIATE = make_leaf(INTERMEDIATE, "front-proxy-client")


@pytest.mark.parametrize(
    ("chain", "anchors", "expected"),
    [
        pytest.param((PROXY,), (PROXY_CA,), None, id="signed-by-the-ca"),
        pytest.param((PROXY,), (STRANGER_CA, PROXY_CA), None, id="one-of-several-cas"),
        pytest.param((STRANGER,), (PROXY_CA,), "not signed by a trusted CA", id="wrong-ca"),
        pytest.param(
            (VIA_INTERMEDIATE, INTERMEDIATE), (PROXY_CA,), None, id="through-an-intermediate"
        ),
        pytest.param(
            (VIA_INTERMEDIATE, INTERMEDIATE, PROXY_CA), (PROXY_CA,), None, id="root-sent-too"
        ),
        pytest.param(
            (VIA_INTERMEDIATE,),
            (PROXY_CA,),
            "not signed by a trusted CA",
            id="intermediate-missing",
        ),
        pytest.param(
            (VIA_INTERMEDIATE, STRANGER_CA),
            (PROXY_CA,),
            "not signed by the next",
            id="broken-chain",
        ),
        pytest.param(
            (make_leaf(PROXY_CA, "p", not_after=NOW - DAY),),
            (PROXY_CA,),
            "not valid at",
            id="expired",
        ),
        pytest.param(
            (make_leaf(PROXY_CA, "p", not_before=NOW + DAY),),
            (PROXY_CA,),
            "not valid at",
            id="future",
        ),
        pytest.param(
            (make_leaf(PROXY_CA, "p", client=False, server=True),),
            (PROXY_CA,),
            "not valid for client authentication",
            id="server-only-usage",
        ),
        pytest.param(
            (make_leaf(PROXY_CA, "p", eku=False),), (PROXY_CA,), None, id="no-usage-limit"
        ),
        pytest.param((PROXY,), (), "no trusted CA", id="no-anchors"),
        pytest.param((), (PROXY_CA,), "no client certificate", id="no-certificate"),
    ],
)
def test_client_chains_are_verified_like_go_does(
    chain: tuple[Issued, ...], anchors: tuple[Issued, ...], expected: str | None
) -> None:
    result = verify_client_chain(
        [c.certificate for c in chain], [a.certificate for a in anchors], NOW
    )
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert expected in result


def test_an_expired_ca_anchors_nothing() -> None:
    old_ca = make_ca("old-ca", not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    leaf = make_leaf(old_ca, "p", not_before=NOW - 2 * DAY, not_after=NOW + DAY)
    assert verify_client_chain([leaf.certificate], [old_ca.certificate], NOW) is not None


def test_a_leaf_cannot_act_as_a_ca() -> None:
    # Same subject as a CA would have, signed with a leaf's key: refused for not being a CA.
    fake_issuer = Issued(PROXY.certificate, PROXY.key)
    forged = make_leaf(fake_issuer, "front-proxy-client")
    assert verify_client_chain(
        [forged.certificate, PROXY.certificate], [PROXY_CA.certificate], NOW
    ) == (
        f"certificate CN='front-proxy-client' (serial {forged.certificate.serial_number:x}) "
        "is not signed by the next one it sent"
    )


# ---------------------------------------------------------------------- front proxy


def test_the_front_proxy_identity_comes_from_the_headers() -> None:
    result = authenticate(
        authenticator(),
        headers(
            ("X-Remote-User", "alice"),
            ("X-Remote-Group", "team-a"),
            ("X-Remote-Group", "team-b"),
            ("X-Remote-Extra-Scopes", "read"),
            ("X-Remote-Extra-Scopes", "write"),
            ("X-Remote-Extra-Acme.com%2fProject", "p1"),
        ),
        (PROXY,),
    )
    assert result.method == "front-proxy"
    assert result.user == UserInfo(
        name="alice",
        groups=("team-a", "team-b", "system:authenticated"),
        extra={"scopes": ("read", "write"), "acme.com/project": ("p1",)},
    )


def test_the_first_non_empty_user_header_wins_and_uids_are_read() -> None:
    config = parse_authentication_configmap(
        configmap_data(
            **{
                "requestheader-username-headers": '["X-Remote-User", "X-Proxy-User"]',
                "requestheader-uid-headers": '["X-Remote-Uid"]',
            }
        )
    )
    result = authenticate(
        authenticator(config),
        headers(("X-Remote-User", ""), ("X-Proxy-User", "bob"), ("X-Remote-Uid", "u-1")),
        (PROXY,),
    )
    assert result.user is not None
    assert (result.user.name, result.user.uid) == ("bob", "u-1")


def test_a_proxy_certificate_with_a_name_not_allowed_is_not_a_proxy() -> None:
    result = authenticate(authenticator(), headers(("X-Remote-User", "alice")), (OTHER_PROXY_NAME,))
    assert result.user is None
    assert any(
        "'not-the-aggregator' is not in requestheader-allowed-names" in e for e in result.errors
    )


def test_an_empty_allowed_names_list_accepts_any_proxy_name() -> None:
    config = parse_authentication_configmap(configmap_data(**{"requestheader-allowed-names": "[]"}))
    result = authenticate(
        authenticator(config), headers(("X-Remote-User", "alice")), (OTHER_PROXY_NAME,)
    )
    assert result.user is not None
    assert result.user.name == "alice"


def test_identity_headers_without_a_proxy_certificate_are_ignored() -> None:
    spoofed = headers(("X-Remote-User", "system:admin"), ("X-Remote-Group", "system:masters"))
    result = authenticate(authenticator(), spoofed)
    assert result.user is None
    assert result.errors == ()


def test_a_cluster_client_certificate_is_its_own_identity_whatever_the_headers_say() -> None:
    result = authenticate(
        authenticator(), headers(("X-Remote-User", "system:admin")), (ALICE_CERT,)
    )
    assert result.method == "client-certificate"
    assert result.user is not None
    assert result.user.name == "alice"
    assert result.user.groups == ("team-a", "team-b", "system:authenticated")
    assert result.user.extra["authentication.kubernetes.io/credential-id"][0].startswith(
        "X509SHA256="
    )


def test_client_certificates_can_be_turned_off() -> None:
    result = authenticate(authenticator(client_certificates=False), [], (ALICE_CERT,))
    assert result.user is None


def test_a_proxy_certificate_without_a_user_is_not_an_identity() -> None:
    result = authenticate(authenticator(), headers(("X-Remote-Group", "g")), (PROXY,))
    assert result.user is None
    # ... and not an error either: the aggregator's availability probe looks like this.
    assert not any("front proxy" in e for e in result.errors)


def test_a_stranger_certificate_is_refused_with_a_reason() -> None:
    result = authenticate(authenticator(), headers(("X-Remote-User", "alice")), (STRANGER,))
    assert result.user is None
    assert any(e.startswith("front proxy: certificate") for e in result.errors)


def test_without_the_configmap_no_certificate_authenticates() -> None:
    auth = DelegatingAuthenticator(None, token_authenticator=None, now=lambda: NOW)
    assert authenticate(auth, headers(("X-Remote-User", "a")), (PROXY,)).user is None


def test_identity_header_names_include_the_configmaps_and_the_conventional_ones() -> None:
    config = parse_authentication_configmap(
        configmap_data(
            **{
                "requestheader-username-headers": '["X-Proxy-User"]',
                "requestheader-extra-headers-prefix": '["X-Proxy-Extra-"]',
            }
        )
    )
    auth = authenticator(config)
    for name in (b"x-proxy-user", b"x-proxy-extra-scopes", b"x-remote-user", b"x-remote-extra-a"):
        assert auth.is_identity_header(name), name
    assert not auth.is_identity_header(b"authorization")
    assert not auth.is_identity_header(b"x-request-id")


def test_the_authenticated_group_is_added_once() -> None:
    user = UserInfo("u", groups=("system:authenticated",))
    assert user.with_authenticated_group() is user
    anonymous = UserInfo("system:anonymous", groups=("system:unauthenticated",))
    assert anonymous.with_authenticated_group() is anonymous


# ---------------------------------------------------------------------- bearer tokens


SA_USER = {
    "username": "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
    "uid": "5b1c",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system"],
    "extra": {"authentication.kubernetes.io/pod-name": ["kcm-0"]},
}


def test_a_valid_token_is_reviewed_once_then_cached_for_ten_seconds() -> None:
    kube = FakeKube(tokens={"good-token": SA_USER})
    clock = FakeClock()
    auth = authenticator(kube=kube, clock=clock)
    request = headers(("Authorization", "Bearer good-token"))

    first = authenticate(auth, request)
    assert first.method == "token"
    assert not first.cached
    assert first.user == UserInfo(
        name=SA_USER["username"],
        uid="5b1c",
        groups=(*SA_USER["groups"], "system:authenticated"),
        extra={"authentication.kubernetes.io/pod-name": ("kcm-0",)},
    )
    clock.now += 9.9
    assert authenticate(auth, request).cached
    assert kube.calls(TOKEN_REVIEWS) == 1
    clock.now += 0.1
    assert not authenticate(auth, request).cached
    assert kube.calls(TOKEN_REVIEWS) == 2


def test_a_refused_token_is_remembered_for_two_seconds_only() -> None:
    kube = FakeKube()
    clock = FakeClock()
    auth = authenticator(kube=kube, clock=clock)
    request = headers(("Authorization", "Bearer stolen"))
    result = authenticate(auth, request)
    assert result.user is None
    assert result.errors == ("token refused: invalid bearer token",)
    clock.now += 1.9
    authenticate(auth, request)
    assert kube.calls(TOKEN_REVIEWS) == 1
    clock.now += 0.1
    authenticate(auth, request)
    assert kube.calls(TOKEN_REVIEWS) == 2


def test_the_cache_never_holds_the_token_itself_and_is_bounded() -> None:
    kube = FakeKube(tokens={f"token-{i}": SA_USER for i in range(5)})
    tokens = TokenReviewAuthenticator(kube.api(), max_entries=3, clock=FakeClock())
    for i in range(5):
        run(tokens.review(f"token-{i}"))
    assert len(tokens.cache) == 3
    keys = tokens.cache.live_keys()
    assert all(len(key) == 64 and "token" not in key for key in keys)


def test_a_tokenreview_that_fails_is_unavailable_not_refused_and_not_cached() -> None:
    kube = FakeKube(tokens={"good-token": SA_USER}, review_status=500)
    auth = authenticator(kube=kube)
    request = headers(("Authorization", "Bearer good-token"))
    result = authenticate(auth, request)
    assert result.user is None
    assert result.unavailable
    assert "etcd is down" in result.errors[0]
    kube.review_status = 201
    assert authenticate(auth, request).user is not None
    assert kube.calls(TOKEN_REVIEWS) == 2


def test_token_audiences_are_asked_for_and_checked() -> None:
    kube = FakeKube(tokens={"t": SA_USER}, token_audiences=("https://kubernetes.default.svc",))
    tokens = TokenReviewAuthenticator(kube.api(), audiences=("kubepulse",), clock=FakeClock())
    result, _ = run(tokens.review("t"))
    assert result.user is None
    assert "audiences kubepulse" in result.error
    assert kube.requests[-1][2]["spec"]["audiences"] == ["kubepulse"]
    kube.token_audiences = ("kubepulse",)
    other = TokenReviewAuthenticator(kube.api(), audiences=("kubepulse",), clock=FakeClock())
    assert run(other.review("t"))[0].user is not None


@pytest.mark.parametrize(
    ("authorization", "reviewed", "error"),
    [
        ("bearer good-token", True, None),
        ("BEARER good-token extra words", True, None),
        ("Basic dXNlcjpwYXNz", False, None),
        ("Bearer", False, None),
        ("Bearer  ", False, None),
        ("Bearer  good-token", False, "empty bearer token"),
    ],
)
def test_bearer_tokens_are_read_like_kubernetes_reads_them(
    authorization: str, reviewed: bool, error: str | None
) -> None:
    kube = FakeKube(tokens={"good-token": SA_USER})
    result = authenticate(authenticator(kube=kube), headers(("Authorization", authorization)))
    assert (result.user is not None) == reviewed
    assert kube.calls(TOKEN_REVIEWS) == (1 if reviewed else 0)
    if error:
        assert error in result.errors


def test_a_token_still_works_beside_a_refused_proxy_certificate() -> None:
    kube = FakeKube(tokens={"good-token": SA_USER})
    result = authenticate(
        authenticator(kube=kube),
        headers(("X-Remote-User", "alice"), ("Authorization", "Bearer good-token")),
        (OTHER_PROXY_NAME,),
    )
    assert result.method == "token"
    assert result.user is not None
    assert result.user.name == SA_USER["username"]


# ---------------------------------------------------------------------- reading the ConfigMap


def test_start_reads_the_configmap_and_hands_its_cas_to_tls() -> None:
    kube = FakeKube(configmap_data=configmap_data())
    trusted: list[bytes] = []

    async def scenario() -> AuthenticationConfig | None:
        auth = DelegatingAuthenticator(
            kube.api(), token_authenticator=None, on_trusted_cas=trusted.append
        )
        await auth.start()
        try:
            return auth.config
        finally:
            await auth.stop()

    config = run(scenario())
    assert config is not None
    assert config.request_header is not None
    assert len(trusted) == 1
    assert PROXY_CA.pem in trusted[0]
    assert CLIENT_CA.pem in trusted[0]


def test_a_configmap_that_cannot_be_read_stops_the_start_with_the_fix() -> None:
    kube = FakeKube(configmap_status=403)

    async def scenario() -> None:
        await DelegatingAuthenticator(kube.api(), token_authenticator=None).start()

    with pytest.raises(AuthenticationConfigError) as caught:
        run(scenario())
    message = str(caught.value)
    assert "kube-system/extension-apiserver-authentication" in message
    assert "a test kubeconfig" in message
    assert "extension-apiserver-authentication-reader" in message


def test_lookup_failures_can_be_tolerated() -> None:
    kube = FakeKube(configmap_status=403)

    async def scenario() -> AuthenticationConfig | None:
        auth = DelegatingAuthenticator(
            kube.api(), token_authenticator=None, tolerate_lookup_failure=True
        )
        await auth.start()
        await auth.stop()
        return auth.config

    assert run(scenario()) is None


def test_a_refresh_picks_up_a_rotated_ca_and_a_failed_one_keeps_the_last() -> None:
    kube = FakeKube(configmap_data=configmap_data())
    trusted: list[bytes] = []
    new_proxy_ca = make_ca("front-proxy-ca-2")

    async def scenario() -> tuple[bool, bool, AuthenticationConfig | None]:
        auth = DelegatingAuthenticator(
            kube.api(), token_authenticator=None, on_trusted_cas=trusted.append
        )
        await auth.refresh()
        unchanged = await auth.refresh()
        kube.configmap_data["requestheader-client-ca-file"] = new_proxy_ca.pem.decode()
        changed = await auth.refresh()
        kube.configmap_status = 500
        with pytest.raises(AuthenticationConfigError):
            await auth.refresh()
        return unchanged, changed, auth.config

    unchanged, changed, config = run(scenario())
    assert (unchanged, changed) == (False, True)
    assert len(trusted) == 2
    assert new_proxy_ca.pem in trusted[1]
    assert config is not None
    assert config.request_header is not None
    assert config.request_header.client_cas == (new_proxy_ca.certificate,)
    # The old proxy CA no longer authenticates, even though TLS may still accept it.
    auth = DelegatingAuthenticator(None, token_authenticator=None, config=config, now=lambda: NOW)
    assert authenticate(auth, headers(("X-Remote-User", "a")), (PROXY,)).user is None


def test_configmap_lists_are_json_as_kube_apiserver_serialises_them() -> None:
    names = ["front-proxy-client", "aggregator"]
    config = parse_authentication_configmap(
        configmap_data(**{"requestheader-allowed-names": json.dumps(names)})
    )
    assert config.request_header is not None
    assert config.request_header.allowed_names == tuple(names)


def test_validity_is_judged_by_the_given_clock() -> None:
    later = NOW + 31 * DAY  # PROXY expires after 30 days
    auth = DelegatingAuthenticator(
        None,
        token_authenticator=None,
        config=parse_authentication_configmap(configmap_data()),
        now=lambda: later,
    )
    result = authenticate(auth, headers(("X-Remote-User", "a")), (PROXY,))
    assert result.user is None
    assert any("is not valid at" in e for e in result.errors)
    assert isinstance(later, datetime.datetime)
    assert isinstance(PROXY.certificate, x509.Certificate)
