"""Drives the web console in Debian's Chromium with Playwright (no browser download), one step
of crates/easgate/tests/console.rs per run, the way an admin would: by labels, roles and
button names. Prints one JSON line with what it saw; exits non-zero on the first thing that
is not as expected, or on any error the page itself raised (CSP violations included).

    console_browser.py STEP --base URL --token TOKEN [--device ID] [--shots DIR] [--axe FILE]

Steps: approve, revoke, enroll (a device for a user: its link and QR code), rules, helpdesk, tour (every page: screenshots at 1280x800 and
phone width, and axe-core's check with no serious or critical violation allowed).
"""

import argparse
import json
import os
import re
import sys

from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("EASGATE_CHROMIUM", "/usr/bin/chromium")
# Without these Chromium reaches for Google's services, which this machine has none of.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = [
    ("Dashboard", "Dashboard"),
    ("Devices", "Devices"),
    ("Quarantine", "Quarantine queue"),
    ("Users", "Users and groups"),
    ("Certificates", "Certificates"),
    ("Templates", "Templates"),
    ("Profiles", "Profiles"),
    ("Rules", "Rules"),
    ("Audit", "Audit"),
    ("Doctor", "Doctor"),
]


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


def sign_in(page, base, token):
    page.goto(base + "/")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def tab_to(page, locator, limit=80):
    """Press Tab until `locator` has the keyboard focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if locator.evaluate("e => e === document.activeElement"):
            return
    raise Failure(f"Tab never reaches {locator}")


def sign_in_by_keyboard(page, base, token):
    page.goto(base + "/")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    tab_to(page, page.get_by_label("API token"))
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def open_page(page, link, heading):
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True).click()
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()


def api_status(page, method, path, body=None, csrf=True):
    """A fetch from the page itself, with its cookie; with `csrf` the session's token."""
    return page.evaluate(
        """async ([method, path, body, csrf]) => {
            const headers = {"Content-Type": "application/json"};
            if (csrf) {
                const s = await fetch("/console/session", {credentials: "same-origin"});
                headers["X-CSRF-Token"] = (await s.json()).csrf;
            }
            const r = await fetch(path, {method, headers, credentials: "same-origin",
                                         body: body === null ? undefined : JSON.stringify(body)});
            return r.status;
        }""",
        [method, path, body, csrf],
    )


def step_approve(page, args, out):
    # By keyboard alone: sign in, open the queue, approve.
    sign_in_by_keyboard(page, args.base, args.token)
    nav = page.get_by_role("navigation", name="Main")
    tab_to(page, nav.get_by_role("link", name="Quarantine", exact=True))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Quarantine queue", level=1)).to_be_visible()
    approve = page.get_by_role("button", name=f"Approve {args.device}")
    # The queue updates by itself: the device may arrive after the page opened.
    expect(approve).to_be_visible(timeout=15000)
    tab_to(page, approve)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text=f"Approved {args.device}")).to_be_visible()
    expect(approve).to_have_count(0, timeout=15000)
    out["approved"] = args.device


def step_revoke(page, args, out):
    sign_in(page, args.base, args.token)
    page.goto(f"{args.base}/#/devices/{args.device}")
    expect(page.get_by_role("heading", name=f"Device {args.device}", level=1)).to_be_visible()
    page.get_by_label("Revocation reason").first.select_option("keyCompromise")
    page.get_by_role("button", name="Revoke certificate").first.click()
    status = page.get_by_role("status").filter(has_text=re.compile(r"Certificate \w+ revoked"))
    expect(status).to_be_visible()
    out["revoked"] = re.search(r"Certificate (\w+) revoked", status.first.inner_text()).group(1)


def step_enroll(page, args, out):
    sign_in(page, args.base, args.token)
    open_page(page, "Users", "Users and groups")
    page.get_by_role("button", name=args.user, exact=True).click()
    expect(page.get_by_role("heading", name="Enroll a device")).to_be_visible()
    page.get_by_label("Platform", exact=True).select_option("ios")
    page.get_by_role("button", name="Enroll device").click()
    expect(page.get_by_role("heading", name="Enrollment link")).to_be_visible()
    qr = page.get_by_role("img", name="QR code of the enrollment link")
    expect(qr).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('img.qr'); return i && i.complete && i.naturalWidth > 0; }"
    )
    text = page.locator(".enrollment").inner_text()
    link = re.search(r"https?://\S+/enroll/\S+", text)
    check(link is not None, f"no profile URL shown: {text}")
    out["profile_url"] = link.group(0)


def what_if(page, user, platform):
    page.get_by_label("User", exact=True).fill(user)
    page.get_by_label("Platform", exact=True).select_option(platform)
    page.get_by_role("button", name="Test").click()
    result = page.get_by_role("status", name="What-if result")
    expect(result).to_contain_text("Decision:")
    return result.inner_text()


