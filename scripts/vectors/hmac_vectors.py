#!/usr/bin/env python3
"""Generates the HMAC and token test vectors in tests/vectors/hmac/*.json, one per preset.

Each vector says how much evidence it carries, in `evidence` and `generated_by`:

    sdk          signed by the provider's official SDK, or signed with the documented formula
                 and accepted by the SDK's own verifier inside this script (verification-only
                 SDKs); the SDK and its version are in `source`
    doc-example  a worked example (secret, payload, signature) published in the provider's docs
    formula      neither exists: signed with the formula the provider's docs describe, written
                 out here; `generated_by` names the page. This is not independent evidence.

The npm SDKs (GitHub, Linear, Webflow, Zoom, Resend, Shopify, Notion) are run by hmac_vectors.mjs,
which this script calls at the end. Run it outside CI (CI only replays the committed files):

    python3 scripts/vectors/hmac_vectors.py      # venv in /tmp, node_modules in /tmp

Secrets and timestamps are fixed, so a re-run rewrites the same files unless an SDK changed.
"""

import os
import subprocess
import sys
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "vectors", "hmac")
VENV = os.environ.get("HOOKGATE_HMAC_VENV", "/tmp/hookgate-hmac-venv")
NODE_DIR = os.environ.get("HOOKGATE_HMAC_NODE", "/tmp/hookgate-hmac-node")
PACKAGES = ["stripe", "slack_sdk", "standardwebhooks", "svix", "twilio", "razorpay", "squareup",
            "hubspot-api-client", "paddle-python-sdk", "box-sdk-gen", "coinbase-commerce"]
NPM_PACKAGES = ["@octokit/webhooks-methods", "@linear/sdk", "webflow-api", "@zoom/rivet",
                "resend", "@shopify/shopify-api", "@notionhq/client"]


def ensure_sdks():
    """Re-runs this script inside a venv that has the SDKs installed."""
    if os.environ.get("HOOKGATE_HMAC_IN_VENV") == "1":
        return
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        venv.create(VENV, with_pip=True)
    subprocess.check_call([python, "-m", "pip", "install", "-q", *PACKAGES])
    env = dict(os.environ, HOOKGATE_HMAC_IN_VENV="1")
    code = subprocess.call([python, os.path.abspath(__file__)], env=env)
    if code == 0:
        os.makedirs(NODE_DIR, exist_ok=True)
        if not os.path.exists(os.path.join(NODE_DIR, "package.json")):
            subprocess.check_call(["npm", "init", "-y"], cwd=NODE_DIR, stdout=subprocess.DEVNULL)
        subprocess.check_call(["npm", "install", "--no-audit", "--no-fund", "-s", *NPM_PACKAGES],
                              cwd=NODE_DIR)
        code = subprocess.call(["node", os.path.join(HERE, "hmac_vectors.mjs"), OUT],
                               env=dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules")),
                               cwd=NODE_DIR)
    sys.exit(code)


ensure_sdks()

# ---- everything below runs inside the venv -------------------------------------------------

import base64  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
from importlib.metadata import version  # noqa: E402
from unittest import mock  # noqa: E402

TIMESTAMP = 1767225600  # 2026-01-01T00:00:00Z
SECRET = "hookgate-vector-secret-3f9c2a"
WRONG = "hookgate-vector-secret-3f9c2b"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WRONG_WHSEC = "whsec_bm90IHRoZSBzZWNyZXQgeW91IGFyZSBsb29raW5nIGZvcg=="
PUBLIC_URL = "https://hooks.example.com"
SCRIPT = "scripts/vectors/hmac_vectors.py"


def body_for(preset, **extra):
    doc = {"id": f"evt_{preset}_1", "type": "test.event", "note": "caf\u00e9 \u2713"}
    doc.update(extra)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def mac(secret, data, algo=hashlib.sha256):
    if isinstance(secret, str):
        secret = secret.encode()
    return hmac.new(secret, data.encode() if isinstance(data, str) else data, algo).digest()


