"""Single sign-on in a real Chromium against a real OpenID Connect provider.

The provider is panva's `oidc-provider` run with node (tests/support/oidc.py): PKCE
required, users in groups, back-channel logout on. The portal is intake as a process,
configured for it the way an installation is (OIDC_* variables, README "Single sign-on").
Every test starts where a person does: the portal's sign-in page.
"""

from __future__ import annotations

import hashlib
import re
import time
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.e2e.test_portal import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.bus import capture_events
from tests.support.oidc import CLIENT_ID, needs_provider, provider_address, running_provider
from tests.support.system import running_system

pytestmark = [needs_chromium, needs_provider]


@pytest.fixture(scope="module")
def sso(database_url, rabbitmq_url, logs_dir):
    """The portal (intake) with single sign-on on, then the provider that knows its URL."""
    address = provider_address()
    with (
        running_system(
            database_url,
            rabbitmq_url,
            logs_dir / "sso",
            only=("intake",),
            **address.portal_env(),
        ) as system,
        running_provider(address, system.url("intake"), logs_dir / "sso") as issuer,
    ):
        yield system, issuer


@pytest.fixture(scope="module")
def system(sso):
    return sso[0]


@pytest.fixture(scope="module")
def issuer(sso):
    return sso[1]


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


async def new_page(browser, system):
    context = await browser.new_context(base_url=system.url("intake"), java_script_enabled=False)
    return context, await context.new_page()


async def to_provider(page, issuer: str) -> dict[str, str]:
    """From the portal's sign-in page to the provider's login form; returns the parameters
    of the authorization request the portal sent the browser with."""
    asked: list[str] = []

    def note(request) -> None:
        if request.url.startswith(f"{issuer}/auth?"):
            asked.append(request.url)

    page.on("request", note)
    await page.goto("/portal/sign-in")
    await page.get_by_role("link", name="Sign in with your company account").click()
    await page.wait_for_url(f"{issuer}/**")
    page.remove_listener("request", note)
    assert asked, "the browser never went to the authorization endpoint"
    return dict(parse_qsl(urlsplit(asked[0]).query))


async def provider_login(page, login: str) -> None:
    await page.locator("input[name=login]").fill(login)
    await page.locator("input[name=password]").fill("any password: the test provider's own")
    await page.get_by_role("button", name="Sign-in").click()


async def sign_in(browser, system, issuer: str, login: str, landing: str):
    context, page = await new_page(browser, system)
    await to_provider(page, issuer)
    await provider_login(page, login)
    await page.wait_for_url(re.compile(rf"/portal/{landing}$"))
    return context, page


async def nav_links(page) -> set[str]:
    return {
        t.strip()
        for t in await page.get_by_role("navigation").get_by_role("link").all_inner_texts()
    }


async def test_an_employee_signs_in_and_out_at_the_provider(system, issuer, browser, amqp):
    context, page = await new_page(browser, system)
    asked = await to_provider(page, issuer)
    # Authorization code with PKCE (S256), a state and a nonce, for this client.
    assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["state"] and asked["nonce"] and "openid" in asked["scope"].split()
    await provider_login(page, "sam.rivera")
    await page.wait_for_url(re.compile(r"/portal/cases$"))
    assert "Signed in as Sam Rivera" in await page.locator(".who").inner_text()
    links = await nav_links(page)
    assert {"My cases", "Raise a case"} <= links
    assert not {"Work queue", "Log a phone call", "Dashboard"} & links
    cookies = {c["name"]: c for c in await context.cookies()}
    assert cookies["hrcase_session"]["httpOnly"] and "hrcase_sso" not in cookies
    # The reporter's name and address on file come from the provider's claims.
    await page.get_by_role("link", name="Raise a case").first.click()
    assert "sam.rivera@example.com" in await page.content()

    async with capture_events(amqp) as events:
        await page.get_by_role("button", name="Sign out").click()
        # The provider asks whether to end its session too (RP-initiated logout).
        await page.wait_for_url(f"{issuer}/session/end**")
        await page.get_by_role("button", name="Yes, sign me out").click()
        await page.wait_for_url(re.compile(r"/portal/(\?state=[^&]+)?$"))
        ended = await events.wait(lambda e: e["event_type"] == "portal.session_ended")
    assert ended["payload"]["reason"] == "signed_out"
    assert ended["payload"]["subject"] == "E-7001"
    assert await page.get_by_role("button", name="Sign out").count() == 0

    # The provider's session is over too: signing in asks for the login again.
    await to_provider(page, issuer)
    assert await page.locator("input[name=login]").count() == 1
    await context.close()


