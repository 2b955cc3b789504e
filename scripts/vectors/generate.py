#!/usr/bin/env python3
"""Generates the asymmetric-signature test vectors in tests/vectors/*.json.
(The HMAC and token vectors of tests/vectors/hmac/ come from hmac_vectors.py.)

Each vector is produced with the provider's own SDK where one exists (and checked with the
SDK's verifier), otherwise with `cryptography` following the provider's documentation:

    discord.json            PyNaCl (as Discord's "Security and Authorization" docs show)
    standard_webhooks.json  cryptography Ed25519 per the spec (standardwebhooks 1.1.0 only
                            implements v1/HMAC; its v1 output is included and checked)
    telnyx.json             PyNaCl, checked with telnyx SDK's verify_webhook_signature
    sendgrid.json           cryptography ECDSA P-256, checked with sendgrid SDK's EventWebhook
    sns.json                cryptography RSA PKCS#1 v1.5 (SHA1 / SHA256), self-signed X.509
    jwt_google.json         PyJWT RS256 (Google Pub/Sub push OIDC-style token)
    jwt_plaid.json          PyJWT ES256 (Plaid-Verification-style token, request_body_sha256)

Run it outside CI (CI only replays the committed files):

    python3 scripts/vectors/generate.py            # creates a venv in /tmp and installs SDKs

Keys are fresh on every run, so the committed files change each time it is run.
"""

import os
import subprocess
import sys
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "vectors")
VENV = os.environ.get("HOOKGATE_VECTORS_VENV", "/tmp/hookgate-vectors-venv")
PACKAGES = ["pynacl", "cryptography", "pyjwt", "standardwebhooks", "sendgrid", "telnyx"]


def ensure_sdks():
    """Re-runs this script inside a venv that has the SDKs installed."""
    if os.environ.get("HOOKGATE_VECTORS_IN_VENV") == "1":
        return
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        venv.create(VENV, with_pip=True)
    subprocess.check_call([python, "-m", "pip", "install", "-q", *PACKAGES])
    env = dict(os.environ, HOOKGATE_VECTORS_IN_VENV="1")
    sys.exit(subprocess.call([python, os.path.abspath(__file__)], env=env))


ensure_sdks()

# ---- everything below runs inside the venv -------------------------------------------------

import base64  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
from importlib.metadata import version  # noqa: E402
from unittest import mock  # noqa: E402

import jwt  # noqa: E402
import nacl.signing  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

B64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
B64URL = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
TIMESTAMP = 1767225600  # 2026-01-01T00:00:00Z
BODY = '{"type":"event.created","data":{"id":"evt_1","note":"caf\u00e9 \u2713"}}'


def write(name, doc):
    doc["generated_by"] = "scripts/vectors/generate.py"
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.relpath(path))


def spki_b64(public_key):
    return B64(public_key.public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo))