def write(preset, doc, evidence, generated_by, file=None):
    assert evidence in ("sdk", "doc-example", "formula"), evidence
    if evidence == "formula":
        assert generated_by.startswith("formula from "), generated_by
    doc = {"provider": preset, **doc, "evidence": evidence,
           "generated_by": f"{generated_by} ({SCRIPT})"}
    doc.setdefault("now", TIMESTAMP + 30)
    path = os.path.join(OUT, f"{file or preset.replace('-', '_')}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.relpath(path))


def simple(preset, kind, headers, body, evidence, generated_by, source="", **more):
    write(preset, {"source": source, "kind": kind, "secret": SECRET, "wrong_secret": WRONG,
                   **more, "headers": headers, "body": body}, evidence, generated_by)


# ---- official SDKs -------------------------------------------------------------------------

def stripe_vector():
    import stripe
    body = body_for("stripe")
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET, timestamp=TIMESTAMP)
    stripe.WebhookSignature.verify_header(body, header, SECRET, tolerance=None)
    simple("stripe", "hmac-sha256", {"Stripe-Signature": header}, body, "sdk",
           "stripe WebhookSignature.generate_signature_header, checked with verify_header",
           f"stripe {version('stripe')}")


def slack_vector():
    from slack_sdk.signature import SignatureVerifier

    class Clock:
        def now(self):
            return TIMESTAMP + 30

    body = body_for("slack", event_id="Ev0001")
    verifier = SignatureVerifier(SECRET, clock=Clock())
    sig = verifier.generate_signature(timestamp=str(TIMESTAMP), body=body)
    assert verifier.is_valid(body=body, timestamp=str(TIMESTAMP), signature=sig)
    simple("slack", "hmac-sha256",
           {"X-Slack-Request-Timestamp": str(TIMESTAMP), "X-Slack-Signature": sig}, body, "sdk",
           "slack_sdk SignatureVerifier.generate_signature, checked with is_valid",
           f"slack_sdk {version('slack_sdk')}")


def slack_doc_example():
    # The worked example of https://api.slack.com/authentication/verifying-requests-from-slack
    # (a slash command, form-encoded), copied as published and checked with slack_sdk.
    from slack_sdk.signature import SignatureVerifier
    secret, ts = "8f742231b10e8888abcd99yyyzzz85a5", 1531420618
    body = ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
            "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
            "command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
            "commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
            "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    published = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

    class Clock:
        def now(self):
            return ts + 30

    assert SignatureVerifier(secret, clock=Clock()).is_valid(body=body, timestamp=str(ts),
                                                            signature=published)
    write("slack", {"source": f"Slack docs; checked with slack_sdk {version('slack_sdk')} "
                              "SignatureVerifier.is_valid",
                    "kind": "hmac-sha256", "secret": secret,
                    "wrong_secret": "8f742231b10e8888abcd99yyyzzz85a6",
                    "headers": {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": published,
                                "Content-Type": "application/x-www-form-urlencoded"},
                    "body": body, "now": ts + 30},
          "doc-example", "the published example of "
          "https://api.slack.com/authentication/verifying-requests-from-slack", file="slack_docs")


def standard_webhooks_family(preset, module, prefix, source, generated_by):
    body = body_for(preset)
    msg_id = f"msg_{preset.replace('-', '')}0001"
    ts = datetime.datetime.fromtimestamp(TIMESTAMP, datetime.timezone.utc)
    wh = module.Webhook(WHSEC)
    sig = wh.sign(msg_id, ts, body)
    headers = {f"{prefix}-id": msg_id, f"{prefix}-timestamp": str(TIMESTAMP),
               f"{prefix}-signature": sig}
    with mock.patch("standardwebhooks.webhooks.datetime") as dt:
        dt.now.return_value = ts
        dt.fromtimestamp = datetime.datetime.fromtimestamp
        wh.verify(body, headers)
        try:
            module.Webhook(WRONG_WHSEC).verify(body, headers)
            raise AssertionError("wrong secret accepted")
        except Exception as e:  # noqa: BLE001
            assert "signature" in str(e).lower(), e
    write(preset, {"source": source, "kind": "hmac-sha256", "secret": WHSEC,
                   "wrong_secret": WRONG_WHSEC, "headers": headers, "body": body},
          "sdk", generated_by)