async def test_an_hr_agent_lands_on_the_work_queue(system, issuer, browser):
    context, page = await sign_in(browser, system, issuer, "priya.shah", "work-queue")
    assert "Signed in as Priya Shah" in await page.locator(".who").inner_text()
    links = await nav_links(page)
    assert {"Work queue", "Log a phone call", "My cases"} <= links
    assert "Dashboard" not in links  # hr-agents gives hr_agent, not hr_manager
    response = await page.goto("/portal/phone-calls/new")
    assert response is not None and response.status == 200
    await context.close()


async def test_signing_in_returns_to_the_page_that_asked_for_it(system, issuer, browser):
    context, page = await new_page(browser, system)
    await page.goto("/portal/cases/new")  # e.g. a link in a mail, while signed out
    await page.wait_for_url(re.compile(r"/portal/sign-in\?next="))
    await page.get_by_role("link", name="Sign in with your company account").click()
    await page.wait_for_url(f"{issuer}/**")
    await provider_login(page, "sam.rivera")
    await page.wait_for_url(re.compile(r"/portal/cases/new$"))
    assert await page.get_by_label("Subject").count() == 1
    await context.close()


async def test_the_provider_ending_its_session_signs_the_portal_out(system, issuer, browser, amqp):
    context, page = await sign_in(browser, system, issuer, "sam.rivera", "cases")
    async with capture_events(amqp) as events:
        # Signing out at the provider itself (not from the portal): back-channel logout.
        await page.goto(f"{issuer}/session/end")
        await page.get_by_role("button", name="Yes, sign me out").click()
        ended = await events.wait(lambda e: e["event_type"] == "portal.session_ended")
    assert ended["payload"]["reason"] == "provider_logout"
    assert ended["actor"]["type"] == "system"
    # The next request is signed out, though the browser still has the cookie.
    assert "hrcase_session" in {c["name"] for c in await context.cookies()}
    await page.goto("/portal/cases")
    await page.wait_for_url(re.compile(r"/portal/sign-in"))
    await context.close()