def spki_pem(public_key):
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def discord():
    # https://discord.com/developers/docs/interactions/receiving-and-responding#security-and-authorization
    signing_key = nacl.signing.SigningKey.generate()
    wrong = nacl.signing.SigningKey.generate()
    timestamp = str(TIMESTAMP)
    signed = signing_key.sign(f"{timestamp}{BODY}".encode())
    signature = signed.signature.hex()
    # What Discord's docs do on the receiving side.
    verify_key = nacl.signing.VerifyKey(bytes.fromhex(signing_key.verify_key.encode().hex()))
    verify_key.verify(f"{timestamp}{BODY}".encode(), bytes.fromhex(signature))
    write("discord.json", {
        "provider": "discord",
        "source": f"PyNaCl {version('pynacl')}",
        "kind": "ed25519",
        "public_key": signing_key.verify_key.encode().hex(),
        "wrong_public_key": wrong.verify_key.encode().hex(),
        "headers": {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": timestamp},
        "body": BODY,
    })


def standard_webhooks():
    # https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
    import standardwebhooks

    private = ed25519.Ed25519PrivateKey.generate()
    wrong = ed25519.Ed25519PrivateKey.generate()
    raw = lambda k: k.public_key().public_bytes(  # noqa: E731
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    timestamp = str(TIMESTAMP)
    to_sign = f"{msg_id}.{timestamp}.{BODY}".encode()
    v1a = B64(private.sign(to_sign))
    private.public_key().verify(base64.b64decode(v1a), to_sign)
    # The library signs v1 (HMAC) only; include its signature so the header has both kinds,
    # as the spec's example does, and check the library accepts it.
    secret = "whsec_" + B64(os.urandom(32))
    wh = standardwebhooks.Webhook(secret)
    v1 = wh.sign(msg_id, datetime.datetime.fromtimestamp(TIMESTAMP, datetime.timezone.utc), BODY)
    headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp,
               "webhook-signature": f"{v1} v1a,{v1a}"}
    with mock.patch("standardwebhooks.webhooks.datetime") as dt:
        dt.now.return_value = datetime.datetime.fromtimestamp(TIMESTAMP, datetime.timezone.utc)
        dt.fromtimestamp = datetime.datetime.fromtimestamp
        wh.verify(BODY, headers)
    write("standard_webhooks.json", {
        "provider": "standard-webhooks",
        "source": f"cryptography {version('cryptography')} (v1a, per spec); "
                  f"standardwebhooks {version('standardwebhooks')} (v1)",
        "kind": "ed25519",
        "public_key": "whpk_" + B64(raw(private)),
        "wrong_public_key": "whpk_" + B64(raw(wrong)),
        "hmac_secret": secret,
        "headers": headers,
        "body": BODY,
    })


def telnyx():
    # https://developers.telnyx.com/docs/development/api-fundamentals/webhooks
    from telnyx.lib.webhook_verification import verify_webhook_signature

    signing_key = nacl.signing.SigningKey.generate()
    wrong = nacl.signing.SigningKey.generate()
    timestamp = str(TIMESTAMP)
    signature = B64(signing_key.sign(f"{timestamp}|{BODY}".encode()).signature)
    public_key = B64(signing_key.verify_key.encode())
    headers = {"telnyx-signature-ed25519": signature, "telnyx-timestamp": timestamp}
    with mock.patch("time.time", return_value=TIMESTAMP):
        verify_webhook_signature(BODY, headers, public_key)
    write("telnyx.json", {
        "provider": "telnyx",
        "source": f"PyNaCl {version('pynacl')}; checked with telnyx {version('telnyx')} "
                  "verify_webhook_signature",
        "kind": "ed25519",
        "public_key": public_key,
        "wrong_public_key": B64(wrong.verify_key.encode()),
        "headers": headers,
        "body": BODY,
    })


def sendgrid():
    # https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
    from sendgrid.helpers.eventwebhook import EventWebhook

    private = ec.generate_private_key(ec.SECP256R1())
    wrong = ec.generate_private_key(ec.SECP256R1())
    timestamp = str(TIMESTAMP)
    body = '[{"email":"example@test.com","event":"processed","sg_event_id":"rbtnWrG1DVDGGGFHFyun0A==","timestamp":1767225600}]\r\n'
    signature = B64(private.sign((timestamp + body).encode(), ec.ECDSA(hashes.SHA256())))
    public_key = spki_b64(private.public_key())
    assert EventWebhook(public_key).verify_signature(body, signature, timestamp)
    assert not EventWebhook(spki_b64(wrong.public_key())).verify_signature(body, signature, timestamp)
    write("sendgrid.json", {
        "provider": "sendgrid",
        "source": f"cryptography {version('cryptography')}; checked with sendgrid "
                  f"{version('sendgrid')} EventWebhook.verify_signature",
        "kind": "ecdsa-p256-sha256-der",
        "public_key": public_key,
        "wrong_public_key": spki_b64(wrong.public_key()),
        "headers": {"X-Twilio-Email-Event-Webhook-Signature": signature,
                    "X-Twilio-Email-Event-Webhook-Timestamp": timestamp},
        "body": body,
    })


def self_signed(common_name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.fromtimestamp(TIMESTAMP, datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


def sns_string_to_sign(message):
    # https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message-verify-message-signature.html
    if message["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{message[k]}\n" for k in keys if k in message)


def sns():
    # https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
    key, cert = self_signed("sns.us-east-1.amazonaws.com")
    _, wrong_cert = self_signed("sns.us-east-1.amazonaws.com")
    topic = "arn:aws:sns:us-east-1:123456789012:MyTopic"
    cert_url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
    messages = [
        {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
         "TopicArn": topic, "Subject": "My First Message",
         "Message": "Hello world!\nline two \u2713", "Timestamp": "2026-01-01T00:00:00.000Z",
         "SignatureVersion": "1", "SigningCertURL": cert_url,
         "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + topic + ":c9135db0"},
        {"Type": "Notification", "MessageId": "da41e39f-ea4d-435a-b922-c6aae3915ebe",
         "TopicArn": topic, "Message": "{\"order\":42}", "Timestamp": "2026-01-01T00:00:01.000Z",
         "SignatureVersion": "2", "SigningCertURL": cert_url,
         "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + topic + ":c9135db0"},
        {"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
         "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
         "TopicArn": topic,
         "Message": "You have chosen to subscribe to the topic " + topic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
         "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + topic + "&Token=2336412f37",
         "Timestamp": "2026-01-01T00:00:02.000Z", "SignatureVersion": "2",
         "SigningCertURL": cert_url},
    ]
    cases = []
    for message in messages:
        digest = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
        to_sign = sns_string_to_sign(message).encode()
        message["Signature"] = B64(key.sign(to_sign, padding.PKCS1v15(), digest))
        body = json.dumps(message, indent=2, ensure_ascii=False)
        pub = x509.load_pem_x509_certificate(cert.encode()).public_key()
        pub.verify(base64.b64decode(message["Signature"]), to_sign, padding.PKCS1v15(), digest)
        cases.append({"body": body, "string_to_sign": to_sign.decode(),
                      "kind": "rsa-pkcs1-sha1" if message["SignatureVersion"] == "1"
                      else "rsa-pkcs1-sha256"})
    write("sns.json", {
        "provider": "aws-sns",
        "source": f"cryptography {version('cryptography')} (string to sign per AWS docs)",
        "public_key": cert,
        "wrong_public_key": wrong_cert,
        "cases": cases,
    })


def jwt_google():
    # https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
    key, cert = self_signed("accounts.google.com")
    wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = "f5f4bf46e52b31d9b6249f7309ad0338400680cd"
    audience = "https://hooks.example.com/pubsub"
    claims = {"aud": audience, "azp": "113774264463038321964",
              "email": "push@my-project.iam.gserviceaccount.com", "email_verified": True,
              "exp": TIMESTAMP + 3600, "iat": TIMESTAMP, "iss": "https://accounts.google.com",
              "sub": "113774264463038321964"}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    jwt.decode(token, key.public_key(), algorithms=["RS256"], audience=audience,
               issuer="https://accounts.google.com", options={"verify_exp": False})
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    wrong_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(wrong_key.public_key()))
    wrong_jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    wrong_token = jwt.encode(claims, wrong_key, algorithm="RS256", headers={"kid": kid})
    # Algorithm confusion: HS256 keyed with the public key's PEM text.
    head = B64URL(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    pay = B64URL(json.dumps(claims).encode())
    pem = spki_pem(key.public_key()).encode()
    hs = B64URL(hmac.new(pem, f"{head}.{pay}".encode(), hashlib.sha256).digest())
    none_head = B64URL(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    write("jwt_google.json", {
        "provider": "google-pubsub-push",
        "source": f"PyJWT {version('pyjwt')} + cryptography {version('cryptography')}",
        "now": TIMESTAMP + 60,
        "issuer": "https://accounts.google.com",
        "audience": audience,
        "headers": {"Authorization": f"Bearer {token}"},
        "body": '{"message":{"data":"SGVsbG8=","messageId":"1"},"subscription":"projects/p/subscriptions/s"}',
        "jwks": json.dumps({"keys": [jwk]}),
        "wrong_jwks": json.dumps({"keys": [wrong_jwk]}),
        "certificate": cert,
        "public_key_pem": spki_pem(key.public_key()),
        "token_signed_by_other_key": wrong_token,
        "token_hs256_with_public_key": f"{head}.{pay}.{hs}",
        "token_alg_none": f"{none_head}.{pay}.",
    })


def jwt_plaid():
    # https://plaid.com/docs/api/webhooks/webhook-verification/
    private = ec.generate_private_key(ec.SECP256R1())
    wrong = ec.generate_private_key(ec.SECP256R1())
    kid = "6c5516e1-92dc-479e-a8ff-5a51992e0001"
    body = '{\n  "environment": "sandbox",\n  "item_id": "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6",\n  "webhook_code": "DEFAULT_UPDATE",\n  "webhook_type": "TRANSACTIONS"\n}'
    claims = {"iat": TIMESTAMP, "request_body_sha256": hashlib.sha256(body.encode()).hexdigest()}
    token = jwt.encode(claims, private, algorithm="ES256", headers={"kid": kid})
    jwt.decode(token, private.public_key(), algorithms=["ES256"])

    def jwk(k):
        j = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k.public_key()))
        j.update({"alg": "ES256", "kid": kid, "use": "sig", "created_at": TIMESTAMP - 86400,
                  "expired_at": None})
        return j

    write("jwt_plaid.json", {
        "provider": "plaid",
        "source": f"PyJWT {version('pyjwt')} + cryptography {version('cryptography')}",
        "now": TIMESTAMP + 30,
        "headers": {"Plaid-Verification": token},
        "body": body,
        "key": json.dumps(jwk(private)),
        "wrong_key": json.dumps(jwk(wrong)),
        "public_key_pem": spki_pem(private.public_key()),
    })


os.makedirs(OUT, exist_ok=True)
discord()
standard_webhooks()
telnyx()
sendgrid()
sns()
jwt_google()
jwt_plaid()