def standard_webhooks_vectors():
    import standardwebhooks
    import svix.webhooks as svix_webhooks
    std = f"standardwebhooks {version('standardwebhooks')}"
    standard_webhooks_family("standard-webhooks", standardwebhooks, "webhook", std,
                             "standardwebhooks Webhook.sign, checked with Webhook.verify")
    # GitLab's signing token is Standard Webhooks (docs.gitlab.com … #signing-token).
    standard_webhooks_family("gitlab-signed", standardwebhooks, "webhook", std,
                             "standardwebhooks Webhook.sign, checked with Webhook.verify "
                             "(GitLab signs per Standard Webhooks)")
    # Clerk's docs verify with the svix package (https://clerk.com/docs/webhooks/sync-data).
    standard_webhooks_family("clerk", svix_webhooks, "svix", f"svix {version('svix')}",
                             "svix Webhook.sign, checked with Webhook.verify")


def twilio_vector():
    from twilio.request_validator import RequestValidator
    from urllib.parse import urlencode
    path = "/hooks/twilio"
    params = {"To": "+14155551212", "From": "+14158675310", "Body": "caf\u00e9 \u2713",
              "MessageSid": "SM0123456789abcdef0123456789abcdef", "AccountSid": "AC0001"}
    validator = RequestValidator(SECRET)
    url = PUBLIC_URL + path
    sig = validator.compute_signature(url, params)
    assert validator.validate(url, params, sig)
    assert not RequestValidator(WRONG).validate(url, params, sig)
    body = urlencode(params)
    simple("twilio", "hmac-sha1",
           {"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded",
            "I-Twilio-Idempotency-Token": "idem-0001"},
           body, "sdk", "twilio RequestValidator.compute_signature, checked with validate",
           f"twilio {version('twilio')}", public_url=PUBLIC_URL, path=path)


def twilio_doc_example():
    # The worked example of https://www.twilio.com/docs/usage/security#validating-requests
    # (auth token 12345), copied as published and checked with the SDK's validator.
    from twilio.request_validator import RequestValidator
    from urllib.parse import urlencode
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}
    published = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert RequestValidator("12345").validate(url, params, published)
    write("twilio", {"source": f"Twilio docs; checked with twilio {version('twilio')} "
                               "RequestValidator.validate",
                     "kind": "hmac-sha1", "secret": "12345", "wrong_secret": "12346",
                     "public_url": "https://mycompany.com", "path": "/myapp.php",
                     "query": "foo=1&bar=2",
                     "headers": {"X-Twilio-Signature": published,
                                 "Content-Type": "application/x-www-form-urlencoded"},
                     "body": urlencode(params)},
          "doc-example", "the published example of "
          "https://www.twilio.com/docs/usage/security#validating-requests", file="twilio_docs")


def razorpay_vector():
    import razorpay
    body = body_for("razorpay")
    sig = mac(SECRET, body).hex()
    utility = razorpay.Client(auth=("rzp_test_key", "rzp_test_secret")).utility
    assert utility.verify_webhook_signature(body, sig, SECRET)
    try:
        utility.verify_webhook_signature(body, sig, WRONG)
        raise AssertionError("wrong secret accepted")
    except razorpay.errors.SignatureVerificationError:
        pass
    simple("razorpay", "hmac-sha256",
           {"X-Razorpay-Signature": sig, "x-razorpay-event-id": "evt_rzp_0001"}, body, "sdk",
           "documented formula, accepted by razorpay Utility.verify_webhook_signature",
           f"razorpay {version('razorpay')}")


