#!/usr/bin/env python3
"""Generates tests/vectors/paypal.json: PayPal webhook deliveries signed as PayPal's
self-verification describes them. The string signed is
`<PAYPAL-TRANSMISSION-ID>|<PAYPAL-TRANSMISSION-TIME>|<webhook id>|<CRC32 of the raw body, decimal>`
(https://developer.paypal.com/api/rest/webhooks/rest/ "Verify the signature"; the formula is
PayPal's own Python SDK's `WebhookEvent._get_expected_sig`,
https://github.com/paypal/PayPal-Python-SDK/blob/master/paypalrestsdk/notifications.py),
signed with SHA256withRSA (`PAYPAL-AUTH-ALGO`) by a self-signed certificate's key made with
`cryptography`, which plays PayPal's certificate at `PAYPAL-CERT-URL`. Keys are random, so the
file changes on every run.

    python3 scripts/vectors/paypal.py
"""

import base64
import binascii
import datetime
import json
import os
from importlib.metadata import version

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "vectors", "paypal.json")
TIMESTAMP = 1767225600  # 2026-01-01T00:00:00Z
WEBHOOK_ID = "1JE4291016473214C"
CERT_URL = "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"


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


def expected_sig(transmission_id, timestamp, webhook_id, event_body):
    # PayPal-Python-SDK notifications.py, _get_expected_sig (Python 3 branch).
    data = str(binascii.crc32(event_body.encode("utf-8")) & 0xffffffff)
    return transmission_id + "|" + timestamp + "|" + webhook_id + "|" + data


def main():
    key, cert = self_signed("messageverificationcerts.paypal.com")
    _, wrong_cert = self_signed("messageverificationcerts.paypal.com")
    public = x509.load_pem_x509_certificate(cert.encode()).public_key()
    events = [
        ("8b3ef140-e6a4-11f0-9a2f-0b3a6d6f1a01", "2026-01-01T00:00:00Z",
         {"id": "WH-58D329510W468432D-8HN650336L201105X", "event_version": "1.0",
          "create_time": "2025-12-31T23:59:58.000Z", "resource_type": "capture",
          "event_type": "PAYMENT.CAPTURE.COMPLETED",
          "summary": "Payment completed for $ 21.0 USD",
          "resource": {"id": "42311647XV020574X", "status": "COMPLETED",
                       "amount": {"currency_code": "USD", "value": "21.00"},
                       "note": "caf\u00e9 \u2713"}}),
        ("9c4f0250-e6a4-11f0-9a2f-0b3a6d6f1a02", "2026-01-01T00:00:01Z",
         {"id": "WH-1GE84257G0350133W-6RW800890C634293G", "event_version": "1.0",
          "create_time": "2026-01-01T00:00:00.000Z", "resource_type": "subscription",
          "event_type": "BILLING.SUBSCRIPTION.ACTIVATED",
          "resource": {"id": "I-BW452GLLEP1G", "status": "ACTIVE"}}),
    ]
    cases = []
    for transmission_id, time, event in events:
        body = json.dumps(event, indent=2, ensure_ascii=False)
        to_sign = expected_sig(transmission_id, time, WEBHOOK_ID, body)
        signature = base64.b64encode(
            key.sign(to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
        public.verify(base64.b64decode(signature), to_sign.encode(), padding.PKCS1v15(),
                      hashes.SHA256())
        cases.append({
            "headers": {
                "PAYPAL-TRANSMISSION-ID": transmission_id,
                "PAYPAL-TRANSMISSION-TIME": time,
                "PAYPAL-TRANSMISSION-SIG": signature,
                "PAYPAL-CERT-URL": CERT_URL,
                "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            },
            "body": body,
            "string_to_sign": to_sign,
        })
    doc = {
        "provider": "paypal",
        "source": f"cryptography {version('cryptography')} (string to sign per PayPal's "
                  "Python SDK, WebhookEvent._get_expected_sig)",
        "kind": "rsa-pkcs1-sha256",
        "webhook_id": WEBHOOK_ID,
        "public_key": cert,
        "wrong_public_key": wrong_cert,
        "cases": cases,
        "generated_by": "scripts/vectors/paypal.py",
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.relpath(OUT))


if __name__ == "__main__":
    main()