def step_rules(page, args, out):
    sign_in(page, args.base, args.token)
    open_page(page, "Rules", "Rules")
    page.get_by_label("Rule name").fill("block-windows")
    page.get_by_label("Priority").fill("5")
    page.get_by_label("Action").select_option("block")
    page.get_by_role("group", name="Platforms").get_by_label("windows").check()
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_role("button", name="Remove rule block-windows")).to_be_visible()
    answer = what_if(page, args.user, "windows")
    check("Decision: block" in answer, f"what-if for windows: {answer}")
    check("Matched rule: block-windows" in answer, f"what-if names the rule: {answer}")
    out["what_if"] = answer
    # A change without the session's CSRF token is refused; the same change with it passes.
    out["without_csrf"] = api_status(
        page, "PUT", "/api/v1/overrides/CSRFTEST", {"action": "block"}, csrf=False
    )
    check(out["without_csrf"] == 403, f"a change without the CSRF token: {out['without_csrf']}")
    out["with_csrf"] = api_status(page, "PUT", "/api/v1/overrides/CSRFTEST", {"action": "block"})
    check(out["with_csrf"] == 200, f"the same change with it: {out['with_csrf']}")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    out["after_sign_out"] = api_status(page, "GET", "/api/v1/dashboard", csrf=False)
    check(out["after_sign_out"] == 401, f"the API after sign-out: {out['after_sign_out']}")


def step_helpdesk(page, args, out):
    sign_in(page, args.base, args.token)
    open_page(page, "Rules", "Rules")
    # The editor is not offered: no add form, no remove buttons; the what-if test is.
    check(page.get_by_role("button", name="Add rule").count() == 0, "helpdesk sees Add rule")
    check(page.get_by_label("Rule name").count() == 0, "helpdesk sees the rule form")
    check(
        page.get_by_role("button", name=re.compile("^Remove rule")).count() == 0,
        "helpdesk sees Remove rule",
    )
    out["what_if"] = what_if(page, args.user, "ios")
    # And the API refuses the change even when the page is bypassed.
    out["add_rule"] = api_status(
        page, "POST", "/api/v1/rules", {"name": "sneaky", "action": "allow"}
    )
    check(out["add_rule"] == 403, f"helpdesk adding a rule: {out['add_rule']}")
    # What the role may use is offered: the quarantine queue, devices.
    nav = page.get_by_role("navigation", name="Main")
    check(nav.get_by_role("link", name="Quarantine").count() == 1, "helpdesk lacks Quarantine")
    check(nav.get_by_role("link", name="Audit").count() == 0, "helpdesk is offered the audit trail")


def axe_check(page, axe_source):
    page.evaluate(axe_source + "\n;undefined")
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                          nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")], result


def step_tour(page, args, out):
    with open(args.axe) as f:
        axe_source = f.read()
    os.makedirs(args.shots, exist_ok=True)
    failures = {}
    seen = {}
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(args.base + "/")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    page.screenshot(path=os.path.join(args.shots, "sign-in.png"), full_page=True)
    bad, _ = axe_check(page, axe_source)
    if bad:
        failures["sign-in"] = bad
    page.get_by_label("API token").fill(args.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    pages = list(PAGES) + [(None, f"Device {args.device}")]
    for width, height, suffix in ((1280, 800, ""), (390, 844, "-phone")):
        page.set_viewport_size({"width": width, "height": height})
        for link, heading in pages:
            if link is None:
                page.goto(f"{args.base}/#/devices/{args.device}")
                expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
            else:
                if suffix:
                    page.goto(f"{args.base}/#/{link.lower()}")
                    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
                else:
                    open_page(page, link, heading)
            page.wait_for_load_state("networkidle")
            # Let a page finish its own slower loads (the doctor's checks).
            page.wait_for_timeout(300)
            name = (link or "device").lower()
            page.screenshot(path=os.path.join(args.shots, f"{name}{suffix}.png"), full_page=True)
            bad, all_violations = axe_check(page, axe_source)
            seen[f"{name}{suffix}"] = len(all_violations)
            if bad:
                failures[f"{name}{suffix}"] = bad
            # Nothing wider than the window at phone width, but inside a scrolling region.
            if suffix:
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                if overflow > 2:
                    failures[f"{name}{suffix}-width"] = f"page is {overflow}px wider than the window"
    out["violations_seen"] = seen
    check(not failures, "accessibility: " + json.dumps(failures, indent=1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["approve", "revoke", "enroll", "rules", "helpdesk", "tour"])
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--device")
    parser.add_argument("--user", default="alice@corp.example")
    parser.add_argument("--shots")
    parser.add_argument("--axe")
    args = parser.parse_args()
    out = {"step": args.step}
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on(
            "console",
            lambda m: errors.append(f"console {m.type}: {m.text}")
            if m.type == "error" and "401" not in m.text and "403" not in m.text
            else None,
        )
        expect.set_options(timeout=10000)
        try:
            globals()["step_" + args.step](page, args, out)
            if errors:
                raise Failure("the page reported errors: " + "; ".join(errors))
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            out["error"] = f"{type(e).__name__}: {e}"
            if args.shots:
                os.makedirs(args.shots, exist_ok=True)
                page.screenshot(path=os.path.join(args.shots, f"failed-{args.step}.png"))
            print(json.dumps(out))
            browser.close()
            sys.exit(1)
        browser.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