def coinbase_vector():
    from coinbase_commerce.webhook import WebhookSignature
    body = json.dumps({"id": 1, "scheduled_for": "2026-01-01T00:00:00Z",
                       "event": {"id": "24934862-d980-46cb-9402-43c81b0cdba6",
                                 "type": "charge:created", "note": "caf\u00e9 \u2713"}},
                      ensure_ascii=False, separators=(",", ":"))
    sig = WebhookSignature._compute_signature(body, SECRET)
    assert WebhookSignature.verify_sig_header(body, sig, SECRET)
    simple("coinbase", "hmac-sha256", {"X-CC-Webhook-Signature": sig}, body, "sdk",
           "coinbase-commerce WebhookSignature._compute_signature, checked with verify_sig_header",
           f"coinbase-commerce {version('coinbase-commerce')}")


def square_vector():
    from square.utils.webhooks_helper import verify_signature
    path = "/hooks/square"
    body = body_for("square", event_id="6a8f5f28-54a1-4eb0-a98a-3111513fd4fc")
    sig = base64.b64encode(mac(SECRET, PUBLIC_URL + path + body)).decode()
    assert verify_signature(request_body=body, signature_header=sig, signature_key=SECRET,
                            notification_url=PUBLIC_URL + path)
    assert not verify_signature(request_body=body, signature_header=sig, signature_key=WRONG,
                                notification_url=PUBLIC_URL + path)
    simple("square", "hmac-sha256", {"x-square-hmacsha256-signature": sig}, body, "sdk",
           "documented formula, accepted by squareup webhooks_helper.verify_signature",
           f"squareup {version('squareup')}", public_url=PUBLIC_URL, path=path)


def hubspot_vector():
    from hubspot.utils.signature import Signature
    path = "/hooks/hubspot"
    body = "[" + body_for("hubspot") + "]"
    ms = str(TIMESTAMP * 1000)
    sig = Signature.get_signature(SECRET, body, "v3", http_uri=PUBLIC_URL + path,
                                  http_method="POST", timestamp=ms)
    simple("hubspot", "hmac-sha256",
           {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ms,
            "X-HubSpot-Signature-Version": "v3"},
           body, "sdk", "hubspot-api-client Signature.get_signature (v3)",
           f"hubspot-api-client {version('hubspot-api-client')}", public_url=PUBLIC_URL,
           path=path)


def paddle_vector():
    from paddle_billing.Notifications.PaddleSignature import PaddleSignature
    from paddle_billing.Notifications.Secret import Secret
    body = body_for("paddle", event_id="evt_01h8bzakzx3hm2fmen703n5q45")
    h1 = mac(SECRET, f"{TIMESTAMP}:{body}").hex()
    header = f"ts={TIMESTAMP};h1={h1}"
    assert PaddleSignature().verify(header, body, Secret(SECRET))
    assert not PaddleSignature().verify(header, body, Secret(WRONG))
    simple("paddle", "hmac-sha256", {"Paddle-Signature": header}, body, "sdk",
           "documented formula, accepted by paddle-python-sdk PaddleSignature.verify",
           f"paddle-python-sdk {version('paddle-python-sdk')}")


