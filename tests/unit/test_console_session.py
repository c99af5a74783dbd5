"""The console's session cookie: opens only as sealed, for its purpose, until it expires."""
import time

from gateway.console.session import LOGIN_COOKIE, SESSION_COOKIE, CookieCodec, same_token


def test_a_sealed_session_opens_with_its_key_and_csrf_token():
    codec = CookieCodec("mds_shared-service-credential")
    session, cookie = codec.new_session("mdk_abc_secret")
    opened = codec.session(cookie)
    assert (opened.key, opened.csrf) == ("mdk_abc_secret", session.csrf)
    assert "mdk_abc_secret" not in cookie  # encrypted, not only signed


def test_another_gateway_with_the_same_credential_opens_it_and_a_foreign_one_does_not():
    _, cookie = CookieCodec("mds_one").new_session("mdk_abc_secret")
    assert CookieCodec("mds_one").session(cookie) is not None
    assert CookieCodec("mds_two").session(cookie) is None


def test_a_tampered_or_repurposed_cookie_does_not_open():
    codec = CookieCodec("mds_one")
    _, cookie = codec.new_session("mdk_abc_secret")
    flipped = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    assert codec.session(flipped) is None
    assert codec.session("garbage") is None and codec.session("") is None
    # A login-form token sealed for another cookie is not a session.
    _, login = codec.new_login_token()
    assert codec.session(login) is None
    assert codec.open(LOGIN_COOKIE, codec.seal(SESSION_COOKIE, {"c": "x", "e": time.time() + 60})) is None


def test_an_expired_session_does_not_open():
    codec = CookieCodec("mds_one")
    assert codec.session(codec.seal(SESSION_COOKIE, {"k": "mdk_a_b", "c": "t", "e": time.time() - 1})) is None


def test_csrf_tokens_compare_exactly_and_a_missing_one_never_matches():
    assert same_token("abc", "abc")
    assert not same_token("abc", "abd")
    assert not same_token("abc", None)
    assert not same_token("", "")