async def test_a_forged_logout_token_is_refused(system, issuer, browser):
    context, page = await sign_in(browser, system, issuer, "priya.shah", "work-queue")
    foreign_key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"})
    claims = {
        "iss": issuer,
        "aud": CLIENT_ID,
        "iat": int(time.time()),
        "jti": "forged-1",
        "sub": "priya.shah",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }
    forged = jwt.encode(
        {"alg": "RS256", "kid": "test-key-1", "typ": "logout+jwt"}, claims, foreign_key
    )
    url = f"{system.url('intake')}/portal/sso/backchannel-logout"
    for body in ({"logout_token": forged}, {"logout_token": "not.a.token"}, {}):
        async with httpx.AsyncClient(timeout=10) as client:
            refused = await client.post(url, data=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_request"
        assert "logout_token" in refused.json()["error_description"]
    # Priya is still signed in.
    response = await page.goto("/portal/work-queue")
    assert response is not None and response.status == 200
    assert page.url.endswith("/portal/work-queue")
    await context.close()


async def _answer_held_back(browser, system, issuer, login: str):
    """Sign in at the provider from a browser that has lost the state cookie on the way:
    the portal refuses the answer (400) without spending it. Returns the browser, its
    page, the provider's answer (the callback URL) and the state cookie to put back."""
    context, page = await new_page(browser, system)
    await to_provider(page, issuer)
    state_cookie = next(c for c in await context.cookies() if c["name"] == "hrcase_sso")
    await context.clear_cookies(name="hrcase_sso")
    async with page.expect_response(re.compile(r"/portal/sign-in/callback")) as answer:
        await provider_login(page, login)
    assert (await answer.value).status == 400
    assert "not started in this browser" in await page.get_by_role("alert").inner_text()
    return context, page, page.url, state_cookie


async def _refused(page, url: str, status: int, heading: str) -> None:
    response = await page.goto(url)
    assert response is not None and response.status == status
    assert await page.get_by_role("heading", level=1).inner_text() == heading
    assert await page.get_by_role("button", name="Sign out").count() == 0


async def test_a_wrong_state_or_tampered_code_signs_no_one_in(system, issuer, browser):
    context, page, callback, state_cookie = await _answer_held_back(
        browser, system, issuer, "priya.shah"
    )
    assert "code=" in callback and "state=" in callback
    await context.add_cookies([state_cookie])
    wrong_state = re.sub(r"state=[^&]+", "state=not-the-state-this-browser-sent", callback)
    await _refused(page, wrong_state, 400, "Sign-in could not be completed")
    await context.add_cookies([state_cookie])
    tampered = re.sub(r"code=([^&]+)", lambda m: f"code={m.group(1)[:-4]}AAAA", callback)
    await _refused(page, tampered, 400, "Sign-in could not be completed")
    assert "could not be verified" in await page.get_by_role("alert").inner_text()
    # The state was spent by the tampered attempt: the genuine answer no longer works.
    await context.add_cookies([state_cookie])
    await _refused(page, callback, 400, "Sign-in could not be completed")
    await page.goto("/portal/work-queue")
    await page.wait_for_url(re.compile(r"/portal/sign-in"))
    await context.close()

    # The same held-back answer, with the state cookie back, does sign in: the refusals
    # above were for the state and the code, not for the way the answer was held.
    context, page, callback, state_cookie = await _answer_held_back(
        browser, system, issuer, "priya.shah"
    )
    await context.add_cookies([state_cookie])
    await page.goto(callback)
    await page.wait_for_url(re.compile(r"/portal/work-queue$"))
    await context.close()


async def test_an_id_token_for_another_sign_in_is_refused(system, issuer, browser, admin_pool):
    """The provider signs the ID token with the nonce it was sent; the portal expects the
    one it stored for this state. Changed on the server side, the genuine token fails."""
    context, page = await new_page(browser, system)
    await to_provider(page, issuer)
    state = next(c["value"] for c in await context.cookies() if c["name"] == "hrcase_sso")
    changed = await admin_pool.execute(
        "UPDATE intake.sso_sign_ins SET nonce = 'the-nonce-of-another-sign-in'"
        " WHERE state_hash = $1",
        hashlib.sha256(state.encode()).hexdigest(),
    )
    assert changed == "UPDATE 1"
    async with page.expect_response(re.compile(r"/portal/sign-in/callback")) as answer:
        await provider_login(page, "priya.shah")
    assert (await answer.value).status == 400
    assert "could not be verified" in await page.get_by_role("alert").inner_text()
    assert "hrcase_session" not in {c["name"] for c in await context.cookies()}
    await context.close()


async def test_a_person_in_no_mapped_group_is_refused_with_a_page(system, issuer, browser):
    context, page = await new_page(browser, system)
    await to_provider(page, issuer)
    async with page.expect_response(re.compile(r"/portal/sign-in/callback")) as answer:
        await provider_login(page, "casey.contractor")
    assert (await answer.value).status == 403
    assert await page.get_by_role("heading", level=1).inner_text() == "No access to HR Case Desk"
    assert "not in any group" in await page.get_by_role("alert").inner_text()
    assert "hrcase_session" not in {c["name"] for c in await context.cookies()}
    await page.goto("/portal/cases")
    await page.wait_for_url(re.compile(r"/portal/sign-in"))
    await context.close()


async def test_the_development_sign_in_is_off_when_single_sign_on_is_on(system, browser):
    context, page = await new_page(browser, system)
    await page.goto("/portal/sign-in")
    assert await page.get_by_role("radio").count() == 0
    assert await page.get_by_role("link", name="Sign in with your company account").count() == 1
    csrf = await context.cookies()
    token = next(c["value"] for c in csrf if c["name"] == "hrcase_csrf")
    async with httpx.AsyncClient(timeout=10, cookies={"hrcase_csrf": token}) as client:
        refused = await client.post(
            f"{system.url('intake')}/portal/sign-in",
            data={"identity": "priya", "csrf_token": token},
        )
    assert refused.status_code == 404
    assert "hrcase_session" not in refused.cookies
    await context.close()