def box_vector():
    from box_sdk_gen.internal.utils import compute_webhook_signature
    from box_sdk_gen.managers.webhooks import WebhooksManager
    primary, secondary = "box-primary-key-4e1f", "box-secondary-key-77ab"
    body = body_for("box", trigger="FILE.UPLOADED")
    headers = {"box-delivery-id": "f96bb54b-ee16-4fc5-aa65-8c2d9e5b546f",
               "box-delivery-timestamp": "2026-01-01T00:00:00+00:00",
               "box-signature-algorithm": "HmacSHA256", "box-signature-version": "1"}
    headers["box-signature-primary"] = compute_webhook_signature(body, headers, primary)
    headers["box-signature-secondary"] = compute_webhook_signature(body, headers, secondary)
    with mock.patch("box_sdk_gen.managers.webhooks.get_epoch_time_in_seconds",
                    return_value=TIMESTAMP + 30):
        assert WebhooksManager.validate_message(body, headers, primary, secondary_key=secondary)
        assert not WebhooksManager.validate_message(body, headers, WRONG)
    write("box", {"source": f"box-sdk-gen {version('box-sdk-gen')}", "kind": "hmac-sha256",
                  "secrets": [primary, secondary], "wrong_secret": WRONG, "headers": headers,
                  "body": body},
          "sdk", "box-sdk-gen compute_webhook_signature (both keys), checked with "
                 "WebhooksManager.validate_message")


# ---- no SDK signing helper: the documented formula -----------------------------------------

def formula_vectors():
    sha1 = hashlib.sha1
    hexs = lambda data, algo=hashlib.sha256: mac(SECRET, data, algo).hex()  # noqa: E731
    b64s = lambda data: base64.b64encode(mac(SECRET, data)).decode()  # noqa: E731
    iso = "2026-01-01T00:00:00Z"

    b = body_for("bitbucket")
    simple("bitbucket", "hmac-sha256",
           {"X-Hub-Signature": "sha256=" + hexs(b), "X-Request-UUID": "req-0001"}, b, "formula",
           "formula from https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/, "
           "no SDK helper")
    b = body_for("gitlab")
    simple("gitlab", "token", {"X-Gitlab-Token": SECRET, "Idempotency-Key": "idem-0001"}, b,
           "formula", "formula from https://docs.gitlab.com/user/project/integrations/webhooks/"
           "#create-a-webhook (the token is sent as is), no SDK helper")
    b = body_for("intercom")
    simple("intercom", "hmac-sha1", {"X-Hub-Signature": "sha1=" + hexs(b, sha1)}, b, "formula",
           "formula from https://developers.intercom.com/docs/references/webhooks/"
           "webhook-models#signed-notifications, no SDK helper")
    b = body_for("calendly")
    simple("calendly", "hmac-sha256",
           {"Calendly-Webhook-Signature": f"t={TIMESTAMP},v1=" + hexs(f"{TIMESTAMP}.{b}")}, b,
           "formula", "formula from https://developer.calendly.com/api-docs/"
           "4c305798a61d3-webhook-signatures, no SDK helper")
    b = body_for("typeform", event_id="01JGZ0000TYPEFORM")
    simple("typeform", "hmac-sha256", {"Typeform-Signature": "sha256=" + b64s(b)}, b, "formula",
           "formula from https://www.typeform.com/developers/webhooks/secure-your-webhooks/, "
           "no SDK helper")
    b = body_for("zendesk")
    simple("zendesk", "hmac-sha256",
           {"X-Zendesk-Webhook-Signature": b64s(iso + b),
            "X-Zendesk-Webhook-Signature-Timestamp": iso,
            "X-Zendesk-Webhook-Invocation-Id": "inv-0001"}, b, "formula",
           "formula from https://developer.zendesk.com/documentation/webhooks/verifying/, "
           "no SDK helper")
    b = body_for("vercel")
    simple("vercel", "hmac-sha1", {"x-vercel-signature": hexs(b, sha1)}, b, "formula",
           "formula from https://vercel.com/docs/webhooks/webhooks-api#securing-webhooks, "
           "no SDK helper")
    b = body_for("sentry")
    simple("sentry", "hmac-sha256",
           {"Sentry-Hook-Signature": hexs(b), "Sentry-Hook-Timestamp": str(TIMESTAMP),
            "Request-ID": "req-0001"}, b, "formula",
           "formula from https://docs.sentry.io/integrations/integration-platform/webhooks/, "
           "no SDK helper")
    b = body_for("pagerduty")
    simple("pagerduty", "hmac-sha256",
           {"X-PagerDuty-Signature": "v1=" + hexs(b), "X-Webhook-Id": "wh-0001"}, b, "formula",
           "formula from https://developer.pagerduty.com/docs/verifying-webhook-signatures, "
           "no SDK helper")
    b = body_for("segment", messageId="msg-0001")
    simple("segment", "hmac-sha1", {"X-Signature": hexs(b, sha1)}, b, "formula",
           "formula from https://segment.com/docs/connections/destinations/catalog/webhooks/, "
           "no SDK helper")
    b = body_for("woocommerce")
    simple("woocommerce", "hmac-sha256",
           {"X-WC-Webhook-Signature": b64s(b), "X-WC-Webhook-Delivery-ID": "1"}, b, "formula",
           "formula from https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks, "
           "no SDK helper")
    b = body_for("xero")
    simple("xero", "hmac-sha256", {"x-xero-signature": b64s(b)}, b, "formula",
           "formula from https://developer.xero.com/documentation/guides/webhooks/overview/, "
           "no SDK helper")
    b = body_for("meta")
    simple("meta", "hmac-sha256", {"X-Hub-Signature-256": "sha256=" + hexs(b)}, b, "formula",
           "formula from https://developers.facebook.com/docs/graph-api/webhooks/getting-started"
           "#validate-payloads, no SDK helper")
    # Twitch stamps RFC 3339 with nanoseconds; message id + timestamp + body are signed.
    b = body_for("twitch")
    twitch_id, twitch_ts = "twitch-msg-0001", "2026-01-01T00:00:00.123456789Z"
    simple("twitch", "hmac-sha256",
           {"Twitch-Eventsub-Message-Id": twitch_id,
            "Twitch-Eventsub-Message-Timestamp": twitch_ts,
            "Twitch-Eventsub-Message-Type": "notification",
            "Twitch-Eventsub-Message-Signature":
                "sha256=" + hexs(twitch_id + twitch_ts + b)}, b, "formula",
           "formula from https://dev.twitch.tv/docs/eventsub/handling-webhook-events/"
           "#verifying-the-event-message, no SDK helper")
    b = body_for("dropbox")
    simple("dropbox", "hmac-sha256", {"X-Dropbox-Signature": hexs(b)}, b, "formula",
           "formula from https://www.dropbox.com/developers/reference/webhooks, no SDK helper")
    # The seed providers publish no SDK nor public URL; their webhook documents give the formula.
    b = body_for("cloudkeep", timestamp=iso)
    simple("cloudkeep", "hmac-sha256", {"X-CloudKeep-Signature-256": "sha256=" + hexs(b)}, b,
           "formula", "formula from seed 001 (CloudKeep webhook documentation), no SDK helper")
    b = body_for("policycortex", created=iso)
    simple("policycortex", "hmac-sha256", {"X-PolicyCortex-Signature": "sha256=" + hexs(b)}, b,
           "formula", "formula from seed 003 (PolicyCortex webhook documentation), no SDK helper")
    b = body_for("corgea", event_id="evt_corgea_1", timestamp=iso)
    simple("corgea", "hmac-sha256", {"X-Corgea-Signature": hexs(b)}, b, "formula",
           "formula from seed 004 (Corgea webhook documentation), no SDK helper")
    b = body_for("vaas")
    simple("vaas", "hmac-sha256",
           {"VaaS-Signature": base64.urlsafe_b64encode(mac(SECRET, b)).decode().rstrip("="),
            "VaaS-Timestamp": str(TIMESTAMP)}, b, "formula",
           "formula from seed 002 (VaaS webhook documentation; signed bytes assumed: the docs "
           "do not say), no SDK helper")


os.makedirs(OUT, exist_ok=True)
stripe_vector()
slack_vector()
slack_doc_example()
standard_webhooks_vectors()
twilio_vector()
twilio_doc_example()
razorpay_vector()
coinbase_vector()
square_vector()
hubspot_vector()
paddle_vector()
box_vector()
formula_vectors()
